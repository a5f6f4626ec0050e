"""The router service: the router core, the router, its counters, and the lifecycle (``serve``).

``from cerouter.service import serve, RouterOptions`` is the library entry point.
"""

from cerouter.service.core import RouterOptions
from cerouter.service.router import Router
from cerouter.service.serve import Service, serve

__all__ = ["Router", "RouterOptions", "Service", "serve"]
