"""Managed indices: the ISM policy an ``ism_template`` attaches to a new index, and ``_plugins/_ism/explain``.

Written from opensearch-project/index-management at tags 2.19.6.0 and 3.8.0.0 (the versions the
suite's real nodes run; the plugin itself is not on Maven Central, so this is its only model here):

- **When**: ``ManagedIndexCoordinator.kt`` ``clusterChanged`` -> ``sweepClusterChangedEvent`` ->
  ``createManagedIndexRequests(state, event.indicesCreated())``: only an index being *created* is
  matched, by an explicit ``PUT /<index>`` or a bulk item's auto-create alike; nothing happens
  before a policy is stored (the config index exists with the first policy). An index that existed
  before the policy stays unmanaged: ``findMatchingPolicy`` only considers templates whose
  ``last_updated_time`` is *before* the index's creation date, and the background ``sweep`` (every
  ``coordinator.sweep_period``, 10 minutes) applies the same rule to unmanaged indices, so it adds
  nothing for such an index either (the sweep is not modelled; it would differ only for a template
  PUT with a ``last_updated_time`` of its own, older than an existing index). Here the
  attachment happens inside the creating request; the plugin does it a moment later (a bulk write
  to its config index), so a test against a real cluster polls explain.
- **Which indices** (``findIndexLookupName``): the index's ``auto_manage`` setting must be true,
  and hidden indices (``index.hidden``, or a name starting with ``.``) are never auto-managed.
  ``index.plugins.index_state_management.auto_manage`` falls back to the legacy
  ``index.opendistro.index_state_management.auto_manage`` (``ManagedIndexSettings.kt``), default true.
  Before 3.4 the plugin took ``plugins || legacy``, so ``plugins: false`` alone did not stop it;
  from 3.4 (#1525) the ``plugins`` key decides when it is set.
- **Which policy** (``findMatchingPolicy``): per policy, the highest priority among its templates
  that are older than the index and whose ``index_patterns`` match (``Regex.simpleMatch``: only ``*``
  is special); then the highest priority over all policies wins. From 3.4 (#1509,
  ``matchesIndexPatterns``) a pattern ``-<p>`` excludes: a match needs an inclusion and no exclusion.
  The policy is copied into the job (``managedIndexConfigIndexRequest``): a later change of the
  policy does not reach an index already managed (the plugin's change-policy API does; not here).
- **Explain** (``RestExplainAction.kt``, ``transport/action/explain/TransportExplainAction.kt``,
  ``ExplainResponse.kt``, ``spi/.../model/ManagedIndexMetaData.kt``): ``GET
  _plugins/_ism/explain[/<indices>]``. With indices (a comma list, ``*`` globs, ``_all``; resolved
  leniently with hidden ones: a missing index is left out) every index is listed; without, only the
  managed ones, sorted by name (``sortOrder``), paged (``size`` 20, ``from``). Each entry has
  ``index.plugins.index_state_management.policy_id`` and ``index.opendistro.index_state_management.policy_id``
  (null when unmanaged), then, for a managed index whose job has not run yet (the job runs every
  ``job_interval``, 5 minutes; it never runs here), the stand-in metadata ``TransportExplainAction``
  builds from the job: ``index``, ``index_uuid``, ``policy_id`` (no ``state``, ``action`` or
  ``info`` yet), then ``enabled`` (null when unmanaged) and, with ``show_policy=true``, the job's
  ``policy``. ``total_managed_indices`` counts the managed indices among those asked for. A POST
  (an explain filter body) is refused as not modelled.
"""

from __future__ import annotations

import copy
import re
import threading
from typing import Any

from tests.support.opensearch_server.common import fail
from tests.support.opensearch_server.settings import flatten_settings
from tests.support.opensearch_server.store import Index, ManagedIndexConfig

POLICY_ID_SETTING = "index.plugins.index_state_management.policy_id"
LEGACY_POLICY_ID_SETTING = "index.opendistro.index_state_management.policy_id"
_AUTO_MANAGE = "index.plugins.index_state_management.auto_manage"
_LEGACY_AUTO_MANAGE = "index.opendistro.index_state_management.auto_manage"
_SINCE_3_4 = (3, 4)  # exclusion patterns (#1509) and the auto_manage precedence (#1525)
_PAGE_SIZE = 20


def simple_match(pattern: str, name: str) -> bool:
    """``Regex.simpleMatch``: ``*`` matches any run of characters, everything else itself."""
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), name, re.DOTALL) is not None


