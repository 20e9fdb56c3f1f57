"""identity's routes, one module per feature (accounts, customers, matching, registration)."""
