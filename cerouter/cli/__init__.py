"""The ``cerouter`` command line: one module per command group, each a thin layer."""

from cerouter.cli.main import app

__all__ = ["app"]
