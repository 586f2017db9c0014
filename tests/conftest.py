"""Shared pytest configuration."""

from __future__ import annotations

# fixtures for real OpenSearch clusters, shared by tests/e2e and tests/contract (one pool per session)
pytest_plugins = ("tests.support.e2e_fixtures",)
