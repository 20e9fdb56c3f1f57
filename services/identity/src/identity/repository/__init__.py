"""identity data access (PostgreSQL), split by feature."""
