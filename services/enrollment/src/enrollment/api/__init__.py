"""enrollment's routes, one module per feature (programs, participants, returning_citizens)."""
