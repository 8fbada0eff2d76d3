"""Provider health: a circuit breaker per Runway model, per GPU host and per pool, shared by every
process through the database; fed by each attempt's outcome (models.core.failures classifies
the failures), read by routing, the dispatcher, the GPU hosts and the admin."""
