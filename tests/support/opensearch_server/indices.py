"""Index endpoints of the loopback OpenSearch: indices, settings and mappings, templates, ISM policies.

Index creation (explicit or by a bulk write) merges the highest-priority matching composable
template (components first) with the request, validates settings and mappings as a real node does
(:mod:`.settings`, :mod:`.mappings`), enforces the shard limit and lets ISM attach the policy whose
``ism_template`` matches the new index (:mod:`.ism_managed`). Templates answer in OpenSearch's
shapes (settings as text, mappings as given); a template naming a missing component, or
overlapping another at the same priority, is refused; a component in use cannot be deleted.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Callable
from typing import Any

from tests.support.opensearch_server.common import (
    ISM_CONFIG_INDEX,
    PRIMARY_TERM,
    Reply,
    as_list,
    deep_merge,
    fail,
    index_name_problem,
    invalid_index,
    parse_json,
)
from tests.support.opensearch_server.ism import event_ms, list_page, parse_policy, policy_view, validate_ism_templates
from tests.support.opensearch_server.mappings import check_mappings, java_text, normalize_index_mappings
from tests.support.opensearch_server.settings import flatten_settings, normalize_settings, validate_index_settings
from tests.support.opensearch_server.store import Index


class IndicesApi:
    """Mixed into FakeOpenSearch: the attributes and methods below are its own."""

    version_tuple: tuple[int, ...]
    ism_plugin: bool
    data_nodes: int
    index_templates: dict[str, dict[str, Any]]
    component_templates: dict[str, dict[str, Any]]
    ism_policies: dict[str, dict[str, Any]]
    _indices: dict[str, Index]
    _lock: threading.RLock
    _ism_seq_no: int
    shard_limit_problem: Callable[[int], str | None]
    _ism_attach: Callable[[Index], None]

    # -- indices ---------------------------------------------------------------------------------------
    def _resolve(self, target: str, query: dict[str, str]) -> list[str]:
        """Index names for a target (comma list, globs, ``_all``), with OpenSearch's missing-index rules."""
        ignore_unavailable = query.get("ignore_unavailable") == "true"
        allow_no_indices = query.get("allow_no_indices", "true") != "false"
        names: list[str] = []
        with self._lock:
            for part in target.split(","):
                if part in ("_all", "*", ""):
                    names += [n for n in self._indices if not n.startswith(".")]
                elif "*" in part or "?" in part:
                    names += [n for n in self._indices if fnmatch.fnmatchcase(n, part)]
                elif part in self._indices:
                    names.append(part)
                elif not ignore_unavailable:
                    raise fail(404, "index_not_found_exception", f"no such index [{part}]", index=part,
                                **{"resource.type": "index_or_alias", "resource.id": part, "index_uuid": "_na_"})
        if not names and not allow_no_indices:
            raise fail(404, "index_not_found_exception", f"no such index [{target}]", index=target,
                        **{"resource.type": "index_or_alias", "resource.id": target, "index_uuid": "_na_"})
        return sorted(set(names))

    def _template_for(self, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(mappings, settings) from the highest-priority matching index template, components merged."""
        candidates = [(int(t.get("priority", 0)), n, t) for n, t in self.index_templates.items()
                      if any(fnmatch.fnmatchcase(name, p) for p in as_list(t.get("index_patterns")))]
        if not candidates:
            return {}, {}
        _, _, chosen = max(candidates, key=lambda c: c[0])
        merged: dict[str, Any] = {}
        for component in chosen.get("composed_of", []):
            merged = deep_merge(merged, (self.component_templates.get(component) or {}).get("template") or {})
        merged = deep_merge(merged, chosen.get("template") or {})
        return merged.get("mappings") or {}, merged.get("settings") or {}

    def _create_index(self, name: str, body: dict[str, Any] | None = None) -> Index:
        """Create an index (caller holds the lock), applying the matching template and the shard limit."""
        mappings, settings = self._template_for(name)
        if body:
            mappings = deep_merge(mappings, body.get("mappings") or {})
            settings = deep_merge(settings, body.get("settings") or {})
        index = Index(name, mappings, settings, created_ms=event_ms())
        problem = self.shard_limit_problem(index.shards * (1 + index.replicas))
        if problem is not None:
            raise fail(400, "validation_exception", problem)
        self._indices[name] = index
        self._ism_attach(index)
        return index

    def _index_view(self, index: Index) -> dict[str, Any]:
        settings = normalize_settings(index.settings)
        settings.setdefault("index", {}).setdefault("replication", {"type": "DOCUMENT"})
        settings["index"].update({
            "number_of_shards": settings["index"].get("number_of_shards", "1"),
            "number_of_replicas": settings["index"].get("number_of_replicas", "1"),
            "provided_name": index.name, "uuid": index.uuid, "creation_date": str(index.created_ms),
            "version": {"created": "136387927"}})
        return {"aliases": {}, "mappings": normalize_index_mappings(index.mappings), "settings": settings}

    def _index_endpoint(self, method: str, name: str, body: bytes, query: dict[str, str]) -> tuple[int, Any]:
        if method == "PUT":
            problem = index_name_problem(name)
            if problem:
                raise Reply(400, {"error": {"root_cause": [invalid_index(name, problem)],
                                             **invalid_index(name, problem)}, "status": 400})
            request = parse_json(body, required=False)
            check_mappings(request.get("mappings") or {}, self.version_tuple)
            validate_index_settings(request.get("settings") or {}, self.version_tuple, ism_plugin=self.ism_plugin)
            with self._lock:
                if name in self._indices:
                    raise fail(400, "resource_already_exists_exception", f"index [{name}/{self._indices[name].uuid}] "
                                "already exists", index=name, index_uuid=self._indices[name].uuid)
                self._create_index(name, request)
            return 200, {"acknowledged": True, "shards_acknowledged": True, "index": name}
        names = self._resolve(name, query)
        with self._lock:
            if method == "DELETE":
                for existing in names:
                    del self._indices[existing]
                return 200, {"acknowledged": True}
            if method == "HEAD":
                return (200 if names else 404), None
            return 200, {n: self._index_view(self._indices[n]) for n in names}

    def _cat_indices(self, pattern: str, query: dict[str, str]) -> tuple[int, Any]:
        names = self._resolve(pattern, {"ignore_unavailable": "false", **query})
        with self._lock:
            rows = [{"health": "green" if i.replicas < self.data_nodes else "yellow", "status": "open", "index": n,
                     "uuid": i.uuid, "pri": str(i.shards), "rep": str(i.replicas), "docs.count": str(len(i.docs)),
                     "docs.deleted": "0", "store.size": f"{len(i.docs)}kb", "pri.store.size": f"{len(i.docs)}kb"}
                    for n in names for i in [self._indices[n]]]
        if query.get("h"):
            columns = query["h"].split(",")
            rows = [{c: row.get(c) for c in columns} for row in rows]
        if query.get("format") == "json":
            return 200, rows
        return 200, "".join(" ".join(row.values()) + "\n" for row in rows).encode()


    def _mapping_or_settings(self, method: str, target: str, what: str, body: bytes,
                             query: dict[str, str]) -> tuple[int, Any]:
        names = self._resolve(target, query)
        key = "mappings" if what == "_mapping" else "settings"
        with self._lock:
            if method == "PUT":
                if key != "settings":
                    raise fail(400, "illegal_argument_exception", "mapping updates are not supported by the loopback "
                               "server")
                update = parse_json(body)
                validate_index_settings(update, self.version_tuple, ism_plugin=self.ism_plugin)
                for name in names:
                    flat = {k if k.startswith("index.") else f"index.{k}": v
                            for k, v in flatten_settings(update).items()}
                    current = {k if k.startswith("index.") else f"index.{k}": v
                               for k, v in flatten_settings(self._indices[name].settings).items()}
                    for setting, value in flat.items():
                        if value is None:
                            current.pop(setting, None)
                        else:
                            current[setting] = value
                    self._indices[name].settings = current
                return 200, {"acknowledged": True}
            return 200, {name: {key: self._index_view(self._indices[name])[key]} for name in names}

    # -- templates and ISM ---------------------------------------------------------------------------------------
    def _templates(self, method: str, kind: str, name: str, body: bytes) -> tuple[int, Any]:
        index_kind = kind == "_index_template"
        store = self.index_templates if index_kind else self.component_templates
        label = "index_template" if index_kind else "component_template"
        with self._lock:
            if method in ("PUT", "POST"):
                template = parse_json(body)
                if not isinstance(template, dict):
                    raise fail(400, "x_content_parse_exception", "[1:1] template must be an object")
                self._validate_template(index_kind, name, template)
                store[name] = template
                return 200, {"acknowledged": True}
            selected = [n for n in store if any(fnmatch.fnmatchcase(n, p) for p in name.split(","))]
            if method == "DELETE":
                if not selected:
                    if index_kind:
                        raise fail(404, "index_template_missing_exception", f"index_template [{name}] missing")
                    raise fail(404, "resource_not_found_exception", name)
                if not index_kind:
                    users = sorted(t for t, body_ in self.index_templates.items()
                                   if set(body_.get("composed_of", [])) & set(selected))
                    if users:
                        raise fail(400, "illegal_argument_exception", f"component templates {selected} cannot be "
                                    f"removed as they are still in use by index templates {users}")
                for n in selected:
                    del store[n]
                return 200, {"acknowledged": True}
            if not selected and "*" not in name:
                raise fail(404, "resource_not_found_exception", f"{label.replace('_', ' ')} matching [{name}] not found")
            if method == "HEAD":
                return (200 if selected else 404), None
            found = [{"name": n, label: self._template_view(index_kind, store[n])} for n in sorted(selected)]
            return 200, {f"{label}s": found}

    @staticmethod
    def _template_view(index_kind: bool, template: dict[str, Any]) -> dict[str, Any]:
        # settings come back as text; mappings as they were given (GET on a real node keeps `dynamic: false`)
        view = dict(template)
        if "settings" in (template.get("template") or {}):
            view["template"] = {**template["template"], "settings": normalize_settings(template["template"]["settings"])}
        if index_kind:
            view["index_patterns"] = as_list(view.get("index_patterns"))
            view.setdefault("composed_of", [])
        return view

    def _validate_template(self, index_kind: bool, name: str, template: dict[str, Any]) -> None:
        check_mappings((template.get("template") or {}).get("mappings") or {}, self.version_tuple)
        validate_index_settings((template.get("template") or {}).get("settings") or {}, self.version_tuple,
                                ism_plugin=self.ism_plugin)
        if not index_kind:
            if "template" not in template:
                raise fail(400, "x_content_parse_exception", "[1:2] Required [template]")
            return
        patterns = as_list(template.get("index_patterns"))
        if not patterns:
            raise fail(400, "action_request_validation_exception", "Validation Failed: 1: index patterns are missing;")
        missing = [c for c in template.get("composed_of", []) if c not in self.component_templates]
        if missing:
            raise fail(400, "invalid_index_template_exception", f"index_template [{name}] invalid, cause [index "
                        f"template [{name}] specifies component templates {java_text(missing)} that do not exist]")
        priority = int(template.get("priority", 0))
        for other, body in self.index_templates.items():
            theirs = as_list(body.get("index_patterns"))
            overlap = other != name and int(body.get("priority", 0)) == priority and any(
                fnmatch.fnmatchcase(a, b) or fnmatch.fnmatchcase(b, a) for a in patterns for b in theirs)
            if overlap:
                raise fail(400, "illegal_argument_exception", f"index template [{name}] has index patterns {java_text(patterns)} "
                            f"matching patterns from existing templates [{other}] with patterns ({other} => {java_text(theirs)}) "
                            f"that have the same priority [{priority}], multiple index templates may not match during "
                            "index creation, please use a different priority")

    def _ism(self, method: str, policy_id: str | None, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        with self._lock:
            if policy_id is None:
                return 200, list_page(self.ism_policies, query)
            current = self.ism_policies.get(policy_id)
            if method == "GET":
                if current is None:
                    raise fail(404, "status_exception", "Policy not found")
                return 200, {"_id": policy_id, **current}
            if method == "DELETE":
                self._ism_seq_no += 1
                answer = {"_index": ISM_CONFIG_INDEX, "_id": policy_id, "_version": (current or {}).get("_version", 0)
                          + 1, "result": "deleted" if current else "not_found", "forced_refresh": True,
                          "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": self._ism_seq_no,
                          "_primary_term": PRIMARY_TERM}
                self.ism_policies.pop(policy_id, None)
                return (200 if current else 404), answer
            policy = parse_json(body).get("policy")
            if not isinstance(policy, dict):
                raise fail(400, "illegal_argument_exception", "Required [policy]")
            parse_policy(policy)
            if policy.get("ism_template") is not None:
                existing = {k: v["policy"].get("ism_template") or [] for k, v in self.ism_policies.items()}
                validate_ism_templates(policy_id, as_list(policy["ism_template"]), existing, self.version_tuple)
            where = {"index": ISM_CONFIG_INDEX, "shard": "0", "index_uuid": "ism-config-uuid"}
            seq, term = query.get("if_seq_no"), query.get("if_primary_term")
            if current is not None and (seq is None or term is None):
                raise fail(409, "version_conflict_engine_exception", f"[{policy_id}]: version conflict, document "
                           f"already exists (current version [{current['_version']}])", **where)
            if seq is not None and (current is None or int(seq) != current["_seq_no"]
                                    or int(term or -1) != current["_primary_term"]):
                found = (f"current document has seqNo [{current['_seq_no']}] and primary term "
                         f"[{current['_primary_term']}]" if current else "but no document was found")
                raise fail(409, "version_conflict_engine_exception", f"[{policy_id}]: version conflict, required "
                           f"seqNo [{seq}], primary term [{term}]. {found}", **where)
            self._ism_seq_no += 1
            stored = policy_view(policy_id, policy)
            record = {"_version": current["_version"] + 1 if current else 1, "_seq_no": self._ism_seq_no,
                      "_primary_term": PRIMARY_TERM, "policy": stored}
            self.ism_policies[policy_id] = record
            # the plugin wraps the policy twice in this answer (and once in GET)
            return (200 if current else 201), {"_id": policy_id, "_version": record["_version"],
                                               "_primary_term": PRIMARY_TERM, "_seq_no": record["_seq_no"],
                                               "policy": {"policy": stored}}
