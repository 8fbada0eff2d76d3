"""Work coming in: a batch of photos and tasks checked and stored all or none, the image checks and
photo rows, Idempotency-Key bookkeeping, and the one intake function the CLI, the REST API and
the admin page share."""
