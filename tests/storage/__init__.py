"""Storage driver tests."""
