"""SQL of the groups service, one module per feature (same names as the service layer)."""
