"""The local-filesystem connector."""
