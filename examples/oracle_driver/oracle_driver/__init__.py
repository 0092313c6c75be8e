"""The ``oracle`` driver of the ``my_system.db_driver`` namespace."""

from db_driver_base import Base


class OracleDriver(Base):
    """Pretends to talk to oracle; returns what it would have done."""

    def create_user(self, user_name: str) -> str:
        return f"create user {user_name} in oracle"
