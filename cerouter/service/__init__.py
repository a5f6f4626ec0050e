"""The router service: the router core, its counters, and the lifecycle (`serve`)."""
