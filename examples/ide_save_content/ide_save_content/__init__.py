"""The ``save_content`` hook: runs on ``CLOSE_WINDOW`` and on ``COMMIT``."""


class SaveContent:
    """A hook object; loaded with ``invoke_on_load=True`` it is called with no arguments."""

    def __call__(self) -> str:
        return "content are saved"
