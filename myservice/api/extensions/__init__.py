"""api/extensions."""
