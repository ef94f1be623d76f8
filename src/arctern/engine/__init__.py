"""Moves bytes between connectors: planning, copying, checksums, retries, accounting.

Knows connectors, never the database or HTTP.
"""
