"""An in-memory connector for tests and demos."""
