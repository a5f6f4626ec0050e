"""Ingress adapters: each turns what arrives (core NATS, JetStream, later HTTP) into an Inbound."""
