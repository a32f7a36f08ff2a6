"""Persistence: connection pools and versioned SQL migrations (PostgreSQL via asyncpg)."""
