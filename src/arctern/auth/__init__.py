"""Globus Auth-compatible OAuth2/OIDC authorization service and the developer console API."""
