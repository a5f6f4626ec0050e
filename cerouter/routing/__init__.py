"""Routing: the route model, the compiled route table, filters (and their specs), subjects."""
