"""The ``upload_content`` hook: runs on ``COMMIT`` only."""


class UploadContent:
    """A hook object; loaded with ``invoke_on_load=True`` it is called with no arguments."""

    def __call__(self) -> str:
        return "content are uploaded"
