"""Listing and reading the items of synced sources: sitemaps, spreadsheets, folders.

Each module turns one kind of source into items with a stable key (URL, row key,
relative path) and bounds what it reads; fetching over HTTP stays in
:mod:`ragd.ingest.fetch`, and what a sync does with the items is the sources service's.
"""
