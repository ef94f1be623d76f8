"""Arctern: self-hosted research data transfer platform."""

__version__ = "0.1.0"
