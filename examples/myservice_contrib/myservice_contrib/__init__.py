"""myservice-contrib: one third-party plugin for each myservice namespace.

======================== ================== =============================================
namespace                name               module
======================== ================== =============================================
myservice.storage        ``jsonfile``       :mod:`myservice_contrib.jsonfile`
myservice.middleware     ``server_timing``  :mod:`myservice_contrib.server_timing`
myservice.hooks          ``user.create``    :mod:`myservice_contrib.counter` (``contrib_counter``)
myservice.api.extensions ``user_notes``     :mod:`myservice_contrib.notes`
======================== ================== =============================================

Each module is a template for its namespace's contract; see the README.
"""

__version__ = "1.0.0"
