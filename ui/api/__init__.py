"""The REST API under /api: the seed's admin and worker endpoints and ours."""