def matches_patterns(name: str, patterns: list[str], version: tuple[int, ...]) -> bool:
    """Whether a template's ``index_patterns`` select ``name`` (``-`` exclusions from 3.4)."""
    if version < _SINCE_3_4:
        return any(simple_match(p, name) for p in patterns)
    included = [p for p in patterns if not p.startswith("-")]
    excluded = [p[1:] for p in patterns if p.startswith("-")]
    return any(simple_match(p, name) for p in included) and not any(simple_match(p, name) for p in excluded)


def _flag(settings: dict[str, Any], key: str) -> bool | None:
    value = settings.get(key, settings.get(key.removeprefix("index.")))
    return None if value is None or str(value) == "" else str(value).lower() == "true"


def auto_managed(index: Index, version: tuple[int, ...]) -> bool:
    """``findIndexLookupName``: whether the coordinator may attach a policy to ``index`` at all."""
    flat = flatten_settings(index.settings)
    hidden = _flag(flat, "index.hidden") or index.name.startswith(".")
    plugins, legacy = _flag(flat, _AUTO_MANAGE), _flag(flat, _LEGACY_AUTO_MANAGE)
    legacy = True if legacy is None else legacy
    if version >= _SINCE_3_4:
        auto = legacy if plugins is None else plugins
    else:
        auto = bool(plugins) or legacy  # AUTO_MANAGE.get() (falling back to legacy) || legacy
    return auto and not hidden


def matching_policy(name: str, created_ms: int, policies: dict[str, dict[str, Any]],
                    version: tuple[int, ...]) -> str | None:
    """``findMatchingPolicy``: the id of the policy that manages a new index, or None.

    ``policies``: policy id -> the stored record (``{"policy": {..., "ism_template": [...]}}``).
    """
    by_priority: dict[int, str] = {}
    for policy_id, record in sorted(policies.items()):
        priorities = [int(t["priority"]) for t in record["policy"].get("ism_template") or []
                      if int(t["last_updated_time"]) < created_ms
                      and matches_patterns(name, list(t["index_patterns"]), version)]
        if priorities:
            by_priority[max(priorities)] = policy_id
    return by_priority[max(by_priority)] if by_priority else None


def explain_entry(index: Index, *, show_policy: bool) -> dict[str, Any]:
    """One index in ``ExplainResponse.toXContent``, before the job's first run."""
    job = index.managed
    if job is None:
        return {POLICY_ID_SETTING: None, LEGACY_POLICY_ID_SETTING: None, "enabled": None}
    entry: dict[str, Any] = {POLICY_ID_SETTING: job.policy_id, LEGACY_POLICY_ID_SETTING: job.policy_id,
                             "index": index.name, "index_uuid": index.uuid, "policy_id": job.policy_id,
                             "enabled": job.enabled}
    if show_policy:
        entry["policy"] = copy.deepcopy(job.policy)
    return entry


def resolve_leniently(target: str, names: list[str]) -> list[str]:
    """Index names for an explain target, hidden ones included, missing ones left out (``lenientExpandHidden``)."""
    found: list[str] = []
    for part in target.split(","):
        if part in ("_all", "*"):
            found += names
        elif "*" in part:
            found += [n for n in names if simple_match(part, n)]
        elif part in names:
            found.append(part)
    return sorted(set(found))


class ManagedIndicesApi:
    """Mixed into FakeOpenSearch: the attributes below are its own."""

    version_tuple: tuple[int, ...]
    ism_plugin: bool
    ism_policies: dict[str, dict[str, Any]]
    _indices: dict[str, Index]
    _lock: threading.RLock

    def _ism_attach(self, index: Index) -> None:
        """The coordinator on the creation of ``index`` (the caller holds the lock)."""
        if not self.ism_plugin or not auto_managed(index, self.version_tuple):
            return
        policy_id = matching_policy(index.name, index.created_ms, self.ism_policies, self.version_tuple)
        if policy_id is not None:
            index.managed = ManagedIndexConfig(policy_id, copy.deepcopy(self.ism_policies[policy_id]["policy"]))

    def _explain(self, method: str, target: str | None, query: dict[str, str]) -> tuple[int, Any]:
        if method != "GET":
            raise fail(400, "illegal_argument_exception", "explain filters (POST) are not modelled by the loopback server")
        show_policy = query.get("show_policy") == "true"
        with self._lock:
            if target is None:
                managed = sorted((n for n, i in self._indices.items() if i.managed is not None),
                                 reverse=query.get("sortOrder", "asc") == "desc")
                start = int(query.get("from", 0))
                names, total = managed[start:start + int(query.get("size", _PAGE_SIZE))], len(managed)
            else:
                names = resolve_leniently(target, list(self._indices))
                total = sum(1 for n in names if self._indices[n].managed is not None)
            answer: dict[str, Any] = {n: explain_entry(self._indices[n], show_policy=show_policy) for n in names}
        answer["total_managed_indices"] = total
        return 200, answer
