"""Logs, metrics and tracing: what an operator sees of a running ragd."""
