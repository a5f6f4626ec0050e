"""Validation: the CloudEvents envelope rules, the JSON Schema registry, and one report type."""
