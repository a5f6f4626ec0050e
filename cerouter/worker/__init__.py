"""Queue-group workers: consume routed CloudEvents in a few lines of Python (public API).

See :mod:`cerouter.worker.app` for how events reach handlers.
"""

from cerouter.delivery.error_event import ERROR_EVENT_TYPE
from cerouter.worker.app import DEFAULT_CONCURRENCY, WorkerApp, connect_worker
from cerouter.worker.runtime import Worker
from cerouter.worker.spec import (
    Delivery,
    Handler,
    HandlerSpec,
    QueueSpec,
    TypeFilter,
    WorkerStats,
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
