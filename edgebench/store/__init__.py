"""The results store: one SQLite file per run, with a versioned schema."""

from edgebench.store.sqlite import BASE, RESULT_FIELDS, RESULT_KEY, SCHEMA_VERSION, Store

__all__ = ["BASE", "RESULT_FIELDS", "RESULT_KEY", "SCHEMA_VERSION", "Store"]
