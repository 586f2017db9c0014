"""A loopback OpenSearch that speaks the real REST protocol, with scriptable faults, for tests.

:class:`FakeOpenSearch` is an in-process HTTP/1.1 server (keep-alive, one daemon thread per
connection, bound to 127.0.0.1 on an ephemeral port, optionally TLS) that the real ``opensearch-py``
client talks to unchanged. It answers the way OpenSearch 2.x answers, so tests exercise servelog's
real parsing and error handling rather than a simplified contract:

- ``GET``/``HEAD /``, ``GET /_cluster/health``;
- ``_bulk`` (``create``, ``index``, ``delete``, ``update``): per-item results and errors shaped like
  OpenSearch's (``_version``, ``_seq_no``, ``_shards``, ``error.{type, reason, index, shard,
  index_uuid}``), 409 on a replayed ``create``, invalid index names refused per item, malformed
  action lines refused for the whole request, ``filter_path`` honoured;
- composable index templates and component templates (a template naming a missing component is
  refused; a component in use cannot be deleted; GET answers with settings turned to text as the
  real cluster does), applied when an index is created;
- optional mapping validation against the applied template (``validate_mappings=True``):
  ``dynamic: strict``, keyword length, dates, integers, booleans, objects, ``flat_object``,
  multi-fields, ``ignore_malformed`` and ``ignore_above`` (with ``dynamic: true`` unknown fields
  are accepted but their types are not learnt, so later type conflicts go unnoticed);
- ISM policies with the plugin's optimistic concurrency (a ``PUT`` on an existing policy without
  ``if_seq_no``/``if_primary_term`` is a 409);
- indices (create, exists, delete with globs, ``_cat/indices``, ``_refresh``, ``_doc``);
- ``_search``/``_count`` with the query DSL servelog uses (``bool``, ``term``, ``terms``, ``match``,
  ``match_phrase``, ``range`` on numbers and nanosecond timestamps, ``exists``, ``ids``,
  ``prefix``, ``wildcard``, simple ``query_string``), ``sort``, ``from``/``size``,
  ``search_after`` and ``track_total_hits``;
- anything else: OpenSearch's own "no handler found" 400 (never a crash).

Faults are scripted and consumed in order of arrival, thread-safely: whole-request statuses
(:meth:`FakeOpenSearch.fail_requests`), per-document statuses (:meth:`~FakeOpenSearch.fail_items`,
:meth:`~FakeOpenSearch.fail_items_where`), dropped connections before or after the bulk is applied
(:meth:`~FakeOpenSearch.drop_connections`), slow answers (:meth:`~FakeOpenSearch.set_delay`) and
an unavailable cluster (:meth:`~FakeOpenSearch.set_unavailable`).

Bulk bodies of several megabytes are parsed with ``orjson`` line by line and applied under one lock
acquisition, so the server is never the bottleneck of a test.
"""

from __future__ import annotations

import base64
import calendar
import contextlib
import datetime as dt
import fnmatch
import gzip
import hmac
import ipaddress
import math
import os
import re
import socket
import socketserver
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

ItemPredicate = Callable[[str, str, dict[str, Any]], int | None]
"""``(index, id, source) -> status or None``: the status to answer for a bulk item, None to process it."""

CLUSTER_NAME = "servelog-test"
PRIMARY_TERM = 1
MAX_KEYWORD_BYTES = 32766  # Lucene's limit for one indexed term
MAX_RESULT_WINDOW = 10000
ISM_CONFIG_INDEX = ".opendistro-ism-config"


@dataclass
class RequestRecord:
    """One request as the server saw it (in order of completion)."""

    method: str
    path: str  # as sent, without the query string
    query: dict[str, str]
    headers: dict[str, str]
    body_size: int  # bytes received (after decompression)
    status: int  # the status answered; 0 when the connection was dropped without an answer
    items: int = 0  # bulk items in the request (0 for other requests and for unparsed bodies)

    @property
    def documents(self) -> int:
        """Alias of :attr:`items` (the name the first loopback server used)."""
        return self.items


