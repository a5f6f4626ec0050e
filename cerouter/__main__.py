"""``python -m cerouter``: the same as the ``cerouter`` command."""

from cerouter.cli import app

app()
