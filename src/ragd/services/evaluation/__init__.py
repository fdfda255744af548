"""Retrieval evaluation: BEIR datasets, IR metrics, and golden sets run through search.

Everything here measures ragd through its own services (documents, worker, search), so a
number it prints is what a user of the API would get, not what an isolated engine could do.
"""