class _Reply(Exception):
    """Raised anywhere while routing to answer at once with ``status`` and ``payload``."""

    def __init__(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.payload, self.headers = status, payload, headers or {}


def error_body(status: int, kind: str, reason: str, **extra: Any) -> dict[str, Any]:
    """OpenSearch's error envelope: ``{"error": {"root_cause": [...], "type", "reason"}, "status"}``."""
    cause = {"type": kind, "reason": reason, **extra}
    return {"error": {"root_cause": [cause], **cause}, "status": status}


def _fail(status: int, kind: str, reason: str, **extra: Any) -> _Reply:
    return _Reply(status, error_body(status, kind, reason, **extra))


def _no_handler(method: str, path: str) -> _Reply:
    # OpenSearch answers unknown endpoints with a bare string as "error"
    return _Reply(400, {"error": f"no handler found for uri [{path}] and method [{method}]", "status": 400})


# -- per-item and whole-request error shapes ---------------------------------------------------
def _item_error(status: int, index: str, doc_id: str, uuid_: str) -> dict[str, Any]:
    """A realistic ``error`` object for a bulk item answered with ``status``."""
    where = {"index": index, "shard": "0", "index_uuid": uuid_}
    if status == 409:
        return {"type": "version_conflict_engine_exception",
                "reason": f"[{doc_id}]: version conflict, document already exists (current version [1])", **where}
    if status == 429:
        return {"type": "rejected_execution_exception",
                "reason": "rejected execution of coordinating operation [coordinating_and_primary_bytes=104857600, "
                          "replica_bytes=0, all_bytes=104857600, coordinating_operation_bytes=1048576, "
                          "max_coordinating_and_primary_bytes=107374182]"}
    if status == 400:
        return {"type": "mapper_parsing_exception", "reason": f"failed to parse field [message] of type [text] in "
                f"document with id '{doc_id}'. Preview of field's value: 'null'", **where,
                "caused_by": {"type": "illegal_argument_exception", "reason": "injected by the test"}}
    if status == 403:
        return {"type": "security_exception", "reason": "no permissions for [indices:data/write/bulk[s]] and User "
                "[name=servelog, backend_roles=[], requestedTenant=null]"}
    if status == 404:
        return {"type": "index_not_found_exception", "reason": f"no such index [{index}]", **where}
    if status == 503:
        return {"type": "unavailable_shards_exception", "reason": f"[{index}][0] primary shard is not active "
                f"Timeout: [1m], request: [BulkShardRequest [[{index}][0]] containing [1] requests]", **where}
    return {"type": "exception", "reason": f"java.lang.IllegalStateException: shard failure ({status})", **where}


def _request_error(status: int, path: str) -> dict[str, Any] | None:
    """A realistic whole-request error body for ``status`` (None: an empty body, as for 413)."""
    if status == 413:
        return None  # Netty's HttpObjectAggregator answers 413 with no body
    kinds = {
        400: ("illegal_argument_exception", "request rejected"),
        401: ("security_exception", f"missing authentication credentials for REST request [{path}]"),
        403: ("security_exception", "no permissions for [indices:data/write/bulk] and User [name=servelog, "
              "backend_roles=[], requestedTenant=null]"),
        404: ("index_not_found_exception", "no such index [_na_]"),
        409: ("version_conflict_engine_exception", "version conflict"),
        429: ("rejected_execution_exception", "rejected execution of coordinating operation "
              "[coordinating_and_primary_bytes=104857600, replica_bytes=0, all_bytes=104857600, "
              "coordinating_operation_bytes=5242880, max_coordinating_and_primary_bytes=107374182]"),
        500: ("exception", "java.lang.IllegalStateException: unexpected failure"),
        502: ("exception", "bad gateway"),
        503: ("cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/2/no cluster-manager];"),
        504: ("exception", "gateway timeout"),
    }
    kind, reason = kinds.get(status, ("exception", f"failure {status}"))
    return error_body(status, kind, reason)


# -- small helpers -----------------------------------------------------------------------------
def _json(body: bytes, *, required: bool = True) -> Any:
    if not body.strip():
        if required:
            raise _fail(400, "parse_exception", "request body is required")
        return {}
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _fail(400, "json_parse_exception", str(exc)) from None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _index_name_problem(name: str) -> str | None:
    """Why OpenSearch refuses ``name`` as an index name, or None (MetadataCreateIndexService's checks)."""
    if not name or any(c in name for c in ' "*\\<|,>/?'):
        return 'must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?]'
    if "#" in name:
        return "must not contain '#'"
    if ":" in name:
        return "must not contain ':'"
    if name[0] in "_-+":
        return "must not start with '_', '-', or '+'"
    if len(name.encode()) > 255:
        return f"index name is too long, ({len(name.encode())} > 255)"
    if name in (".", ".."):
        return "must not be '.' or '..'"
    if name.lower() != name:
        return "must be lowercase"
    return None


def _invalid_index(name: str, problem: str) -> dict[str, Any]:
    return {"type": "invalid_index_name_exception", "reason": f"Invalid index name [{name}], {problem}",
            "index_uuid": "_na_", "index": name}


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _flatten_settings(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(_flatten_settings(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _as_setting_text(value: Any) -> Any:
    if isinstance(value, list):
        return [_as_setting_text(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return None if value is None else str(value)


def normalize_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as OpenSearch hands them back: nested under ``index``, every scalar as text."""
    nested: dict[str, Any] = {}
    for key, value in _flatten_settings(settings).items():
        full = key if key.startswith("index.") else f"index.{key}"
        node = nested
        *parents, leaf = full.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _as_setting_text(value)
    return nested


def _normalize_mappings(mappings: Any) -> Any:
    """Mappings as OpenSearch hands them back: ``dynamic`` as text (``"false"``, ``"strict"``)."""
    if isinstance(mappings, dict):
        return {k: (str(v).lower() if k == "dynamic" else _normalize_mappings(v)) for k, v in mappings.items()}
    return mappings


def _normalize_template_body(template: dict[str, Any]) -> dict[str, Any]:
    out = dict(template)
    inner = dict(out.get("template") or {})
    if "settings" in inner:
        inner["settings"] = normalize_settings(inner["settings"])
    if "mappings" in inner:
        inner["mappings"] = _normalize_mappings(inner["mappings"])
    if "template" in out:
        out["template"] = inner
    return out


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


# -- time: ISO-8601 and date math, nanosecond exact ----------------------------------------------
_ISO = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
                  r"(Z|[+-]\d{2}(?::?\d{2})?)?)?)?)?")
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_MATH = re.compile(r"([+-])(\d+)([yMwdhHms])")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "H": 3600, "m": 60, "s": 1}
_DAY = {"hour": 0, "minute": 0, "second": 0}
_ROUNDING: dict[str, dict[str, int]] = {"y": {"month": 1, "day": 1, **_DAY}, "M": {"day": 1, **_DAY}, "w": _DAY,
                                        "d": _DAY, "h": {"minute": 0, "second": 0}, "H": {"minute": 0, "second": 0},
                                        "m": {"second": 0}, "s": {}}


def iso_to_nanos(text: str) -> int | None:
    """Epoch nanoseconds of a ``strict_date_optional_time_nanos`` string, or None if it does not parse."""
    m = _ISO.fullmatch(text)
    if m is None:
        return None
    g = m.groups()
    year, month, day = int(g[0]), int(g[1] or 1), int(g[2] or 1)
    hour, minute, second = int(g[3] or 0), int(g[4] or 0), int(g[5] or 0)
    try:
        day_ordinal = dt.date(year, month, day).toordinal()
        dt.time(hour, minute, second)
    except ValueError:
        return None
    offset = 0
    zone = m[8]
    if zone and zone != "Z":
        digits = zone[1:].replace(":", "")
        offset = (int(digits[:2]) * 60 + int(digits[2:] or 0)) * 60 * (1 if zone[0] == "+" else -1)
    seconds = (day_ordinal - _EPOCH_ORDINAL) * 86400 + hour * 3600 + minute * 60 + second - offset
    return seconds * 1_000_000_000 + int((m[7] or "").ljust(9, "0"))


def date_math_to_nanos(text: str) -> int | None:
    """``now``, ``now-1h/d``, ``2026-01-01||+1d`` or a plain ISO timestamp, as epoch nanoseconds."""
    anchor, sep, math = text.partition("||")
    if not sep:
        if not text.startswith("now"):
            return iso_to_nanos(text)
        anchor, math = "now", text[3:]
    base = time.time_ns() if anchor == "now" else iso_to_nanos(anchor)
    if base is None:
        return None
    math, _, rounding = math.partition("/")
    moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=base // 1000)
    rest = base % 1000
    pos = 0
    for m in _MATH.finditer(math):
        if m.start() != pos:
            return None
        pos = m.end()
        amount = int(m[2]) * (1 if m[1] == "+" else -1)
        if m[3] in "yM":
            months = moment.month - 1 + amount * (12 if m[3] == "y" else 1)
            year, month = moment.year + months // 12, months % 12 + 1
            moment = moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))
        else:
            moment += dt.timedelta(seconds=amount * _UNIT_SECONDS[m[3]])
    if pos != len(math):
        return None
    if rounding:
        if rounding not in _ROUNDING:
            return None
        moment = moment.replace(microsecond=0, **_ROUNDING[rounding])
        if rounding == "w":
            moment -= dt.timedelta(days=moment.weekday())
        rest = 0
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000 + rest


# -- mapping validation --------------------------------------------------------------------------
_INT_BITS = {"long": 63, "integer": 31, "short": 15, "byte": 7}
_FLOAT_TYPES = {"double", "float", "half_float", "scaled_float", "unsigned_long"}
_KEYWORD_TYPES = {"keyword", "constant_keyword", "wildcard"}
_KNOWN_TYPES = {"text", "match_only_text", "keyword", "constant_keyword", "wildcard", "long", "integer", "short",
                "byte", "double", "float", "half_float", "scaled_float", "unsigned_long", "date", "date_nanos",
                "boolean", "binary", "object", "nested", "flat_object", "ip", "geo_point", "geo_shape", "alias",
                "join", "completion", "search_as_you_type", "token_count", "rank_feature", "rank_features",
                "knn_vector", "integer_range", "float_range", "long_range", "double_range", "date_range", "ip_range",
                "percolator", "derived", "star_tree"}
ItemError = dict[str, Any]


def _check_mapping_types(mappings: dict[str, Any], version: tuple[int, ...], path: str = "") -> None:
    """Refuse mappings naming a field type this version does not have, as ``PUT`` does."""
    for name, spec in (mappings.get("properties") or {}).items():
        if not isinstance(spec, dict):
            raise _fail(400, "mapper_parsing_exception", f"Expected map for property [fields] on field [{name}] "
                        f"but got a class {type(spec).__name__}")
        kind = spec.get("type", "object")
        if kind not in _KNOWN_TYPES or (kind == "flat_object" and version < (2, 7)):
            raise _fail(400, "mapper_parsing_exception", f"No handler for type [{kind}] declared on field "
                        f"[{path}{name}]")
        _check_mapping_types(spec, version, f"{path}{name}.")
        for sub, sub_spec in (spec.get("fields") or {}).items():
            _check_mapping_types({"properties": {sub: sub_spec}}, version, f"{path}{name}.")


def _preview(value: Any) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text[:20] + ("..." if len(text) > 20 else "")


def _parse_failure(field: str, kind: str, doc_id: str, value: Any, cause: tuple[str, str]) -> ItemError:
    return {"type": "mapper_parsing_exception", "reason": f"failed to parse field [{field}] of type [{kind}] in "
            f"document with id '{doc_id}'. Preview of field's value: '{_preview(value)}'",
            "caused_by": {"type": cause[0], "reason": cause[1]}}


def _number_problem(value: Any, kind: str) -> tuple[str, str] | None:
    if isinstance(value, bool):
        return ("illegal_state_exception", f"Can't get text on a VALUE_{str(value).upper()}")
    number: float | int
    if isinstance(value, int | float):
        number = value
    else:
        try:
            number = int(str(value).strip())
        except ValueError:
            try:
                number = float(str(value).strip())
            except ValueError:
                return ("number_format_exception", f'For input string: "{value}"')
    if isinstance(number, float) and not math.isfinite(number):
        return ("number_format_exception", f'For input string: "{value}"')
    bits = _INT_BITS.get(kind)
    if bits is not None and not -(2 ** bits) <= int(number) < 2 ** bits:
        return ("illegal_argument_exception", f"Value [{value}] is out of range for {'an' if kind == 'integer' else 'a'}"
                f" {kind}")
    return None


def _date_problem(value: Any, spec: dict[str, Any], kind: str) -> tuple[str, str] | None:
    formats = str(spec.get("format") or "strict_date_optional_time||epoch_millis").split("||")
    nanos: int | None = None
    for fmt in formats:
        if fmt in ("epoch_millis", "epoch_second"):
            if _is_number(value) or (isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value)):
                nanos = int(float(value) * (1_000_000 if fmt == "epoch_millis" else 1_000_000_000))
                break
        elif "date_optional_time" in fmt or fmt in ("strict_date_time", "date_time"):
            nanos = iso_to_nanos(value) if isinstance(value, str) else None
            if nanos is not None:
                break
        else:
            return None  # a custom pattern: not checked here
    if nanos is None:
        return ("illegal_argument_exception", f"failed to parse date field [{value}] with format [{'||'.join(formats)}]")
    if kind == "date_nanos" and not 0 <= nanos < 2 ** 63:
        return ("illegal_argument_exception", f"date[{value}] is before the epoch in 1970 and cannot be stored in "
                "nanosecond resolution" if nanos < 0 else f"date[{value}] is after 2262-04-11T23:47:16.854775807 "
                "and cannot be stored in nanosecond resolution")
    return None


def _leaf_problem(value: Any, spec: dict[str, Any], field: str, doc_id: str) -> ItemError | None:
    """The error a single concrete value of a mapped leaf field causes, or None."""
    kind = spec.get("type", "object")
    if kind == "flat_object":
        return None if isinstance(value, dict) else _parse_failure(
            field, kind, doc_id, value, ("parsing_exception", f"[{field}] unexpected token [VALUE] in flat_object field"))
    if isinstance(value, dict):
        return _parse_failure(field, kind, doc_id, value, ("illegal_state_exception", "Can't get text on a START_OBJECT"))
    problem: tuple[str, str] | None = None
    if kind in _KEYWORD_TYPES:
        text = value if isinstance(value, str) else orjson.dumps(value).decode()
        limit = spec.get("ignore_above")
        size = len(text.encode())
        if size > MAX_KEYWORD_BYTES and (limit is None or len(text) <= int(limit)):
            return {"type": "illegal_argument_exception", "reason": f'Document contains at least one immense term in '
                    f'field="{field}" (whose UTF8 encoding is longer than the max length {MAX_KEYWORD_BYTES}), all of '
                    f"which were skipped. Please correct the analyzer to not produce such terms. The prefix of the "
                    f"first immense term is: '{list(text.encode()[:10])}...', original message: bytes can be at most "
                    f"{MAX_KEYWORD_BYTES} in length; got {size}",
                    "caused_by": {"type": "max_bytes_length_exceeded_exception",
                                  "reason": f"bytes can be at most {MAX_KEYWORD_BYTES} in length; got {size}"}}
    elif kind in _INT_BITS or kind in _FLOAT_TYPES:
        problem = _number_problem(value, kind)
    elif kind == "boolean":
        if not (isinstance(value, bool) or value in ("true", "false", "")):
            problem = ("illegal_argument_exception",
                       f"Failed to parse value [{value}] as only [true] or [false] are allowed.")
    elif kind in ("date", "date_nanos"):
        problem = _date_problem(value, spec, kind)
    elif kind == "ip":
        try:
            ipaddress.ip_address(str(value))
        except ValueError:
            problem = ("illegal_argument_exception", f"'{value}' is not an IP string literal.")
    if problem is None or spec.get("ignore_malformed"):
        return None
    return _parse_failure(field, kind, doc_id, value, problem)


def _leaves(value: Any) -> Iterable[Any]:
    if isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif value is not None:
        yield value


def validate_source(source: dict[str, Any], mappings: dict[str, Any], doc_id: str) -> ItemError | None:
    """The bulk-item error OpenSearch would answer for ``source`` under ``mappings``, or None."""
    return _check_object(source, mappings, str(mappings.get("dynamic", "true")).lower(), "", doc_id)


def _check_object(obj: dict[str, Any], spec: dict[str, Any], dynamic: str, path: str, doc_id: str) -> ItemError | None:
    props = spec.get("properties") or {}
    for raw_key, raw_value in obj.items():
        key, value = raw_key, raw_value
        head, dot, rest = key.partition(".")
        if dot and key not in props and rest:  # "a.b": 1 is a: {b: 1}
            key, value = head, {rest: raw_value}
        field = f"{path}{key}"
        sub = props.get(key)
        if sub is None:
            if dynamic == "strict":
                return {"type": "strict_dynamic_mapping_exception", "reason": f"mapping set to strict, dynamic "
                        f"introduction of [{key}] within [{path[:-1] or '_doc'}] is not allowed"}
            continue  # dynamic true would map it; false keeps it in _source only
        kind = sub.get("type", "object")
        for leaf in _leaves(value):
            if kind in ("object", "nested"):
                if not isinstance(leaf, dict):
                    return {"type": "mapper_parsing_exception", "reason": f"object mapping for [{field}] tried to parse "
                            f"field [{key}] as object, but found a concrete value"}
                error = _check_object(leaf, sub, str(sub.get("dynamic", dynamic)).lower(), f"{field}.", doc_id)
            else:
                error = _leaf_problem(leaf, sub, field, doc_id)
                for name, multi in (sub.get("fields") or {}).items():
                    error = error or _leaf_problem(leaf, multi, f"{field}.{name}", doc_id)
            if error:
                return error
    return None


def field_type(mappings: dict[str, Any] | None, name: str) -> str | None:
    """The mapped type of a dotted field name (multi-fields and flat_object paths included), or None."""
    node: dict[str, Any] | None = mappings
    parts = name.split(".")
    i = 0
    while node is not None and i < len(parts):
        props = node.get("properties") or {}
        child = None
        for j in range(len(parts), i, -1):  # the longest dotted prefix that is a mapped name
            if ".".join(parts[i:j]) in props:
                child, i = props[".".join(parts[i:j])], j
                break
        if child is None and node.get("fields") and parts[i] in node["fields"]:
            child, i = node["fields"][parts[i]], i + 1
        if child is None:
            return "flat_object" if node is not mappings and node.get("type") == "flat_object" else None
        node = child
    return None if node is None or node is mappings else str(node.get("type", "object"))


# -- filter_path -----------------------------------------------------------------------------------
_DROP = object()


def filter_path(payload: Any, expression: str) -> Any:
    """OpenSearch's ``filter_path``: keep the comma-separated dotted paths (``*`` in a name, ``**`` any depth)."""
    paths = [p.split(".") for p in expression.split(",") if p.strip() and not p.startswith("-")]
    if not paths:
        return payload
    kept = _filter(payload, paths)
    return {} if kept is _DROP else kept


def _advance(path: list[str], key: str) -> list[list[str]]:
    head = path[0]
    if head == "**":
        return [path, *(_advance(path[1:], key) if len(path) > 1 else [[]])]
    matched = head == key if "*" not in head else fnmatch.fnmatchcase(key, head)
    return [path[1:]] if matched else []


def _filter(node: Any, paths: list[list[str]]) -> Any:
    if any(not p for p in paths):
        return node
    if isinstance(node, list):
        kept = [k for k in (_filter(item, paths) for item in node) if k is not _DROP]
        return kept if kept else _DROP
    if not isinstance(node, dict):
        return _DROP
    out = {}
    for key, value in node.items():
        rest = [r for p in paths for r in _advance(p, key)]
        if rest:
            kept = _filter(value, rest)
            if kept is not _DROP:
                out[key] = kept
    return out if out else _DROP


# -- search ----------------------------------------------------------------------------------------
_TOKEN = re.compile(r"\w+")
_SEARCH_KEYS = {"query", "size", "from", "sort", "search_after", "track_total_hits", "_source", "timeout", "aggs",
                "aggregations", "fields", "docvalue_fields", "stored_fields", "highlight", "track_scores", "min_score",
                "post_filter", "collapse", "explain", "version", "seq_no_primary_term", "terminate_after", "profile",
                "script_fields", "runtime_mappings", "pit", "indices_boost", "suggest", "stats", "slice", "ext"}


class _Hit:
    """One stored document as queries see it."""

    __slots__ = ("doc", "id", "index", "mappings", "source")

    def __init__(self, index: str, doc_id: str, doc: _Doc, mappings: dict[str, Any] | None) -> None:
        self.index, self.id, self.doc, self.source, self.mappings = index, doc_id, doc, doc.source, mappings

    def values(self, name: str) -> list[Any]:
        """Every value of a (dotted) field, arrays flattened; a multi-field reads its parent."""
        if name == "_id":
            return [self.id]
        if name == "_index":
            return [self.index]
        found = _lookup(self.source, name.split("."))
        if not found and "." in name:
            found = _lookup(self.source, name.split(".")[:-1])  # message.keyword -> message
        return found

    def kind(self, name: str) -> str | None:
        return field_type(self.mappings, name) if self.mappings else None


def _lookup(node: Any, parts: list[str]) -> list[Any]:
    if not parts:
        return list(_leaves(node))
    if isinstance(node, list):
        return [v for item in node for v in _lookup(item, parts)]
    if not isinstance(node, dict):
        return []
    for j in range(len(parts), 0, -1):  # literal dotted keys ("app.kubernetes.io/name") first
        key = ".".join(parts[:j])
        if key in node:
            return _lookup(node[key], parts[j:])
    return []


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _compare(a: Any, b: Any) -> int | None:
    """Order two field values the way a range query would; None when they cannot be ordered."""
    if _is_number(a) and _is_number(b):
        return (a > b) - (a < b)
    if isinstance(a, str) and isinstance(b, str):
        na, nb = date_math_to_nanos(a), date_math_to_nanos(b)
        if na is not None and nb is not None:
            return (na > nb) - (na < nb)
        return (a > b) - (a < b)
    if isinstance(a, str) or isinstance(b, str):
        num, text = (b, a) if isinstance(a, str) else (a, b)
        try:
            other: float = float(text)
        except ValueError:
            nanos = date_math_to_nanos(text)
            if nanos is None or not _is_number(num):
                return None
            other = nanos / 1_000_000  # a number against a date: epoch millis
        x, y = (other, num) if isinstance(a, str) else (num, other)
        return (x > y) - (x < y)
    return None


def _equal(hit: _Hit, name: str, wanted: Any, *, insensitive: bool = False) -> bool:
    target = _text(wanted)
    if hit.kind(name) in ("text", "match_only_text"):  # term on an analyzed field matches one token
        return any(target in _TOKEN.findall(_text(v).lower()) for v in hit.values(name))
    if insensitive:
        return any(_text(v).lower() == target.lower() for v in hit.values(name))
    return any(v == wanted or _text(v) == target for v in hit.values(name))


def _field_spec(spec: Any, value_key: str = "value") -> tuple[str, Any, dict[str, Any]]:
    if not isinstance(spec, dict) or not spec:
        raise _fail(400, "parsing_exception", "query malformed, no field")
    name, value = next((k, v) for k, v in spec.items() if k not in ("boost", "_name"))
    options = value if isinstance(value, dict) else {}
    return name, options.get(value_key, value) if options else value, options


def _tokens_match(hit: _Hit, name: str, query: Any, *, phrase: bool, operator: str = "or") -> bool:
    wanted = _TOKEN.findall(_text(query).lower())
    if hit.kind(name) in _KEYWORD_TYPES:
        return any(_text(v) == _text(query) for v in hit.values(name))
    for value in hit.values(name):
        tokens = _TOKEN.findall(_text(value).lower())
        if phrase:
            n = len(wanted)
            if any(tokens[i:i + n] == wanted for i in range(len(tokens) - n + 1)):
                return True
        elif (all if operator.lower() == "and" else any)(t in tokens for t in wanted) and wanted:
            return True
    return False


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def matches(hit: _Hit, query: Any) -> bool:
    """Whether a stored document matches a query DSL clause."""
    if not isinstance(query, dict) or len(query) != 1:
        raise _fail(400, "parsing_exception", "[_na] query malformed, must start with start_object")
    (kind, spec), = query.items()
    if kind == "match_all":
        return True
    if kind == "match_none":
        return False
    if kind == "bool":
        must = [*_as_list(spec.get("must")), *_as_list(spec.get("filter"))]
        should = _as_list(spec.get("should"))
        if not all(matches(hit, q) for q in must) or any(matches(hit, q) for q in _as_list(spec.get("must_not"))):
            return False
        if not should:
            return True
        wanted = spec.get("minimum_should_match", 0 if must else 1)
        if isinstance(wanted, str):
            wanted = len(should) * int(wanted[:-1]) // 100 if wanted.endswith("%") else int(wanted)
        wanted = wanted if wanted >= 0 else len(should) + wanted
        return sum(matches(hit, q) for q in should) >= wanted
    if kind == "exists":
        return bool(hit.values(spec["field"]))
    if kind == "ids":
        return hit.id in {str(v) for v in spec.get("values", [])}
    if kind == "query_string":
        return _query_string(hit, spec)
    name, value, options = _field_spec(spec, "query" if kind.startswith("match") else "value")
    if kind == "term":
        return _equal(hit, name, value, insensitive=bool(options.get("case_insensitive")))
    if kind == "terms":
        return any(_equal(hit, name, v) for v in _as_list(value))
    if kind in ("match", "match_phrase"):
        return _tokens_match(hit, name, value, phrase=kind == "match_phrase", operator=options.get("operator", "or"))
    if kind in ("prefix", "wildcard"):
        pattern = _text(value) + ("*" if kind == "prefix" else "")
        if options.get("case_insensitive"):
            return any(fnmatch.fnmatchcase(_text(v).lower(), pattern.lower()) for v in hit.values(name))
        return any(fnmatch.fnmatchcase(_text(v), pattern) for v in hit.values(name))
    if kind == "range":
        bounds = options or {}
        tests = {"gt": lambda c: c > 0, "gte": lambda c: c >= 0, "lt": lambda c: c < 0, "lte": lambda c: c <= 0}
        for value_ in hit.values(name):
            results = [_compare(value_, bound) for op, bound in bounds.items() if op in tests]
            checks = [tests[op] for op in bounds if op in tests]
            if all(r is not None and check(r) for r, check in zip(results, checks, strict=True)):
                return True
        return False
    raise _fail(400, "parsing_exception", f"unknown query [{kind}]", line=1, col=1)


_QS_TERM = re.compile(r'(-|NOT\s+)?(?:([\w.@/-]+):)?("(?:[^"\\]|\\.)*"|\(|\)|[^\s()]+)')


def _query_string(hit: _Hit, spec: dict[str, Any]) -> bool:
    """``field:value`` terms joined by AND/OR (no parentheses nesting), quoted phrases and ``*`` wildcards."""
    fields = spec.get("fields") or [spec.get("default_field", "*")]
    default_and = str(spec.get("default_operator", "or")).lower() == "and"
    alternatives: list[list[tuple[bool, str | None, str]]] = [[]]
    explicit_and = [False]
    for m in _QS_TERM.finditer(str(spec.get("query", ""))):
        negate, name, word = bool(m[1]), m[2], m[3]
        if name is None and word == "OR" and not negate:
            alternatives.append([])
            explicit_and.append(False)
        elif name is None and word == "AND" and not negate:
            explicit_and[-1] = True
        elif word not in "()":
            alternatives[-1].append((negate, name, word))

    def term(negate: bool, name: str | None, word: str) -> bool:
        names = [name] if name else [f for f in fields if f != "*"] or [k for k in hit.source if
                                                                         isinstance(hit.source[k], str)]
        if word.startswith('"'):
            hit_ = any(_tokens_match(hit, n, word[1:-1], phrase=True) for n in names)
        elif "*" in word or "?" in word:
            hit_ = any(fnmatch.fnmatchcase(_text(v).lower(), word.lower()) for n in names for v in hit.values(n))
        else:
            hit_ = any(_equal(hit, n, word) or _tokens_match(hit, n, word, phrase=False) for n in names)
        return hit_ != negate

    for clauses, required in zip(alternatives, explicit_and, strict=True):
        if clauses and (all if required or default_and else any)(term(*c) for c in clauses):
            return True
    return False


@dataclass
class _SortKey:
    field: str
    desc: bool
    missing_first: bool
    kind: str | None = None

    def value(self, hit: _Hit) -> Any:
        """The value OpenSearch puts in ``hit.sort`` for this key (dates as epoch millis/nanos)."""
        values = hit.values(self.field)
        if not values:
            return None
        kind = hit.kind(self.field) if self.field not in ("_id", "_index") else "keyword"
        if kind in ("text", "match_only_text"):
            raise _fail(400, "illegal_argument_exception", "Text fields are not optimised for operations that require "
                        "per-document field data like aggregations and sorting, so these operations are disabled by "
                        f"default. Please use a keyword field instead. Alternatively, set fielddata=true on "
                        f"[{self.field}] in order to load field data by uninverting the inverted index.")
        self.kind = self.kind or kind
        converted = [self._convert(v, kind) for v in values]
        return max(converted, key=_rank) if self.desc else min(converted, key=_rank)

    @staticmethod
    def _convert(value: Any, kind: str | None) -> Any:
        if kind in ("date", "date_nanos") or (kind is None and isinstance(value, str) and "T" in value):
            nanos = iso_to_nanos(value) if isinstance(value, str) else None
            if nanos is not None:
                return nanos // 1_000_000 if kind == "date" else nanos
        return value

    def cursor(self, value: Any) -> Any:
        """A ``search_after`` value in the representation of this key's sort values."""
        if isinstance(value, str) and self.kind in ("date", "date_nanos"):
            nanos = date_math_to_nanos(value)
            if nanos is not None:
                return nanos // 1_000_000 if self.kind == "date" else nanos
        return self._convert(value, self.kind)


def _rank(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (0, int(value))
    return (0, value) if _is_number(value) else (1, _text(value))


def _parse_sort(sort: Any) -> list[_SortKey]:
    keys = []
    for item in _as_list(sort):
        if isinstance(item, str):
            name, _, order = item.partition(":")
            keys.append(_SortKey(name, order == "desc" or (not order and name == "_score"), False))
        elif isinstance(item, dict) and len(item) == 1:
            (name, spec), = item.items()
            spec = {"order": spec} if isinstance(spec, str) else spec
            desc = str(spec.get("order", "desc" if name == "_score" else "asc")).lower() == "desc"
            keys.append(_SortKey(name, desc, spec.get("missing") == "_first"))
        else:
            raise _fail(400, "parsing_exception", f"malformed sort [{item}]")
    return keys


def _after(values: list[Any], cursor: list[Any], keys: list[_SortKey]) -> bool:
    """Whether a hit with sort ``values`` comes strictly after ``cursor`` in the sort order."""
    for value, raw_mark, key in zip(values, cursor, keys, strict=True):
        mark = key.cursor(raw_mark)
        if value is None or mark is None:
            if value is None and mark is None:
                continue
            return (value is None) != key.missing_first
        a, b = _rank(value), _rank(mark)
        if a != b:
            return (a > b) != key.desc
    return False


# -- state -----------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Doc:
    source: dict[str, Any]
    version: int
    seq_no: int


@dataclass
class _Index:
    name: str
    mappings: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    docs: dict[str, _Doc] = field(default_factory=dict)
    uuid: str = field(default_factory=lambda: base64.urlsafe_b64encode(os.urandom(16)).decode()[:22])
    seq_no: int = -1
    created_ms: int = field(default_factory=_now_ms)
    replicas: int = 1

    def next_seq(self) -> int:
        self.seq_no += 1
        return self.seq_no


@dataclass
class _RequestFault:
    status: int
    prefix: str
    method: str | None
    body: dict[str, Any] | None


@dataclass
class _Drop:
    after_processing: bool
    prefix: str


def _path_matches(path: str, prefix: str) -> bool:
    return path.startswith(prefix) or path.endswith(prefix)


class _ConnectionEnd(Exception):
    """Close the connection without an answer."""


# -- the server ------------------------------------------------------------------------------------
class FakeOpenSearch:
    """A loopback OpenSearch 2.x for tests; see the module docstring.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. ``url`` is known from
    construction on (the port is bound in ``__init__``).

    Options: ``version`` (``GET /`` answers it; ``flat_object`` mappings are refused below 2.7),
    ``ssl_context`` (a server-side context: the server speaks HTTPS), ``username``/``password``
    (require HTTP basic auth: 401 otherwise), ``max_content_length`` (a bigger body is read,
    discarded and answered 413 with an empty body, as OpenSearch's HTTP layer does),
    ``validate_mappings`` (check each indexed source against the index's mappings, taken from the
    matching index template when the index is created), ``distribution`` (None imitates an
    Elasticsearch, which has no ``version.distribution``) and ``ism_plugin`` (False: the ISM
    endpoints answer "no handler found", as on a cluster without the plugin).
    """

    def __init__(self, *, version: str = "2.19.0", ssl_context: ssl.SSLContext | None = None,
                 username: str | None = None, password: str | None = None,
                 max_content_length: int = 100 * 1024 * 1024, validate_mappings: bool = False,
                 distribution: str | None = "opensearch", ism_plugin: bool = True) -> None:
        self.version = version
        self.max_content_length = max_content_length
        self.validate_mappings = validate_mappings
        self.distribution = distribution
        self.ism_plugin = ism_plugin
        self.index_templates: dict[str, dict[str, Any]] = {}
        """name -> the body as it was PUT."""
        self.component_templates: dict[str, dict[str, Any]] = {}
        """name -> the body as it was PUT."""
        self.ism_policies: dict[str, dict[str, Any]] = {}
        """policy id -> ``{"_id", "_version", "_seq_no", "_primary_term", "policy"}`` as GET answers it."""
        self.requests: list[RequestRecord] = []
        """Every request in order of completion (dropped ones with status 0)."""
        self._indices: dict[str, _Index] = {}
        self._lock = threading.RLock()
        self._request_faults: list[_RequestFault] = []
        self._item_scripts: dict[str, list[int]] = {}
        self._item_predicates: list[ItemPredicate] = []
        self._drops: list[_Drop] = []
        self._delay = 0.0
        self._unavailable = False
        self._ism_seq_no = -1
        self._auth = f"{username}:{password or ''}".encode() if username is not None else None
        self._stopping = threading.Event()
        self._server = _Server(self, ssl_context)
        scheme = "https" if ssl_context is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-opensearch-{self._server.server_address[1]}", daemon=True)
        self._started = self._stopped = False

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> FakeOpenSearch:
        """Start serving; returns self."""
        self._thread.start()
        self._started = True
        return self

    def stop(self) -> None:
        """Stop serving, close every open connection and wait for the connection threads (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        if self._started:
            self._server.shutdown()
            self._thread.join()
        self._server.close_connections()
        self._server.server_close()

    def __enter__(self) -> FakeOpenSearch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults --------------------------------------------------------------------------------------
    def fail_requests(self, status: int, count: int = 1, *, path_prefix: str = "/_bulk",
                      body: dict[str, Any] | None = None, method: str | None = None) -> None:
        """Answer the next ``count`` matching requests with ``status`` and an OpenSearch error body.

        A request matches when its path starts or ends with ``path_prefix`` (so ``/_bulk`` also
        matches ``/{index}/_bulk``; ``/`` matches everything) and, if given, its ``method``. ``body``
        replaces the default body (413 has an empty one, like OpenSearch's HTTP layer). Nothing is
        applied for a failed request.
        """
        with self._lock:
            self._request_faults += [_RequestFault(status, path_prefix, method, body) for _ in range(count)]

    def fail_items(self, statuses_by_id: dict[str, list[int]]) -> None:
        """Per document ``_id``: the statuses to answer on its next attempts, one per attempt.

        429 answers ``rejected_execution_exception``, 400 ``mapper_parsing_exception``, 409
        ``version_conflict_engine_exception``, 500/503 shard failures; a 2xx in the list lets that
        attempt be processed normally. A failed item is not stored. Calls add to earlier scripts.
        """
        with self._lock:
            for doc_id, statuses in statuses_by_id.items():
                self._item_scripts.setdefault(doc_id, []).extend(statuses)

    def fail_items_where(self, predicate: ItemPredicate) -> None:
        """Answer ``predicate(index, id, source)`` (a status, or None to process) for every bulk item.

        For permanent rejections, e.g. a 400 whenever the source has some field. Predicates are
        asked in the order they were added; the first status wins.
        """
        with self._lock:
            self._item_predicates.append(predicate)

    def drop_connections(self, count: int = 1, *, after_processing: bool = False, path_prefix: str = "/_bulk") -> None:
        """Close the connection of the next ``count`` matching requests without answering.

        With ``after_processing`` the request is applied first (the bulk's documents are stored),
        so the client sees a connection error, retries, and meets 409s: the ambiguous outcome an
        exactly-once pipeline must survive. Matching is as for :meth:`fail_requests`.
        """
        with self._lock:
            self._drops += [_Drop(after_processing, path_prefix) for _ in range(count)]

    def set_delay(self, seconds: float) -> None:
        """Sleep this long before processing each request (a slow cluster); 0 to stop."""
        self._delay = seconds

    def set_unavailable(self, flag: bool) -> None:
        """While set, every request answers 503 ``cluster_block_exception`` (no cluster manager)."""
        self._unavailable = flag

    def clear_faults(self) -> None:
        """Forget every scripted fault, delay and the unavailable flag."""
        with self._lock:
            self._request_faults.clear()
            self._item_scripts.clear()
            self._item_predicates.clear()
            self._drops.clear()
        self._delay, self._unavailable = 0.0, False

    # -- state ---------------------------------------------------------------------------------------
    def documents(self, index_glob: str = "*") -> dict[str, dict[str, dict[str, Any]]]:
        """index -> _id -> _source, for the indices whose names match the glob."""
        with self._lock:
            return {name: {doc_id: doc.source for doc_id, doc in index.docs.items()}
                    for name, index in self._indices.items() if fnmatch.fnmatchcase(name, index_glob)}

    def all_sources(self, index_glob: str = "*") -> list[dict[str, Any]]:
        """Every stored ``_source`` in the matching indices."""
        with self._lock:
            return [doc.source for name, index in self._indices.items() if fnmatch.fnmatchcase(name, index_glob)
                    for doc in index.docs.values()]

    def doc_count(self, index_glob: str = "*") -> int:
        """How many documents the matching indices hold."""
        with self._lock:
            return sum(len(i.docs) for n, i in self._indices.items() if fnmatch.fnmatchcase(n, index_glob))

    def index_names(self) -> list[str]:
        """The existing indices, sorted."""
        with self._lock:
            return sorted(self._indices)

    def mappings(self, index: str) -> dict[str, Any]:
        """The mappings an index was created with (from its template and the create request)."""
        with self._lock:
            return self._indices[index].mappings

    def statuses(self) -> list[int]:
        """The status of every request so far, in order (0: dropped)."""
        return [r.status for r in list(self.requests)]

    # -- serving -------------------------------------------------------------------------------------
    def _serve(self, h: _Handler) -> None:
        parts = urlsplit(h.path)
        path = parts.path or "/"
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        record = RequestRecord(h.command, path, query, dict(h.headers.items()), 0, 0)
        try:
            try:
                body = self._read_body(h)
            except _Reply as too_large:
                self._send(h, too_large.status, too_large.payload, record)
                return
            record.body_size = len(body)
            if self._delay:
                self._stopping.wait(self._delay)
            drop = self._take(self._drops, lambda d: _path_matches(path, d.prefix))
            if drop is not None and not drop.after_processing:
                raise _ConnectionEnd
            try:
                status, payload, headers = self._answer(h.command, path, query, body, h.headers, record)
            except _Reply as reply:
                status, payload, headers = reply.status, reply.payload, reply.headers
            if drop is not None:
                raise _ConnectionEnd
            if status < 400 and "filter_path" in query and isinstance(payload, dict | list):
                payload = filter_path(payload, query["filter_path"])
            self._send(h, status, payload, record, headers=headers, head=h.command == "HEAD")
        except _ConnectionEnd:
            self.requests.append(record)
            h.close_connection = True
            with contextlib.suppress(OSError):
                socket.socket.shutdown(h.connection, socket.SHUT_RDWR)

    def _take(self, queue: list[Any], match: Callable[[Any], bool]) -> Any:
        with self._lock:
            for i, item in enumerate(queue):
                if match(item):
                    return queue.pop(i)
        return None

    def _read_body(self, h: _Handler) -> bytes:
        if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, size = [], 0
            while (length := int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)) > 0:
                size += length
                chunk = h.rfile.read(length)
                h.rfile.readline()
                if size <= self.max_content_length:
                    chunks.append(chunk)
            while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            if size > self.max_content_length:
                raise _Reply(413, None)
            body = b"".join(chunks)
        else:
            length = int(h.headers.get("Content-Length") or 0)
            if length > self.max_content_length:
                while length > 0:  # read and discard, so the connection stays usable
                    length -= len(h.rfile.read(min(length, 1 << 20)) or b"\0" * length)
                raise _Reply(413, None)
            body = h.rfile.read(length) if length else b""
        if h.headers.get("Content-Encoding", "").lower() == "gzip" and body:
            body = gzip.decompress(body)
        return body

    def _send(self, h: _Handler, status: int, payload: Any, record: RequestRecord, *,
              headers: dict[str, str] | None = None, head: bool = False) -> None:
        if payload is None:
            data, content_type = b"", "text/plain; charset=UTF-8"
        elif isinstance(payload, bytes):
            data, content_type = payload, "text/plain; charset=UTF-8"
        else:
            data, content_type = orjson.dumps(payload), "application/json; charset=UTF-8"
        record.status = status
        self.requests.append(record)
        h.send_response_only(status)
        h.send_header("content-type", content_type)
        h.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.end_headers()
        if data and not head:
            h.wfile.write(data)

    def _answer(self, method: str, path: str, query: dict[str, str], body: bytes, headers: Any,
                record: RequestRecord) -> tuple[int, Any, dict[str, str]]:
        if self._auth is not None:
            self._authenticate(headers.get("Authorization", ""))
        if self._unavailable:
            raise _Reply(503, _request_error(503, path))
        fault = self._take(self._request_faults, lambda f: _path_matches(path, f.prefix)
                           and (f.method is None or f.method == method))
        if fault is not None:
            raise _Reply(fault.status, fault.body if fault.body is not None else _request_error(fault.status, path))
        segments = [unquote(s) for s in path.split("/") if s]
        try:
            status, payload = self._route(method, path, segments, query, body, record)
        except _Reply:
            raise
        except Exception as exc:  # never crash the server: answer like an unexpected server failure
            raise _fail(500, "exception", f"{type(exc).__name__}: {exc}") from exc
        return status, payload, {}

    def _authenticate(self, header: str) -> None:
        challenge = {"WWW-Authenticate": 'Basic realm="OpenSearch Security"'}
        if not header.startswith("Basic "):
            raise _Reply(401, b"Unauthorized", challenge)
        try:
            given = base64.b64decode(header[6:], validate=True)
        except ValueError:
            given = b""
        assert self._auth is not None
        if not hmac.compare_digest(given, self._auth):
            raise _Reply(401, b"Authentication finally failed", challenge)

    # -- routing ---------------------------------------------------------------------------------------
    def _route(self, method: str, path: str, seg: list[str], query: dict[str, str], body: bytes,
               record: RequestRecord) -> tuple[int, Any]:
        n = len(seg)
        first = seg[0] if seg else ""

        def allow(*methods: str) -> None:
            if method not in methods:
                raise _Reply(405, {"error": f"Incorrect HTTP method for uri [{path}] and method [{method}], allowed: "
                                            f"[{', '.join(methods)}]", "status": 405})

        if n == 0:
            allow("GET", "HEAD")
            return 200, self._info()
        if seg[-1] == "_bulk" and n <= 2:
            allow("POST", "PUT")
            status, answer = self._bulk(body, query, seg[0] if n == 2 else None)
            record.items = len(answer.get("items", ()))
            return status, answer
        if first == "_cluster" and n >= 2 and seg[1] == "health":
            allow("GET")
            return 200, self._health()
        if first in ("_index_template", "_component_template") and n <= 2:
            allow("GET", "PUT", "POST", "DELETE", "HEAD")
            return self._templates(method, first, seg[1] if n == 2 else "*", body)
        if self.ism_plugin and seg[:3] == ["_plugins", "_ism", "policies"] and n <= 4:
            if n == 4:
                allow("GET", "PUT", "DELETE")
            else:
                allow("GET")
            return self._ism(method, seg[3] if n == 4 else None, query, body)
        if first == "_cat" and n >= 2 and seg[1] == "indices" and n <= 3:
            allow("GET")
            return self._cat_indices(seg[2] if n == 3 else "*", query)
        if seg[-1] in ("_search", "_count") and n <= 2:
            allow("GET", "POST")
            target = seg[0] if n == 2 else "_all"
            return self._search(target, _json(body, required=False), query, count=seg[-1] == "_count")
        if seg[-1] == "_refresh" and n <= 2:
            allow("GET", "POST")
            names = self._resolve(seg[0] if n == 2 else "_all", query)
            return 200, {"_shards": {"total": len(names) * 2, "successful": len(names), "failed": 0}}
        if n in (2, 3) and seg[1] in ("_doc", "_create"):
            return self._single_doc(method, seg[0], seg[1], seg[2] if n == 3 else None, body, query)
        if n == 2 and seg[1] in ("_mapping", "_settings"):
            allow("GET")
            names = self._resolve(seg[0], query)
            with self._lock:
                key = "mappings" if seg[1] == "_mapping" else "settings"
                return 200, {name: {key: self._index_view(self._indices[name])[key]} for name in names}
        if n == 1 and (not first.startswith("_") or method in ("PUT", "HEAD")):
            allow("GET", "HEAD", "PUT", "DELETE")
            return self._index_endpoint(method, first, body, query)
        raise _no_handler(method, path)

    def _info(self) -> dict[str, Any]:
        version: dict[str, Any] = {"number": self.version, "build_type": "tar", "build_hash": "0" * 40,
                                   "build_date": "2025-02-04T00:00:00.000000Z", "build_snapshot": False,
                                   "lucene_version": "9.12.1", "minimum_wire_compatibility_version": "7.10.0",
                                   "minimum_index_compatibility_version": "7.0.0"}
        if self.distribution is not None:
            version = {"distribution": self.distribution, **version}
        return {"name": "fake-node-1", "cluster_name": CLUSTER_NAME, "cluster_uuid": "Xu7gR0IYQ6e0i0ODm7YO5A",
                "version": version, "tagline": "The OpenSearch Project: https://opensearch.org/"}

    def _health(self) -> dict[str, Any]:
        with self._lock:
            shards = len(self._indices)
        return {"cluster_name": CLUSTER_NAME, "status": "green", "timed_out": False, "number_of_nodes": 1,
                "number_of_data_nodes": 1, "discovered_master": True, "discovered_cluster_manager": True,
                "active_primary_shards": shards, "active_shards": shards, "relocating_shards": 0,
                "initializing_shards": 0, "unassigned_shards": 0, "delayed_unassigned_shards": 0,
                "number_of_pending_tasks": 0, "number_of_in_flight_fetch": 0, "task_max_waiting_in_queue_millis": 0,
                "active_shards_percent_as_number": 100.0}

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
                    raise _fail(404, "index_not_found_exception", f"no such index [{part}]", index=part,
                                **{"resource.type": "index_or_alias", "resource.id": part, "index_uuid": "_na_"})
        if not names and not allow_no_indices:
            raise _fail(404, "index_not_found_exception", f"no such index [{target}]", index=target,
                        **{"resource.type": "index_or_alias", "resource.id": target, "index_uuid": "_na_"})
        return sorted(set(names))

    def _template_for(self, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(mappings, settings) from the highest-priority matching index template, components merged."""
        candidates = [(int(t.get("priority", 0)), n, t) for n, t in self.index_templates.items()
                      if any(fnmatch.fnmatchcase(name, p) for p in _as_list(t.get("index_patterns")))]
        if not candidates:
            return {}, {}
        _, _, chosen = max(candidates, key=lambda c: c[0])
        merged: dict[str, Any] = {}
        for component in chosen.get("composed_of", []):
            merged = _deep_merge(merged, (self.component_templates.get(component) or {}).get("template") or {})
        merged = _deep_merge(merged, chosen.get("template") or {})
        return merged.get("mappings") or {}, merged.get("settings") or {}

    def _create_index(self, name: str, body: dict[str, Any] | None = None) -> _Index:
        """Create an index (caller holds the lock), applying the matching template."""
        mappings, settings = self._template_for(name)
        if body:
            mappings = _deep_merge(mappings, body.get("mappings") or {})
            settings = _deep_merge(settings, body.get("settings") or {})
        replicas = int(normalize_settings(settings).get("index", {}).get("number_of_replicas", 1))
        index = self._indices[name] = _Index(name, mappings, settings, replicas=replicas)
        return index

    def _index_view(self, index: _Index) -> dict[str, Any]:
        settings = normalize_settings(index.settings)
        settings.setdefault("index", {}).update({
            "number_of_shards": settings["index"].get("number_of_shards", "1"),
            "number_of_replicas": settings["index"].get("number_of_replicas", "1"),
            "provided_name": index.name, "uuid": index.uuid, "creation_date": str(index.created_ms),
            "version": {"created": "136387927"}})
        return {"aliases": {}, "mappings": _normalize_mappings(index.mappings), "settings": settings}

    def _index_endpoint(self, method: str, name: str, body: bytes, query: dict[str, str]) -> tuple[int, Any]:
        if method == "PUT":
            problem = _index_name_problem(name)
            if problem:
                raise _Reply(400, {"error": {"root_cause": [_invalid_index(name, problem)],
                                             **_invalid_index(name, problem)}, "status": 400})
            request = _json(body, required=False)
            _check_mapping_types(request.get("mappings") or {}, _version_tuple(self.version))
            with self._lock:
                if name in self._indices:
                    raise _fail(400, "resource_already_exists_exception", f"index [{name}/{self._indices[name].uuid}] "
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
            rows = [{"health": "green", "status": "open", "index": n, "uuid": self._indices[n].uuid, "pri": "1",
                     "rep": str(self._indices[n].replicas), "docs.count": str(len(self._indices[n].docs)),
                     "docs.deleted": "0", "store.size": f"{len(self._indices[n].docs)}kb",
                     "pri.store.size": f"{len(self._indices[n].docs)}kb"} for n in names]
        if query.get("format") == "json":
            return 200, rows
        return 200, "".join(" ".join(row.values()) + "\n" for row in rows).encode()

    # -- bulk ----------------------------------------------------------------------------------------------
    def _bulk(self, body: bytes, query: dict[str, str], default_index: str | None) -> tuple[int, dict[str, Any]]:
        started = time.perf_counter_ns()
        if not body.strip():
            raise _fail(400, "action_request_validation_exception", "Validation Failed: 1: no requests added;")
        if not body.endswith(b"\n"):
            raise _fail(400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
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
                raise _fail(400, "illegal_argument_exception", f"Malformed action/metadata line [{i}], expected "
                            "START_OBJECT or END_OBJECT but found [VALUE_STRING]") from None
            if not isinstance(action, dict) or len(action) != 1:
                raise _fail(400, "illegal_argument_exception", f"Malformed action/metadata line [{i}], expected "
                            f"START_OBJECT but found [{'START_ARRAY' if isinstance(action, list) else 'VALUE'}]")
            (op, meta), = action.items()
            if op not in ("create", "index", "update", "delete"):
                raise _fail(400, "illegal_argument_exception", f"Malformed action/metadata line [{i}], expected field "
                            f"[create], [delete], [index] or [update] but found [{op}]")
            if not isinstance(meta, dict):
                raise _fail(400, "illegal_argument_exception", f"Malformed action/metadata line [{i}], expected "
                            "START_OBJECT but found [VALUE_STRING]")
            unknown = next((k for k in meta if k not in allowed_meta), None)
            if unknown is not None:
                raise _fail(400, "illegal_argument_exception", f"Action/metadata line [{i}] contains an unknown "
                            f"parameter [{unknown}]")
            source_line = None
            if op != "delete":
                if i >= total:
                    break  # an action without its source line is dropped, as OpenSearch does
                source_line, i = lines[i], i + 1
            operations.append((op, meta, source_line))
        problems = []
        for op, meta, _ in operations:
            if not (meta.get("_index") or default_index):
                problems.append("index is missing")
            if op in ("update", "delete") and meta.get("_id") in (None, ""):
                problems.append("id is missing")
        if not operations:
            problems.append("no requests added")
        if problems:
            raise _fail(400, "action_request_validation_exception",
                        "Validation Failed: " + "".join(f"{k}: {p};" for k, p in enumerate(problems, 1)))
        with self._lock:
            items = [{op: self._apply(op, str(meta.get("_index") or default_index), meta, line)}
                     for op, meta, line in operations]
        errors = any(next(iter(item.values()))["status"] >= 300 for item in items)
        return 200, {"took": (time.perf_counter_ns() - started) // 1_000_000, "errors": errors, "items": items}

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
                return failure(status, _item_error(status, index_name, doc_id, index.uuid if index else "_na_"))
        problem = _index_name_problem(index_name)
        if problem:
            return failure(400, _invalid_index(index_name, problem))
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
                return failure(status_, _item_error(status_, index_name, doc_id, index.uuid if index else "_na_"))
        if index is None:
            if op == "delete":
                return failure(404, {"type": "index_not_found_exception", "reason": f"no such index [{index_name}]",
                                     "index": index_name, "resource.type": "index_expression",
                                     "resource.id": index_name, "index_uuid": "_na_"})
            index = self._create_index(index_name)
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
                merged = _deep_merge(current.source, source.get("doc") or {})
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
        doc = index.docs[doc_id] = _Doc(source, version, index.next_seq())
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
            raise _Reply(405, {"error": f"Incorrect HTTP method for uri [/{index_name}/{endpoint}] and method "
                                        f"[{method}]", "status": 405})
        meta = {"_id": doc_id} if doc_id else {}
        with self._lock:
            result = self._apply(op, index_name, meta, None if op == "delete" else body.strip() or b"null")
        status = result.pop("status")
        if "error" in result:
            error = result["error"]
            return status, {"error": {"root_cause": [error], **error}, "status": status}
        return status, result

    # -- templates and ISM ---------------------------------------------------------------------------------------
    def _templates(self, method: str, kind: str, name: str, body: bytes) -> tuple[int, Any]:
        index_kind = kind == "_index_template"
        store = self.index_templates if index_kind else self.component_templates
        label = "index_template" if index_kind else "component_template"
        with self._lock:
            if method in ("PUT", "POST"):
                template = _json(body)
                if not isinstance(template, dict):
                    raise _fail(400, "x_content_parse_exception", "[1:1] template must be an object")
                self._validate_template(index_kind, name, template)
                store[name] = template
                return 200, {"acknowledged": True}
            selected = [n for n in store if any(fnmatch.fnmatchcase(n, p) for p in name.split(","))]
            if method == "DELETE":
                if not selected:
                    if index_kind:
                        raise _fail(404, "index_template_missing_exception", f"index_template [{name}] missing")
                    raise _fail(404, "resource_not_found_exception", name)
                if not index_kind:
                    users = sorted(t for t, body_ in self.index_templates.items()
                                   if set(body_.get("composed_of", [])) & set(selected))
                    if users:
                        raise _fail(400, "illegal_argument_exception", f"component templates {selected} cannot be "
                                    f"removed as they are still in use by index templates {users}")
                for n in selected:
                    del store[n]
                return 200, {"acknowledged": True}
            if not selected and "*" not in name:
                raise _fail(404, "resource_not_found_exception", f"{label.replace('_', ' ')} matching [{name}] not found")
            if method == "HEAD":
                return (200 if selected else 404), None
            found = [{"name": n, label: self._template_view(index_kind, store[n])} for n in sorted(selected)]
            return 200, {f"{label}s": found}

    @staticmethod
    def _template_view(index_kind: bool, template: dict[str, Any]) -> dict[str, Any]:
        view = _normalize_template_body(template)
        if index_kind:
            view["index_patterns"] = _as_list(view.get("index_patterns"))
            view.setdefault("composed_of", [])
        return view

    def _validate_template(self, index_kind: bool, name: str, template: dict[str, Any]) -> None:
        _check_mapping_types((template.get("template") or {}).get("mappings") or {}, _version_tuple(self.version))
        if not index_kind:
            if "template" not in template:
                raise _fail(400, "x_content_parse_exception", "[1:2] Required [template]")
            return
        patterns = _as_list(template.get("index_patterns"))
        if not patterns:
            raise _fail(400, "action_request_validation_exception", "Validation Failed: 1: index patterns are missing;")
        missing = [c for c in template.get("composed_of", []) if c not in self.component_templates]
        if missing:
            raise _fail(400, "invalid_index_template_exception", f"index_template [{name}] invalid, cause [index "
                        f"template [{name}] specifies component templates {missing} that do not exist]")
        priority = int(template.get("priority", 0))
        for other, body in self.index_templates.items():
            theirs = _as_list(body.get("index_patterns"))
            overlap = other != name and int(body.get("priority", 0)) == priority and any(
                fnmatch.fnmatchcase(a, b) or fnmatch.fnmatchcase(b, a) for a in patterns for b in theirs)
            if overlap:
                raise _fail(400, "illegal_argument_exception", f"index template [{name}] has index patterns {patterns} "
                            f"matching patterns from existing templates [{other}] with patterns ({other} => {theirs}) "
                            f"that have the same priority [{priority}], multiple index templates may not match during "
                            "index creation, please use a different priority")

    def _ism(self, method: str, policy_id: str | None, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        with self._lock:
            if policy_id is None:
                policies = [{"_id": k, **v} for k, v in sorted(self.ism_policies.items())]
                return 200, {"policies": policies, "total_policies": len(policies)}
            current = self.ism_policies.get(policy_id)
            if method == "GET":
                if current is None:
                    raise _fail(404, "status_exception", "Policy not found")
                return 200, {"_id": policy_id, **current}
            if method == "DELETE":
                self._ism_seq_no += 1
                answer = {"_index": ISM_CONFIG_INDEX, "_id": policy_id, "_version": (current or {}).get("_version", 0)
                          + 1, "result": "deleted" if current else "not_found", "forced_refresh": True,
                          "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": self._ism_seq_no,
                          "_primary_term": PRIMARY_TERM}
                self.ism_policies.pop(policy_id, None)
                return (200 if current else 404), answer
            policy = _json(body).get("policy")
            if not isinstance(policy, dict):
                raise _fail(400, "illegal_argument_exception", "Required [policy]")
            self._check_policy(policy)
            where = {"index": ISM_CONFIG_INDEX, "shard": "0", "index_uuid": "ism-config-uuid"}
            seq, term = query.get("if_seq_no"), query.get("if_primary_term")
            if current is not None and (seq is None or term is None):
                raise _fail(409, "version_conflict_engine_exception", f"[{policy_id}]: version conflict, document "
                            f"already exists (current version [{current['_version']}])", **where)
            if seq is not None and (current is None or int(seq) != current["_seq_no"]
                                    or int(term or -1) != current["_primary_term"]):
                found = (f"current document has seqNo [{current['_seq_no']}] and primary term "
                         f"[{current['_primary_term']}]" if current else "but no document was found")
                raise _fail(409, "version_conflict_engine_exception", f"[{policy_id}]: version conflict, required "
                            f"seqNo [{seq}], primary term [{term}]. {found}", **where)
            self._ism_seq_no += 1
            stored = self._ism_view(policy_id, policy)
            record = {"_version": current["_version"] + 1 if current else 1, "_seq_no": self._ism_seq_no,
                      "_primary_term": PRIMARY_TERM, "policy": stored}
            self.ism_policies[policy_id] = record
            # the plugin wraps the policy twice in this answer (and once in GET)
            return (200 if current else 201), {"_id": policy_id, "_version": record["_version"],
                                               "_primary_term": PRIMARY_TERM, "_seq_no": record["_seq_no"],
                                               "policy": {"policy": stored}}

    @staticmethod
    def _check_policy(policy: dict[str, Any]) -> None:
        states = policy.get("states") or []
        names = {s.get("name") for s in states if isinstance(s, dict)}
        if not states:
            raise _fail(400, "illegal_argument_exception", "Policy must contain at least one State")
        if policy.get("default_state") not in names:
            raise _fail(400, "illegal_argument_exception", "Policy must have a valid default state")
        for state in states:
            for transition in state.get("transitions") or []:
                if transition.get("state_name") not in names:
                    raise _fail(400, "illegal_argument_exception", "Policy contains a transition to a nonexistent state")
                for key, age in (transition.get("conditions") or {}).items():
                    if key.endswith("_age") and not re.fullmatch(r"\d+(d|h|m|s|ms|micros|nanos)", str(age)):
                        raise _fail(400, "illegal_argument_exception", f"failed to parse setting [{key}] with value "
                                    f"[{age}] as a time value: unit is missing or unrecognized")

    @staticmethod
    def _ism_view(policy_id: str, policy: dict[str, Any]) -> dict[str, Any]:
        """The policy as the plugin stores and returns it: bookkeeping and retry defaults added."""
        now = _now_ms()
        states = [{**s, "actions": [{"retry": {"count": 3, "backoff": "exponential", "delay": "1m"}, **a}
                                    for a in s.get("actions") or []], "transitions": s.get("transitions") or []}
                  for s in policy["states"]]
        view = {"policy_id": policy_id, "description": policy.get("description", ""), "last_updated_time": now,
                "schema_version": 21, "error_notification": policy.get("error_notification"),
                "default_state": policy["default_state"], "states": states,
                "ism_template": [{**t, "last_updated_time": now} for t in _as_list(policy.get("ism_template"))] or None}
        return {**{k: v for k, v in policy.items() if k not in view}, **view}

    # -- search ------------------------------------------------------------------------------------------------
    def _search(self, target: str, body: Any, query: dict[str, str], *, count: bool) -> tuple[int, Any]:
        started = time.perf_counter_ns()
        if not isinstance(body, dict):
            raise _fail(400, "parsing_exception", "Unknown key for a START_ARRAY in [_na_].")
        allowed = {"query"} if count else _SEARCH_KEYS
        unknown = next((k for k in body if k not in allowed), None)
        if unknown is not None:
            token = _json_token(body[unknown])
            raise _fail(400, "parsing_exception", f"Unknown key for a {token} in [{unknown}].", line=1, col=1)
        names = self._resolve(target, query)
        with self._lock:
            hits = [_Hit(n, doc_id, doc, self._indices[n].mappings) for n in names
                    for doc_id, doc in self._indices[n].docs.items()]
        clause = body.get("query", {"match_all": {}})
        hits = [h for h in hits if matches(h, clause)]
        shards = {"total": len(names), "successful": len(names), "skipped": 0, "failed": 0}
        if count:
            return 200, {"count": len(hits), "_shards": shards}
        total = len(hits)
        if "post_filter" in body:
            hits = [h for h in hits if matches(h, body["post_filter"])]
        keys = _parse_sort(body["sort"] if "sort" in body else query["sort"].split(",") if query.get("sort") else None)
        values: dict[int, list[Any]] = {id(h): [k.value(h) for k in keys] for h in hits} if keys else {}
        for position in range(len(keys) - 1, -1, -1):
            key = keys[position]

            def order(h: _Hit, p: int = position, k: _SortKey = key) -> tuple[Any, ...]:
                value = values[id(h)][p]
                if value is None:  # missing values go last unless asked first, whatever the direction
                    return (1 if k.missing_first == k.desc else -1,)
                return (0, *_rank(value))

            hits.sort(key=order, reverse=key.desc)
        after = body.get("search_after")
        start = int(body.get("from", query.get("from", 0)))
        size = int(body.get("size", query.get("size", 10)))
        if after is not None:
            if start:
                raise _fail(400, "illegal_argument_exception", "[from] parameter must be set to 0 when "
                            "[search_after] is used")
            if len(after) != len(keys):
                raise _fail(400, "illegal_argument_exception", f"search_after has {len(after)} value(s) but sort has "
                            f"{len(keys)}.")
            hits = [h for h in hits if _after(values[id(h)], after, keys)]
        if start + size > MAX_RESULT_WINDOW:
            raise _fail(400, "illegal_argument_exception", f"Result window is too large, from + size must be less than "
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
                                **({"_source": src} if (src := _select_source(h.source, source_filter)) is not None
                                   else {}), **({"sort": values[id(h)]} if keys else {})} for h in page]
        return 200, {"took": (time.perf_counter_ns() - started) // 1_000_000, "timed_out": False, "_shards": shards,
                     "hits": answer_hits}


def _json_token(value: Any) -> str:
    """The Jackson token name OpenSearch's parser errors use for a JSON value."""
    if isinstance(value, dict):
        return "START_OBJECT"
    if isinstance(value, list):
        return "START_ARRAY"
    if isinstance(value, bool):
        return "VALUE_BOOLEAN"
    if value is None:
        return "VALUE_NULL"
    return "VALUE_NUMBER" if _is_number(value) else "VALUE_STRING"


def _select_source(source: dict[str, Any], wanted: Any) -> dict[str, Any] | None:
    if wanted is True or wanted == "true":
        return source
    if wanted is False or wanted == "false":
        return None
    includes = _as_list(wanted.get("includes", wanted.get("include")) if isinstance(wanted, dict) else wanted)
    excludes = _as_list(wanted.get("excludes", wanted.get("exclude")) if isinstance(wanted, dict) else [])
    return {k: v for k, v in source.items() if (not includes or any(fnmatch.fnmatchcase(k, p) for p in includes))
            and not any(fnmatch.fnmatchcase(k, p) for p in excludes)}


# -- HTTP plumbing ---------------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as urllib3 pools connections
    disable_nagle_algorithm = True  # small answers on a kept-alive connection must not wait for delayed ACKs
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _handle(self) -> None:
        self.server.fake._serve(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle


class _Server(ThreadingHTTPServer):
    """Threads per connection; TLS handshakes happen in those threads, and stop closes idle connections."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), which can stall without DNS
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def __init__(self, fake: FakeOpenSearch, ssl_context: ssl.SSLContext | None) -> None:
        self.fake = fake
        self.ssl_context = ssl_context
        self._connections: set[socket.socket] = set()
        self._workers: set[threading.Thread] = set()
        self._track = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        worker = threading.Thread(target=self.process_request_thread, args=(request, client_address), daemon=True,
                                  name=f"fake-opensearch-conn-{client_address[1]}")
        with self._track:
            self._workers.add(worker)
        worker.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._track:
                self._workers.discard(threading.current_thread())

    def finish_request(self, request: Any, client_address: Any) -> None:
        connection = request
        if self.ssl_context is not None:
            request.settimeout(10)  # a client that never completes the handshake must not pin a thread
            try:
                connection = self.ssl_context.wrap_socket(request, server_side=True)
            except OSError:
                return  # refused handshake (wrong CA, no client certificate): the client sees the alert
            connection.settimeout(None)
        with self._track:
            self._connections.add(connection)
        try:
            self.RequestHandlerClass(connection, client_address, self)
        finally:
            with self._track:
                self._connections.discard(connection)
            if connection is not request:
                connection.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # resets and broken pipes are the client's business
            super().handle_error(request, client_address)

    def close_connections(self, timeout: float = 5.0) -> None:
        with self._track:
            connections, workers = list(self._connections), list(self._workers)
        for connection in connections:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(connection, socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
