"""Connector conformance suite: the same behaviour from every storage backend."""
