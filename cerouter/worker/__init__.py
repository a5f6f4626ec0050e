"""Queue-group workers: consume routed CloudEvents in a few lines of Python (public API).

See :mod:`cerouter.worker.app` for how events reach handlers.
"""

from cerouter.worker.app import (
    DEFAULT_CONCURRENCY,
    ERROR_EVENT_TYPE,
    Delivery,
    Handler,
    HandlerSpec,
    QueueSpec,
    TypeFilter,
    Worker,
    WorkerApp,
    WorkerStats,
    connect_worker,
    current_delivery,
)

__all__ = [
    "DEFAULT_CONCURRENCY",
    "ERROR_EVENT_TYPE",
    "Delivery",
    "Handler",
    "HandlerSpec",
    "QueueSpec",
    "TypeFilter",
    "Worker",
    "WorkerApp",
    "WorkerStats",
    "connect_worker",
    "current_delivery",
]
