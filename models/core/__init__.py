"""The words of the domain, and nothing that touches a database: enums and typed codes, errors,
the settings, the provider catalogue, the task spec, worker ids, text rules, formats, and the
SQLModel tables (declarations only). Everything else in `models` builds on it; it imports nothing
of ours."""
