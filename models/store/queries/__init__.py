"""The SQL that matters, named and commented, one module per concern (as procrastinate keeps its
`queries.sql`): `items` (claims, leases, fenced writes, dispatch), `ledger` (the count ledger),
`outbox`, `money`, `planning`, `intake` and `reporting`. The modules of each concern run them;
nothing else in reelroute writes SQL by hand, except the migrations and the indexes' predicates
in models.core.tables."""
