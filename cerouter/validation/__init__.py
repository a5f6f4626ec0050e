"""Validation: the CloudEvents envelope rules, JSON Schema loading and registry, one report type."""
