"""The exception tree of cerouter: one root, one branch per concern.

::

    CerouterError
    ├── BindingError          a NATS message is not a CloudEvent in either content mode
    ├── ConfigError           routes.yaml or a CLI option is wrong; carries file, line, key path
    ├── SchemaLoadError       a schema file cannot be loaded, checked or resolved
    ├── CesqlParseError       a CESQL expression does not parse; carries the column
    ├── ServerError           the embedded nats-server cannot be found, started or stopped
    │   ├── ServerBinaryNotFound
    │   └── PortInUseError
    └── DeliveryError         a destination did not accept an event

Evaluation-time CESQL errors and validation failures are *values* (reports), not exceptions:
they describe the event, not a fault of the program.
"""

from __future__ import annotations


class CerouterError(Exception):
    """Root of every error cerouter raises on purpose."""


class BindingError(CerouterError):
    """A NATS message cannot be read as (or written from) a CloudEvent."""


class ConfigError(CerouterError):
    """A configuration file or option is invalid.

    ``str(err)`` is one line: ``file:line: key.path: what is wrong``.
    """

    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None, path: str = ""
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.path = path
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.file is not None:
            where = f"{self.file}:{self.line}: " if self.line is not None else f"{self.file}: "
        key = f"{self.path}: " if self.path else ""
        return f"{where}{key}{self.message}"


class SchemaLoadError(CerouterError):
    """A schema file is unreadable, not a valid schema, or has an unresolvable ``$ref``."""


class CesqlParseError(CerouterError):
    """A CESQL expression failed to parse.

    ``column`` is 1-based and points at the offending token.
    """

    def __init__(self, message: str, *, expression: str, column: int) -> None:
        self.message = message
        self.expression = expression
        self.column = column
        super().__init__(f"column {column}: {message}")


class ServerError(CerouterError):
    """The embedded nats-server could not be started, reached or stopped."""


class ServerBinaryNotFound(ServerError):
    """No ``nats-server`` executable was found next to the interpreter or on PATH."""


class PortInUseError(ServerError):
    """The requested port is already taken by another process."""


class DeliveryError(CerouterError):
    """A destination did not accept an event (no responders, timeout, JetStream error)."""


class TooLargeError(DeliveryError):
    """A message with its headers would exceed the server's ``max_payload``: it was not sent
    (sending it would make the server close the connection)."""


class GatewayError(CerouterError):
    """The HTTP gateway could not start (address in use, bad listen address)."""
