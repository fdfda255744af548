"""Retrieval engine: query terms, fusion of the keyword and vector legs."""
