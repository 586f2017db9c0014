"""Search as OpenSearch answers it: the query DSL servelog uses, sort values, ``search_after``, ``filter_path``.

``matches`` evaluates ``bool``, ``term``, ``terms``, ``match``, ``match_phrase``, ``range`` (numbers and
nanosecond timestamps), ``exists``, ``ids``, ``prefix``, ``wildcard`` and simple ``query_string``
clauses against one stored document; sort keys produce the ``sort`` values OpenSearch puts in each
hit (``date_nanos`` as epoch nanoseconds, ``date`` as epoch milliseconds, a missing value as null)
and ``is_after`` decides ``search_after`` (strictly after the cursor, as ``SearchAfterBuilder``).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any

from tests.support.opensearch_server.common import as_list, fail, is_number
from tests.support.opensearch_server.mappings import _KEYWORD_TYPES, field_type, leaves
from tests.support.opensearch_server.timeparse import date_math_to_nanos, iso_to_nanos

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


class Hit:
    """One stored document as queries see it."""

    __slots__ = ("id", "index", "mappings", "source")

    def __init__(self, index: str, doc_id: str, source: dict[str, Any], mappings: dict[str, Any] | None) -> None:
        self.index, self.id, self.source, self.mappings = index, doc_id, source, mappings

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
        return list(leaves(node))
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



def _compare(a: Any, b: Any) -> int | None:
    """Order two field values the way a range query would; None when they cannot be ordered."""
    if is_number(a) and is_number(b):
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
            if nanos is None or not is_number(num):
                return None
            other = nanos / 1_000_000  # a number against a date: epoch millis
        x, y = (other, num) if isinstance(a, str) else (num, other)
        return (x > y) - (x < y)
    return None


def _equal(hit: Hit, name: str, wanted: Any, *, insensitive: bool = False) -> bool:
    target = _text(wanted)
    if hit.kind(name) in ("text", "match_only_text"):  # term on an analyzed field matches one token
        return any(target in _TOKEN.findall(_text(v).lower()) for v in hit.values(name))
    if insensitive:
        return any(_text(v).lower() == target.lower() for v in hit.values(name))
    return any(v == wanted or _text(v) == target for v in hit.values(name))


def _field_spec(spec: Any, value_key: str = "value") -> tuple[str, Any, dict[str, Any]]:
    if not isinstance(spec, dict) or not spec:
        raise fail(400, "parsing_exception", "query malformed, no field")
    name, value = next((k, v) for k, v in spec.items() if k not in ("boost", "_name"))
    options = value if isinstance(value, dict) else {}
    return name, options.get(value_key, value) if options else value, options


def _tokens_match(hit: Hit, name: str, query: Any, *, phrase: bool, operator: str = "or") -> bool:
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



def matches(hit: Hit, query: Any) -> bool:
    """Whether a stored document matches a query DSL clause."""
    if not isinstance(query, dict) or len(query) != 1:
        raise fail(400, "parsing_exception", "[_na] query malformed, must start with start_object")
    (kind, spec), = query.items()
    if kind == "match_all":
        return True
    if kind == "match_none":
        return False
    if kind == "bool":
        must = [*as_list(spec.get("must")), *as_list(spec.get("filter"))]
        should = as_list(spec.get("should"))
        if not all(matches(hit, q) for q in must) or any(matches(hit, q) for q in as_list(spec.get("must_not"))):
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
        return any(_equal(hit, name, v) for v in as_list(value))
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
    raise fail(400, "parsing_exception", f"unknown query [{kind}]", line=1, col=1)


_QS_TERM = re.compile(r'(-|NOT\s+)?(?:([\w.@/-]+):)?("(?:[^"\\]|\\.)*"|\(|\)|[^\s()]+)')


def _query_string(hit: Hit, spec: dict[str, Any]) -> bool:
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
class SortKey:
    field: str
    desc: bool
    missing_first: bool
    kind: str | None = None
    unmapped_type: str | None = None

    def value(self, hit: Hit) -> Any:
        """The value OpenSearch puts in ``hit.sort`` for this key (dates as epoch millis/nanos)."""
        values = hit.values(self.field)
        if not values:
            return None
        kind = hit.kind(self.field) if self.field not in ("_id", "_index") else "keyword"
        if kind is None and self.unmapped_type:
            kind = self.unmapped_type
        if kind in ("text", "match_only_text"):
            raise fail(400, "illegal_argument_exception", "Text fields are not optimised for operations that require "
                        "per-document field data like aggregations and sorting, so these operations are disabled by "
                        f"default. Please use a keyword field instead. Alternatively, set fielddata=true on "
                        f"[{self.field}] in order to load field data by uninverting the inverted index.")
        self.kind = self.kind or kind
        converted = [self._convert(v, kind) for v in values]
        return max(converted, key=rank) if self.desc else min(converted, key=rank)

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


def rank(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (0, int(value))
    return (0, value) if is_number(value) else (1, _text(value))


def parse_sort(sort: Any) -> list[SortKey]:
    keys = []
    for item in as_list(sort):
        if isinstance(item, str):
            name, _, order = item.partition(":")
            keys.append(SortKey(name, order == "desc" or (not order and name == "_score"), False))
        elif isinstance(item, dict) and len(item) == 1:
            (name, spec), = item.items()
            spec = {"order": spec} if isinstance(spec, str) else spec
            desc = str(spec.get("order", "desc" if name == "_score" else "asc")).lower() == "desc"
            keys.append(SortKey(name, desc, spec.get("missing") == "_first", unmapped_type=spec.get("unmapped_type")))
        else:
            raise fail(400, "parsing_exception", f"malformed sort [{item}]")
    return keys


def is_after(values: list[Any], cursor: list[Any], keys: list[SortKey]) -> bool:
    """Whether a hit with sort ``values`` comes strictly after ``cursor`` in the sort order."""
    for value, raw_mark, key in zip(values, cursor, keys, strict=True):
        mark = key.cursor(raw_mark)
        if value is None or mark is None:
            if value is None and mark is None:
                continue
            return (value is None) != key.missing_first
        a, b = rank(value), rank(mark)
        if a != b:
            return (a > b) != key.desc
    return False


def select_source(source: dict[str, Any], wanted: Any) -> dict[str, Any] | None:
    if wanted is True or wanted == "true":
        return source
    if wanted is False or wanted == "false":
        return None
    includes = as_list(wanted.get("includes", wanted.get("include")) if isinstance(wanted, dict) else wanted)
    excludes = as_list(wanted.get("excludes", wanted.get("exclude")) if isinstance(wanted, dict) else [])
    return {k: v for k, v in source.items() if (not includes or any(fnmatch.fnmatchcase(k, p) for p in includes))
            and not any(fnmatch.fnmatchcase(k, p) for p in excludes)}



def shard_failure(status: int, cause: dict[str, Any], node: str) -> dict[str, Any]:
    """A search that failed on every shard: ``search_phase_execution_exception`` around the shard's cause."""
    return {"error": {"root_cause": [cause], "type": "search_phase_execution_exception", "reason": "all shards failed",
                      "phase": "query", "grouped": True,
                      "failed_shards": [{"shard": 0, "index": cause.get("index"), "node": node, "reason": cause}],
                      "caused_by": cause}, "status": status}
