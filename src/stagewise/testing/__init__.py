"""Reusable test suites that every storage backend must pass (shipped so plugins can reuse them)."""
