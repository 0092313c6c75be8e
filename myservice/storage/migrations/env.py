"""Alembic environment: runs migrations on the connection handed over by
:func:`myservice.storage.migration.upgrade` (``config.attributes["connection"]``)."""

from alembic import context

from myservice.storage.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError(
        "myservice migrations run only online, through 'myservice-manage db upgrade'"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
