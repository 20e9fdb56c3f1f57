"""enrollment rules and shapes as plain code (no I/O), split by feature."""
