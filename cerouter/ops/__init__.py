"""Offline operations on the same pipeline the router runs: explain (later: replay, route tests)."""
