"""reelroute's domain and its storage, in sub-packages by concern. Each imports only the ones
below it (checked by `make lint`, docs/architecture.md has the picture):

    reporting | intake        statistics; adding work (batches, photos, idempotency)
    items | planning          the item lifecycle and dispatch bookkeeping; estimates, ETAs, routing
    money                     budgets and Runway's limits
    outbox                    item events and webhooks
    store                     engines, typed SQL, the named queries, the count ledger, files
    core                      enums, errors, settings, the catalogue, the task spec, tables
"""
