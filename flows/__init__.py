"""Prefect flows: thin wiring of smda library calls (daily, backfill, train, validate)."""
