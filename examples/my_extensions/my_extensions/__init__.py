"""Three extensions of ``my_namespace``, loaded all at once by an ``ExtensionManager``."""


class _Extension:
    """Common behaviour: an extension reports which one it is."""

    label = ""

    def describe(self) -> str:
        return f"{self.label} is loaded"


class Ext1(_Extension):
    label = "ext1"


class Ext2(_Extension):
    label = "ext2"


class Ext3(_Extension):
    label = "ext3"
