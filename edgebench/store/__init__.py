"""The results store: one SQLite file per run, with a versioned schema."""

from edgebench.store.sqlite import SCHEMA_VERSION, Store

__all__ = ["SCHEMA_VERSION", "Store"]
