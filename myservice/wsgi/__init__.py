"""wsgi."""
