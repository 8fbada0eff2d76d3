"""Money: spending caps (budgets reserved when an item is routed, settled when it ends) and
Runway's own limits on our organisation (concurrency, daily limits, balance)."""
