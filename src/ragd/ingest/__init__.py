"""Ingestion: turn uploaded bytes, text or fetched pages into normalized text and chunks.

Kept free of storage and HTTP so parsing and chunking can be tested, benchmarked and
reused by the worker and the CLI alike.
"""
