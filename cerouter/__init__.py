"""cerouter: a CloudEvents-native event router on NATS."""

__version__ = "0.1.0"
