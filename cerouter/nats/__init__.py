"""NATS adapters: connection, wire fast path, JetStream publishing and pulling, embedded server."""
