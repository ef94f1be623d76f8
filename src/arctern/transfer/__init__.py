"""Globus Transfer v0.10-compatible API: collections, file operations, tasks, ACLs, bookmarks."""
