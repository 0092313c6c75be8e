"""myservice: an OpenStack-style API service built from plugins."""

__version__ = "0.1.0"
