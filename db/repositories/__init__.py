"""SQL implementations of the ``core.ports`` repositories."""

from db.repositories.journal import SqlJournalRepository
from db.repositories.operations import (
    SqlCommandRepository,
    SqlDecisionRepository,
    SqlLeaseRepository,
    SqlReconciliationRepository,
    SqlSettingsRepository,
)
from db.repositories.rebalance import SqlAlgoOrderRepository, SqlRebalanceRepository
from db.repositories.trading import (
    SqlFillRepository,
    SqlOrderRepository,
    SqlPositionRepository,
    SqlSignalRepository,
)

__all__ = [
    "SqlAlgoOrderRepository",
    "SqlCommandRepository",
    "SqlDecisionRepository",
    "SqlFillRepository",
    "SqlJournalRepository",
    "SqlLeaseRepository",
    "SqlOrderRepository",
    "SqlPositionRepository",
    "SqlRebalanceRepository",
    "SqlReconciliationRepository",
    "SqlSettingsRepository",
    "SqlSignalRepository",
]
