"""Portfolio rebalancing: targets, triggers, plans and their execution."""
