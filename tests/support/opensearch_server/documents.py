"""Document endpoints of the loopback OpenSearch: ``_bulk``, ``/<index>/_doc``, ``_search``/``_count``, ``_refresh``.

``_bulk`` answers per item as OpenSearch does (``_version``, ``_seq_no``, ``_shards``, errors with
``type``/``reason``/``index``/``shard``/``index_uuid``): 409 on a replayed ``create``, invalid index
names refused per item, a write-blocked index (``index.blocks.write``) per item with 403
``cluster_block_exception``, an auto-create beyond the shard limit per item with 400
``validation_exception``, the cluster read-only block and malformed action lines for the whole
request. ``?refresh`` is honoured (``true``, ``wait_for``). Searches see what is refreshed only
(:mod:`.store`).
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

from tests.support.opensearch_server.cluster import NODE_ID
from tests.support.opensearch_server.common import (
    MAX_RESULT_WINDOW,
    PRIMARY_TERM,
    Reply,
    deep_merge,
    fail,
    index_name_problem,
    invalid_index,
    item_error,
    json_token,
)
from tests.support.opensearch_server.mappings import field_type, validate_source
from tests.support.opensearch_server.search import (
    _SEARCH_KEYS,
    Hit,
    SortKey,
    is_after,
    matches,
    parse_sort,
    rank,
    select_source,
    shard_failure,
)
from tests.support.opensearch_server.store import Doc, Index

ItemPredicate = Callable[[str, str, dict[str, Any]], int | None]
"""``(index, id, source) -> status or None``: the status to answer for a bulk item, None to process it."""



class DocumentsApi:
    """Mixed into FakeOpenSearch: the attributes and methods below are its own."""

    validate_mappings: bool
    data_nodes: int
    _indices: dict[str, Index]
    _lock: threading.RLock
    _refreshed: threading.Condition
    _stopping: threading.Event
    _item_scripts: dict[str, list[int]]
    _item_predicates: list[ItemPredicate]
    cluster_setting: Callable[[str], str | None]
    _resolve: Callable[[str, dict[str, str]], list[str]]
    _create_index: Callable[..., Index]

    # -- bulk ----------------------------------------------------------------------------------------------
    def _bulk(self, body: bytes, query: dict[str, str], default_index: str | None) -> tuple[int, dict[str, Any]]:
        started = time.perf_counter_ns()
        if not body.strip():
            raise fail(400, "action_request_validation_exception", "Validation Failed: 1: no requests added;")
        if not body.endswith(b"\n"):
            raise fail(400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
        operations: list[tuple[str, dict[str, Any], bytes | None]] = []
        lines = body.splitlines()
        i, total = 0, len(lines)
        allowed_meta = {"_index", "_id", "routing", "version", "version_type", "if_seq_no", "if_primary_term",
                        "pipeline", "require_alias", "retry_on_conflict", "_source"}
        while i < total:
            line = lines[i]
            i += 1
            if not line.strip():
                continue
            try:
                action = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise fail(400, "illegal_argument_exception", f"Malformed action/metadata line [{i}], expected "
                            "START_OBJECT or END_OBJECT but found [VALUE_STRING]") from None
            if not isinstance(action, dict) or len(action) != 1:
                raise fail(400, "illegal_argument_exception", f"Malformed action/metadata line [{i}], expected "
                            f"START_OBJECT but found [{'START_ARRAY' if isinstance(action, list) else 'VALUE'}]")
            (op, meta), = action.items()
            if op not in ("create", "index", "update", "delete"):
                raise fail(400, "illegal_argument_exception", f"Malformed action/metadata line [{i}], expected field "
                            f"[create], [delete], [index] or [update] but found [{op}]")
            if not isinstance(meta, dict):
                raise fail(400, "illegal_argument_exception", f"Malformed action/metadata line [{i}], expected "
                            "START_OBJECT but found [VALUE_STRING]")
            unknown = next((k for k in meta if k not in allowed_meta), None)
            if unknown is not None:
                raise fail(400, "illegal_argument_exception", f"Action/metadata line [{i}] contains an unknown "
                            f"parameter [{unknown}]")
            source_line = None
            if op != "delete":
                if i >= total:
                    break  # an action without its source line is dropped, as OpenSearch does
                source_line, i = lines[i], i + 1
            operations.append((op, meta, source_line))
        if self.cluster_setting("cluster.blocks.read_only") == "true":
            raise fail(403, "cluster_block_exception", "blocked by: [FORBIDDEN/6/cluster read-only (api)];")
        problems = []
        for op, meta, _ in operations:
            if not (meta.get("_index") or default_index):
                problems.append("index is missing")
            if op in ("update", "delete") and meta.get("_id") in (None, ""):
                problems.append("id is missing")
        if not operations:
            problems.append("no requests added")
        if problems:
            raise fail(400, "action_request_validation_exception",
                        "Validation Failed: " + "".join(f"{k}: {p};" for k, p in enumerate(problems, 1)))
        with self._lock:
            items = [{op: self._apply(op, str(meta.get("_index") or default_index), meta, line)}
                     for op, meta, line in operations]
        self._after_write({next(iter(i.values()))["_index"] for i in items}, query.get("refresh"))
        errors = any(next(iter(item.values()))["status"] >= 300 for item in items)
        return 200, {"took": (time.perf_counter_ns() - started) // 1_000_000, "errors": errors, "items": items}

    def _after_write(self, names: set[str], refresh: str | None) -> None:
        """``?refresh=true`` refreshes at once; ``wait_for`` waits for the next scheduled refresh (forever at -1)."""
        if refresh in (None, "false"):
            return
        with self._refreshed:
            indices = [self._indices[n] for n in names if n in self._indices]
            if refresh in ("", "true"):
                for index in indices:
                    index.refresh()
                self._refreshed.notify_all()
                return
            written = time.monotonic_ns()
            while not self._stopping.is_set():
                now = time.monotonic_ns()
                pending = [i for i in indices if i.refreshed_ns < written
                           and ((tick := i.next_refresh_ns(written)) is None or tick > now)]
                if not pending:
                    return
                ticks = [t for i in pending if (t := i.next_refresh_ns(written)) is not None]
                self._refreshed.wait(timeout=(min(ticks) - now) / 1e9 if ticks else 0.5)

    def _apply(self, op: str, index_name: str, meta: dict[str, Any], line: bytes | None) -> dict[str, Any]:
        """One bulk item; the caller holds the lock."""
        doc_id = str(meta["_id"]) if meta.get("_id") not in (None, "") else None
        if doc_id is None:
            doc_id = base64.urlsafe_b64encode(os.urandom(15)).decode()
        head = {"_index": index_name, "_id": doc_id}
        index = self._indices.get(index_name)

        def failure(status: int, error: dict[str, Any]) -> dict[str, Any]:
            return {**head, "status": status, "error": error}

        script = self._item_scripts.get(doc_id)
        if script:
            status = script.pop(0)
            if not script:
                del self._item_scripts[doc_id]
            if status >= 300:
                return failure(status, item_error(status, index_name, doc_id, index.uuid if index else "_na_"))
        problem = index_name_problem(index_name)
        if problem:
            return failure(400, invalid_index(index_name, problem))
        source: Any = {}
        if line is not None:
            try:
                source = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                source = exc
            if not isinstance(source, dict):
                return failure(400, {"type": "mapper_parsing_exception", "reason": "failed to parse",
                                     "index": index_name, "shard": "0", "index_uuid": index.uuid if index else "_na_",
                                     "caused_by": {"type": "not_x_content_exception", "reason": "Compressor detection "
                                                   "can only be called on some xcontent bytes or compressed xcontent "
                                                   "bytes"}})
        for predicate in self._item_predicates:
            status_ = predicate(index_name, doc_id, source if op != "update" else source.get("doc", source))
            if status_ is not None and status_ >= 300:
                return failure(status_, item_error(status_, index_name, doc_id, index.uuid if index else "_na_"))
        if index is None:
            if op == "delete":
                return failure(404, {"type": "index_not_found_exception", "reason": f"no such index [{index_name}]",
                                     "index": index_name, "resource.type": "index_expression",
                                     "resource.id": index_name, "index_uuid": "_na_"})
            try:
                index = self._create_index(index_name)
            except Reply as refused:  # auto-create refused (shard limit): a per-item error, as on a real node
                cause = refused.payload["error"]
                return failure(refused.status, {"type": cause["type"], "reason": cause["reason"]})
        if index.write_blocked and op != "delete":
            return failure(403, {"type": "cluster_block_exception",
                                 "reason": f"index [{index_name}] blocked by: [FORBIDDEN/8/index write (api)];"})
        where = {"index": index_name, "shard": "0", "index_uuid": index.uuid}
        current = index.docs.get(doc_id)
        shards = {"total": 1 + index.replicas, "successful": 1, "failed": 0}
        if "if_seq_no" in meta or "if_primary_term" in meta:
            want_seq, want_term = meta.get("if_seq_no"), meta.get("if_primary_term")
            if current is None or current.seq_no != want_seq or want_term != PRIMARY_TERM:
                found = (f"current document has seqNo [{current.seq_no}] and primary term [{PRIMARY_TERM}]"
                         if current else "but no document was found")
                return failure(409, {"type": "version_conflict_engine_exception", "reason": f"[{doc_id}]: version "
                                     f"conflict, required seqNo [{want_seq}], primary term [{want_term}]. {found}",
                                     **where})
        if op == "delete":
            if current is None:
                return {**head, "_version": 1, "result": "not_found", "_shards": shards,
                        "_seq_no": index.next_seq(), "_primary_term": PRIMARY_TERM, "status": 404}
            del index.docs[doc_id]
            return {**head, "_version": current.version + 1, "result": "deleted", "_shards": shards,
                    "_seq_no": index.next_seq(), "_primary_term": PRIMARY_TERM, "status": 200}
        if op == "create" and current is not None:
            return failure(409, {"type": "version_conflict_engine_exception", "reason": f"[{doc_id}]: version "
                                 f"conflict, document already exists (current version [{current.version}])", **where})
        if op == "update":
            if "script" in source:
                return failure(400, {"type": "illegal_argument_exception", "reason": "scripts are not supported by "
                                     "the loopback server", **where})
            if current is None:
                upsert = source.get("doc") if source.get("doc_as_upsert") else source.get("upsert")
                if upsert is None:
                    return failure(404, {"type": "document_missing_exception", "reason": f"[{doc_id}]: document "
                                         "missing", **where})
                source = upsert
            else:
                merged = deep_merge(current.source, source.get("doc") or {})
                if merged == current.source:
                    return {**head, "_version": current.version, "result": "noop", "_shards": shards,
                            "_seq_no": current.seq_no, "_primary_term": PRIMARY_TERM, "status": 200}
                source = merged
        if self.validate_mappings and index.mappings:
            error = validate_source(source, index.mappings, doc_id)
            if error is not None:
                error.update({k: v for k, v in where.items() if k not in error})
                return failure(400, error)
        version = current.version + 1 if current else 1
        previous = index.searchable_source(current, time.monotonic_ns()) if current else None
        doc = index.docs[doc_id] = Doc(source, version, index.next_seq(), previous=previous)
        created = current is None
        return {**head, "_version": version, "result": "created" if created else "updated", "_shards": shards,
                "_seq_no": doc.seq_no, "_primary_term": PRIMARY_TERM, "status": 201 if created else 200}

    def _single_doc(self, method: str, index_name: str, endpoint: str, doc_id: str | None, body: bytes,
                    query: dict[str, str]) -> tuple[int, Any]:
        """``/{index}/_doc/{id}`` (GET, HEAD, PUT, POST, DELETE) and ``/{index}/_create/{id}``."""
        if method in ("GET", "HEAD") and endpoint == "_doc" and doc_id is not None:
            self._resolve(index_name, {})
            with self._lock:
                doc = self._indices[index_name].docs.get(doc_id)
            if doc is None:
                return 404, {"_index": index_name, "_id": doc_id, "found": False}
            return 200, {"_index": index_name, "_id": doc_id, "_version": doc.version, "_seq_no": doc.seq_no,
                         "_primary_term": PRIMARY_TERM, "found": True, "_source": doc.source}
        if method == "DELETE" and doc_id is not None:
            op = "delete"
        elif method in ("PUT", "POST") and (doc_id is not None or endpoint == "_doc"):
            op = "create" if endpoint == "_create" or query.get("op_type") == "create" else "index"
        else:
            raise Reply(405, {"error": f"Incorrect HTTP method for uri [/{index_name}/{endpoint}] and method "
                                        f"[{method}]", "status": 405})
        meta = {"_id": doc_id} if doc_id else {}
        with self._lock:
            result = self._apply(op, index_name, meta, None if op == "delete" else body.strip() or b"null")
        self._after_write({index_name}, query.get("refresh"))
        status = result.pop("status")
        if "error" in result:
            error = result["error"]
            return status, {"error": {"root_cause": [error], **error}, "status": status}
        return status, result

    # -- templates and ISM ---------------------------------------------------------------------------------------

    # -- search ------------------------------------------------------------------------------------------------
    def _search(self, target: str, body: Any, query: dict[str, str], *, count: bool) -> tuple[int, Any]:
        started = time.perf_counter_ns()
        if not isinstance(body, dict):
            raise fail(400, "parsing_exception", "Unknown key for a START_ARRAY in [_na_].")
        allowed = {"query"} if count else _SEARCH_KEYS
        unknown = next((k for k in body if k not in allowed), None)
        if unknown is not None:
            token = json_token(body[unknown])
            raise fail(400, "parsing_exception", f"Unknown key for a {token} in [{unknown}].", line=1, col=1)
        names = self._resolve(target, query)
        now = time.monotonic_ns()
        with self._lock:
            hits = [Hit(n, doc_id, source, self._indices[n].mappings) for n in names
                    for doc_id, doc in self._indices[n].docs.items()
                    if (source := self._indices[n].searchable_source(doc, now)) is not None]
        clause = body.get("query", {"match_all": {}})
        hits = [h for h in hits if matches(h, clause)]
        shards = {"total": len(names), "successful": len(names), "skipped": 0, "failed": 0}
        if count:
            return 200, {"count": len(hits), "_shards": shards}
        total = len(hits)
        if "post_filter" in body:
            hits = [h for h in hits if matches(h, body["post_filter"])]
        keys = parse_sort(body["sort"] if "sort" in body else query["sort"].split(",") if query.get("sort") else None)
        self._check_sort(keys, names)
        values: dict[int, list[Any]] = {id(h): [k.value(h) for k in keys] for h in hits} if keys else {}
        for position in range(len(keys) - 1, -1, -1):
            key = keys[position]

            def order(h: Hit, p: int = position, k: SortKey = key) -> tuple[Any, ...]:
                value = values[id(h)][p]
                if value is None:  # missing values go last unless asked first, whatever the direction
                    return (1 if k.missing_first == k.desc else -1,)
                return (0, *rank(value))

            hits.sort(key=order, reverse=key.desc)
        after = body.get("search_after")
        start = int(body.get("from", query.get("from", 0)))
        size = int(body.get("size", query.get("size", 10)))
        if after is not None:
            if start:
                raise fail(400, "illegal_argument_exception", "[from] parameter must be set to 0 when "
                            "[search_after] is used")
            if len(after) != len(keys):
                raise fail(400, "illegal_argument_exception", f"search_after has {len(after)} value(s) but sort has "
                            f"{len(keys)}.")
            hits = [h for h in hits if is_after(values[id(h)], after, keys)]
        if start + size > MAX_RESULT_WINDOW:
            raise fail(400, "illegal_argument_exception", f"Result window is too large, from + size must be less than "
                        f"or equal to: [{MAX_RESULT_WINDOW}] but was [{start + size}].")
        page = hits[start:start + size]
        source_filter = body.get("_source", True)
        track = body.get("track_total_hits", query.get("track_total_hits", MAX_RESULT_WINDOW))
        answer_hits: dict[str, Any] = {}
        if track not in (False, "false"):
            limit = total if track in (True, "true") else int(track)
            answer_hits["total"] = {"value": min(total, limit), "relation": "eq" if total <= limit else "gte"}
        answer_hits["max_score"] = None if keys else (1.0 if page else None)
        answer_hits["hits"] = [{"_index": h.index, "_id": h.id, "_score": None if keys else 1.0,
                                **({"_source": src} if (src := select_source(h.source, source_filter)) is not None
                                   else {}), **({"sort": values[id(h)]} if keys else {})} for h in page]
        return 200, {"took": (time.perf_counter_ns() - started) // 1_000_000, "timed_out": False, "_shards": shards,
                     "hits": answer_hits}


    def _check_sort(self, keys: list[SortKey], names: list[str]) -> None:
        """Refuse sorts a real shard refuses: ``_id`` without fielddata, a field no mapping knows."""
        for key in keys:
            if key.field == "_id" and self.cluster_setting("indices.id_field_data.enabled") == "false":
                cause = {"type": "illegal_argument_exception", "reason": "Fielddata access on the _id field is "
                         "disallowed, you can re-enable it by updating the dynamic cluster setting: "
                         "indices.id_field_data.enabled"}
                raise Reply(400, shard_failure(400, cause, NODE_ID))
            if key.field.startswith("_") or key.unmapped_type:
                continue
            for name in names:
                index = self._indices[name]
                strict = str(index.mappings.get("dynamic", "true")).lower() in ("false", "strict")
                if strict and index.mappings.get("properties") and field_type(index.mappings, key.field) is None:
                    cause = {"type": "query_shard_exception", "reason": f"No mapping found for [{key.field}] in "
                             "order to sort on", "index": name, "index_uuid": index.uuid}
                    raise Reply(400, shard_failure(400, cause, NODE_ID))

    def _refresh(self, target: str, query: dict[str, str]) -> dict[str, Any]:
        names = self._resolve(target, query)
        with self._refreshed:
            copies = assigned = 0
            for name in names:
                index = self._indices[name]
                index.refresh()
                copies += index.shards * (1 + index.replicas)
                assigned += index.shards * (1 + min(index.replicas, self.data_nodes - 1))
            self._refreshed.notify_all()
        return {"_shards": {"total": copies, "successful": assigned, "failed": 0}}
