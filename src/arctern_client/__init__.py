"""Notebook helpers for Arctern (and Globus) on top of globus-sdk."""
