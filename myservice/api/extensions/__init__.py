"""API extensions: plugins in ``myservice.api.extensions`` that add resources to ``/v1``.

* :class:`APIExtension` (:mod:`.base`): the base class and the contract for authors.
* :func:`load_extensions` (:mod:`.loading`): how the service loads the extensions enabled by
  ``[api] extensions`` (:func:`myservice.wsgi.app.build_router` then adds their routes).
* :mod:`.metadata`: the built-in ``user_metadata`` extension.
"""

from myservice.api.extensions.base import APIExtension, RouteSink
from myservice.api.extensions.loading import (
    NAMESPACE,
    LoadedExtensions,
    available_aliases,
    load_extensions,
)

__all__ = [
    "NAMESPACE",
    "APIExtension",
    "LoadedExtensions",
    "RouteSink",
    "available_aliases",
    "load_extensions",
]
