"""Routing: the route model, the compiled route table, filter dialects and subject templates."""
