"""identity use cases, split by feature (the same names as domain, repository, api)."""
