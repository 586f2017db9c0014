"""The end-to-end suite runs against real OpenSearch clusters: see :mod:`tests.support.e2e` (selection,
the session's pool) and :mod:`tests.support.e2e_fixtures` (the ``opensearch`` and ``start_node``
fixtures, registered for the whole test tree from ``tests/conftest.py``).

OpenSearch Dashboards cannot run on these machines: Dashboards checks use the loopback server.
"""

from __future__ import annotations

from tests.support.e2e import Cluster

__all__ = ["Cluster"]
