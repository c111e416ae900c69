"""TestInstrumentRouter: mode routing, ETF selection rules, liquidity, fallbacks."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from core.domain import Direction, InstrumentType, Side, ValidationError
from core.instruments.catalog import EXTENDED_ETF_CATALOG, LEVERAGED_ETF_CATALOG, Sector
from core.instruments.config import InstrumentConfig
from core.instruments.modes import InstrumentMode
from core.instruments.router import InstrumentDecision, InstrumentRouter, NoInstrument
from core.pipeline import Rejected
from tests.core.instruments.support import LIQUID, adv, all_liquid, signal

OPTIONS, ETF_MODE, BOTH = InstrumentMode.OPTIONS, InstrumentMode.LEVERAGED_ETF, InstrumentMode.BOTH

#: Average daily dollar volume by fund, for the liquidity tests (minimum is $10M).
ADV_TABLE = {
    "SPXL": D(9_999_999),  # just under
    "SPXS": D(10_000_000),  # exactly the minimum passes
    "UPRO": D(250_000_000),
    "SPXU": D(4_000_000),
    "TQQQ": D(3_000_000),
    "SQQQ": D(2_000_000_000),
    "QLD": D(40_000_000),
    "QID": D(1_500_000),
    "TECL": D(1_200_000),
    "TECS": None,  # no volume data
    "ERX": D(25_000_000),
    "ERY": D(900_000),
}


@pytest.fixture
def router() -> InstrumentRouter:
    return InstrumentRouter()


@pytest.fixture
def liquid():
    return all_liquid(EXTENDED_ETF_CATALOG)


class TestInstrumentRouter:
    # -- the mode table ------------------------------------------------------------------------

    def test_options_mode(self, router: InstrumentRouter, liquid) -> None:
        scalp = router.route(signal("SPY", trade_type="scalp"), OPTIONS, liquid)
        assert scalp.instrument_type is InstrumentType.OPTION
        assert (scalp.ticker, scalp.original_ticker, scalp.leverage) == ("SPY", "SPY", D(1))
        assert scalp.catalog_entry is None and not scalp.is_inverse
        assert "options" in scalp.reason
        for trade_type in ("day", "swing"):
            d = router.route(signal("AAPL", "short", trade_type), OPTIONS, liquid)
            assert d.instrument_type is InstrumentType.STOCK
            assert (d.ticker, d.leverage, d.side, d.is_inverse) == ("AAPL", D(1), Side.SELL, False)
        assert liquid.asked == []  # no ETF was considered

    def test_leveraged_etf_mode_routes_everything_to_etfs(self, router, liquid) -> None:
        for trade_type in ("scalp", "day", "swing"):
            for conviction in (0, 50, 100):
                d = router.route(signal("QQQ", "long", trade_type, conviction), ETF_MODE, liquid)
                assert d.instrument_type is InstrumentType.LEVERAGED_ETF
                assert d.ticker == "TQQQ" and d.original_ticker == "QQQ"
                assert d.leverage == D(3) and d.side is Side.BUY
                assert d.catalog_entry is LEVERAGED_ETF_CATALOG["bull_qqq_3x"]
                assert d.selection is not None and d.selection.ticker == "TQQQ"

    def test_both_mode(self, router, liquid) -> None:
        scalp = router.route(signal("QQQ", trade_type="scalp", conviction=100), BOTH, liquid)
        assert scalp.instrument_type is InstrumentType.OPTION
        day_high = router.route(signal("QQQ", trade_type="day", conviction=75), BOTH, liquid)
        assert day_high.instrument_type is InstrumentType.LEVERAGED_ETF
        assert day_high.ticker == "TQQQ"
        assert "conviction 75 >= 75" in day_high.reason
        day_low = router.route(signal("QQQ", trade_type="day", conviction=74), BOTH, liquid)
        assert day_low.instrument_type is InstrumentType.STOCK and day_low.ticker == "QQQ"
        assert "conviction 74 < 75" in day_low.reason
        swing = router.route(signal("QQQ", trade_type="swing", conviction=100), BOTH, liquid)
        assert swing.instrument_type is InstrumentType.STOCK and swing.ticker == "QQQ"

    def test_both_mode_threshold_is_configurable(self, liquid) -> None:
        router = InstrumentRouter(InstrumentConfig(both_mode_etf_min_conviction=90))
        assert router.route(signal(conviction=89), BOTH, liquid).instrument_type is (
            InstrumentType.STOCK
        )
        assert router.route(signal(conviction=90), BOTH, liquid).instrument_type is (
            InstrumentType.LEVERAGED_ETF
        )

    def test_scalps_trade_options_in_options_and_both_modes(self, router, liquid) -> None:
        for mode in (OPTIONS, BOTH):
            for direction in Direction:
                d = router.route(signal("NVDA", direction, "scalp"), mode, liquid)
                assert d.instrument_type is InstrumentType.OPTION
                assert d.ticker == "NVDA" and d.side is Side.BUY and d.leverage == D(1)

    def test_mode_as_string_and_bad_mode(self, router, liquid) -> None:
        assert router.route(signal(), "leveraged_etf", liquid).ticker == "TECL"
        with pytest.raises(ValidationError, match="unknown instrument mode"):
            router.route(signal(), "crypto", liquid)

    def test_decision_is_frozen(self, router, liquid) -> None:
        d = router.route(signal(), ETF_MODE, liquid)
        assert isinstance(d, InstrumentDecision)
        with pytest.raises(AttributeError):
            d.ticker = "X"  # type: ignore[misc]

    # -- direction and leverage ----------------------------------------------------------------

    @pytest.mark.parametrize("ticker", ["SPY", "QQQ", "IWM", "DIA", "AAPL", "NVDA", "JPM", "XOM"])
    def test_long_buys_bull_short_buys_inverse(self, router, liquid, ticker: str) -> None:
        long = router.route(signal(ticker, "long"), ETF_MODE, liquid)
        short = router.route(signal(ticker, "short"), ETF_MODE, liquid)
        assert not long.is_inverse and short.is_inverse
        assert long.side is short.side is Side.BUY
        assert long.catalog_entry is short.catalog_entry
        assert long.catalog_entry is not None
        assert long.ticker == long.catalog_entry.ticker
        assert short.ticker == long.catalog_entry.inverse

    def test_day_prefers_3x_swing_prefers_2x_where_a_2x_exists(self, liquid) -> None:
        router = InstrumentRouter(catalog=EXTENDED_ETF_CATALOG)
        for ticker, day, swing in [
            ("SPY", "SPXL", "SSO"),
            ("QQQ", "TQQQ", "QLD"),
            ("IWM", "TNA", "UWM"),
            ("DIA", "UDOW", "DDM"),
        ]:
            assert router.select_etf(ticker, "long", "day", liquid).ticker == day
            assert router.select_etf(ticker, "long", "scalp", liquid).ticker == day
            sel = router.select_etf(ticker, "long", "swing", liquid)
            assert (sel.ticker, sel.leverage) == (swing, D(2))
        assert router.select_etf("QQQ", "short", "swing", liquid).ticker == "QID"

    def test_without_a_2x_the_available_fund_is_used(self, router, liquid) -> None:
        swing = router.select_etf("QQQ", "long", "swing", liquid)
        assert (swing.ticker, swing.leverage) == ("TQQQ", D(3))
        assert "prefer 2x, none listed" in swing.reason
        # energy only has a 2x fund: day trades use it too
        assert router.select_etf("XOM", "long", "day", liquid).ticker == "ERX"
        assert router.select_etf("XOM", "long", "swing", liquid).ticker == "ERX"

    def test_prefer_3x_off_makes_day_trades_prefer_2x(self, liquid) -> None:
        config = InstrumentConfig(prefer_3x_for_day_trades=False)
        router = InstrumentRouter(config, EXTENDED_ETF_CATALOG)
        assert router.select_etf("QQQ", "long", "day", liquid).ticker == "QLD"

    def test_equal_leverage_keeps_catalog_order(self, router, liquid) -> None:
        assert router.select_etf("SPY", "long", "day", liquid).ticker == "SPXL"
        assert router.select_etf("SPY", "short", "day", liquid).ticker == "SPXS"

    # -- liquidity -----------------------------------------------------------------------------

    def test_minimum_is_inclusive(self, router) -> None:
        sel = router.select_etf("SPY", "short", "day", adv(ADV_TABLE))
        assert sel.ticker == "SPXS"
        assert sel.avg_daily_volume == D(10_000_000)

    def test_preferred_fails_alternate_ticker(self, router) -> None:
        lookup = adv(ADV_TABLE)
        sel = router.select_etf("SPY", "long", "day", lookup)
        assert sel.ticker == "UPRO"
        assert lookup.asked == ["SPXL", "UPRO"]
        assert "SPXL (3x) ADV $9,999,999 < $10,000,000" in sel.reason

    def test_preferred_fails_alternative_leverage(self) -> None:
        router = InstrumentRouter(catalog=EXTENDED_ETF_CATALOG)
        day = router.select_etf("QQQ", "long", "day", adv(ADV_TABLE))
        assert (day.ticker, day.leverage) == ("QLD", D(2))  # TQQQ at $3M fails
        swing = router.select_etf("QQQ", "short", "swing", adv(ADV_TABLE))
        assert (swing.ticker, swing.leverage) == ("SQQQ", D(3))  # QID at $1.5M fails

    def test_all_fail_reason_names_the_numbers(self, router) -> None:
        with pytest.raises(NoInstrument) as caught:
            router.select_etf("SPY", "short", "day", adv({**ADV_TABLE, "SPXS": D(7_500_000)}))
        reason = caught.value.reason
        assert "$10,000,000" in reason
        assert "SPXS (3x) ADV $7,500,000 < $10,000,000" in reason
        assert "SPXU (3x) ADV $4,000,000 < $10,000,000" in reason

    def test_missing_volume_data_fails(self, router) -> None:
        with pytest.raises(NoInstrument, match="TECS \\(3x\\) has no volume data"):
            router.select_etf("AAPL", "short", "day", adv(ADV_TABLE))

    def test_minimum_is_configurable(self) -> None:
        router = InstrumentRouter(InstrumentConfig(min_etf_daily_volume=D(1_000_000)))
        assert router.select_etf("AAPL", "long", "day", adv(ADV_TABLE)).ticker == "TECL"

    def test_illiquid_in_leveraged_etf_mode_is_rejected(self, router) -> None:
        with pytest.raises(NoInstrument) as caught:
            router.route(signal("XOM", "short"), ETF_MODE, adv(ADV_TABLE))
        assert isinstance(caught.value, Rejected)  # the executor stores the reason
        assert "ERY (2x) ADV $900,000 < $10,000,000" in str(caught.value)
        assert str(caught.value).startswith("leveraged_etf mode, day signal")

    def test_illiquid_in_both_mode_falls_back_to_stock(self, router) -> None:
        d = router.route(signal("XOM", "short", conviction=90), BOTH, adv(ADV_TABLE))
        assert d.instrument_type is InstrumentType.STOCK
        assert (d.ticker, d.side, d.leverage) == ("XOM", Side.SELL, D(1))
        assert "ERY (2x) ADV $900,000" in d.reason and "trading XOM itself" in d.reason

    def test_both_mode_fallback_can_be_switched_off(self) -> None:
        router = InstrumentRouter(InstrumentConfig(both_mode_stock_fallback=False))
        with pytest.raises(NoInstrument):
            router.route(signal("XOM", "short", conviction=90), BOTH, adv(ADV_TABLE))

    # -- mapping: index funds, fallbacks, overrides, unknown tickers ---------------------------

    def test_broad_market_signals_use_index_funds(self, router, liquid) -> None:
        for ticker, sector in [("SPY", Sector.SP500), ("VOO", Sector.SP500), ("QQQ", "nasdaq100")]:
            sel = router.select_etf(ticker, "long", "day", liquid)
            assert sel.sector == sector and sel.entry.sector.is_index

    def test_sector_mapping_off(self, liquid) -> None:
        router = InstrumentRouter(InstrumentConfig(etf_sector_mapping=False))
        assert router.select_etf("AAPL", "long", "day", liquid).ticker == "SPXL"
        assert router.select_etf("NVDA", "short", "day", liquid).ticker == "SPXS"
        # index funds still trade their own index
        assert router.select_etf("QQQ", "long", "day", liquid).ticker == "TQQQ"
        assert router.select_etf("IWM", "short", "day", liquid).ticker == "TZA"

    def test_sector_fallback_index(self, liquid) -> None:
        nasdaq = InstrumentRouter(InstrumentConfig(sector_fallback_index=Sector.NASDAQ100))
        assert nasdaq.select_etf("CAT", "long", "day", liquid).ticker == "TQQQ"
        off = InstrumentRouter(InstrumentConfig(sector_fallback_index=None))
        with pytest.raises(NoInstrument, match="no bull industrials fund"):
            off.select_etf("CAT", "long", "day", liquid)
        with pytest.raises(NoInstrument, match="no inverse healthcare fund"):
            off.select_etf("LLY", "short", "day", liquid)
        assert off.select_etf("LLY", "long", "day", liquid).ticker == "CURE"

    def test_unknown_ticker(self, router, liquid) -> None:
        with pytest.raises(NoInstrument, match="ZZZT has no sector or index mapping"):
            router.select_etf("ZZZT", "long", "day", liquid)
        fallback = InstrumentRouter(InstrumentConfig(unknown_ticker_index=Sector.RUSSELL2000))
        sel = fallback.select_etf("ZZZT", "short", "day", liquid)
        assert sel.ticker == "TZA" and "not mapped" in sel.reason

    def test_unknown_ticker_in_both_mode_trades_the_stock(self, router, liquid) -> None:
        d = router.route(signal("ZZZT", conviction=95), BOTH, liquid)
        assert d.instrument_type is InstrumentType.STOCK and d.ticker == "ZZZT"

    def test_sector_overrides(self, liquid) -> None:
        config = InstrumentConfig(sector_overrides={"pltr": "semiconductors", "ZZZT": "fang"})
        router = InstrumentRouter(config)
        assert router.select_etf("PLTR", "long", "day", liquid).ticker == "SOXL"
        assert router.select_etf("zzzt", "short", "day", liquid).ticker == "FNGD"

    def test_overrides_replace_shipped_mappings(self, liquid) -> None:
        router = InstrumentRouter(
            InstrumentConfig(sector_overrides={"SPY": "dow30", "XOM": "fang"})
        )
        assert router.select_etf("SPY", "long", "day", liquid).ticker == "UDOW"
        assert router.select_etf("XOM", "long", "day", liquid).ticker == "FNGU"

    def test_share_class_tickers_are_normalized(self, router, liquid) -> None:
        assert router.select_etf("BRK-B", "long", "day", liquid).ticker == "FAS"

    # -- signals on catalog funds --------------------------------------------------------------

    def test_signal_on_a_fund_trades_that_fund_or_its_twin(self, router, liquid) -> None:
        assert router.select_etf("TQQQ", "long", "day", liquid).ticker == "TQQQ"
        assert router.select_etf("TQQQ", "short", "day", liquid).ticker == "SQQQ"
        # a long signal on the inverse fund is a short view of the index
        sel = router.select_etf("SQQQ", "long", "day", liquid)
        assert sel.ticker == "SQQQ" and sel.is_inverse
        assert router.select_etf("SQQQ", "short", "day", liquid).ticker == "TQQQ"

    def test_stock_route_on_a_fund_keeps_its_leverage(self, router, liquid) -> None:
        d = router.route(signal("SOXL", "long", "day"), OPTIONS, liquid)
        assert d.ticker == "SOXL"
        assert d.instrument_type is InstrumentType.LEVERAGED_ETF
        assert d.leverage == D(3) and d.catalog_entry is LEVERAGED_ETF_CATALOG["bull_semi_3x"]

    def test_selection_reason_explains_the_choice(self, router, liquid) -> None:
        sel = router.select_etf("AAPL", "long", "day", liquid)
        assert sel.reason == (
            "AAPL -> technology -> TECL (3x bull, day trades prefer the highest leverage), "
            f"ADV ${LIQUID:,.0f} >= $10,000,000"
        )
        assert (sel.tracks, sel.avg_daily_volume, sel.is_inverse) == ("Technology", LIQUID, False)
