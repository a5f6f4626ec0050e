"""Delivery: dispatch to destinations, the one dead-letter format, error events."""
