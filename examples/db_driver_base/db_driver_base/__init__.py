"""The contract every ``my_system.db_driver`` plugin implements.

Driver packages are developed independently of each other; all they share is this
base class and the entry-point namespace ``my_system.db_driver``.
"""

import abc

NAMESPACE = "my_system.db_driver"


class Base(abc.ABC):
    """A database driver.

    A driver is instantiated with no arguments (``DriverManager(...,
    invoke_on_load=True, invoke_args=())``).
    """

    @abc.abstractmethod
    def create_user(self, user_name: str) -> str:
        """Create ``user_name`` and return a one-line description of what was done."""
