"""The ``mysql`` driver of the ``my_system.db_driver`` namespace."""

from db_driver_base import Base


class MySQLDriver(Base):
    """Pretends to talk to mysql; returns what it would have done."""

    def create_user(self, user_name: str) -> str:
        return f"create user {user_name} in mysql"
