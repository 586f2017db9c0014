"""Shared pytest configuration: e2e tests run only when asked (or when a cluster URL is given)."""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--with-e2e", action="store_true", default=False,
                     help="run end-to-end tests against a real OpenSearch (testcontainers or SERVELOG_E2E_OPENSEARCH_URL)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--with-e2e") or os.environ.get("SERVELOG_E2E_OPENSEARCH_URL"):
        return
    skip = pytest.mark.skip(reason="end-to-end: pass --with-e2e or set SERVELOG_E2E_OPENSEARCH_URL (needs Docker or a cluster)")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)
