"""Alembic migrations of the SQL schema (:mod:`myservice.storage.schema`).

Configured in code by :mod:`myservice.storage.migration` (no ``alembic.ini``); run them with
``myservice-manage db upgrade``.  To change the schema: edit ``schema.py``, then add a file in
``versions/`` whose ``down_revision`` is the current head, written by hand with ``op.*`` calls
(frozen types, no imports of application code), and run ``pytest tests/storage`` - a test
checks that the migrated database matches ``schema.py`` on every backend.
"""
