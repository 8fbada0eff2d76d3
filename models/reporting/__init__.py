"""What the admin and the API read back: statistics per provider from the count ledger and the
latest completions."""
