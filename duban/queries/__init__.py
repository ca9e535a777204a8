"""The SQL aggregates behind every figure."""
