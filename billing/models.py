"""Rate tables, balances and charges (public schema)."""
