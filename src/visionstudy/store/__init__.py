"""The run database: every run of a study recorded in Optuna's RDB storage (SQLite by default,
PostgreSQL for several machines), used as the shared queue with heartbeats."""

from visionstudy.store.db import Claim, RunStore, default_url, open_store

__all__ = ["Claim", "RunStore", "default_url", "open_store"]
