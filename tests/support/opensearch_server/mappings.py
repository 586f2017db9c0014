"""Mappings as OpenSearch checks them: field types and parameters at ``PUT``, documents at indexing.

``check_mappings`` refuses what a real node refuses when a template or an index is created (checked
against 2.19 and 3.x by ``tests/contract``): an unknown field type (``No handler for type [x] declared
on field [f]``), an unknown parameter of a parametrized mapper (``unknown parameter [x] on mapper [f] of
type [keyword]``, ``ParametrizedFieldMapper.Builder.parse``), a parameter of a legacy mapper such as
``flat_object`` or ``object`` (``Mapping definition for [f] has unsupported parameters:  [x : 1]``,
``DocumentMapperParser.checkNoRemainingFields``), and an unknown root key (``Root mapping definition
has unsupported parameters``); each wrapped in ``Failed to parse mapping [_doc]: ...``. Types the
tables below do not describe accept any parameter.

``validate_source`` answers the bulk-item error a document causes under the mappings.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable
from typing import Any

import orjson

from tests.support.opensearch_server.common import MAX_KEYWORD_BYTES, ItemError, Reply, is_number, wrapped
from tests.support.opensearch_server.timeparse import iso_to_nanos

_INT_BITS = {"long": 63, "integer": 31, "short": 15, "byte": 7}
_FLOAT_TYPES = {"double", "float", "half_float", "scaled_float", "unsigned_long"}
_KEYWORD_TYPES = {"keyword", "constant_keyword", "wildcard"}
_KNOWN_TYPES = {"text", "match_only_text", "keyword", "constant_keyword", "wildcard", "long", "integer", "short",
                "byte", "double", "float", "half_float", "scaled_float", "unsigned_long", "date", "date_nanos",
                "boolean", "binary", "object", "nested", "flat_object", "ip", "geo_point", "geo_shape", "alias",
                "join", "completion", "search_as_you_type", "token_count", "rank_feature", "rank_features",
                "knn_vector", "integer_range", "float_range", "long_range", "double_range", "date_range", "ip_range",
                "percolator", "derived", "star_tree"}


_COMMON = {"type", "meta", "fields", "copy_to", "boost"}
_NUMERIC = _COMMON | {"coerce", "doc_values", "ignore_malformed", "index", "null_value", "store"}
_DATE = _COMMON | {"doc_values", "format", "locale", "ignore_malformed", "index", "null_value", "store", "print_format"}
#: parameters a real node accepts per type (probed on 2.19.6 and 3.8.0; 3.x adds skip_list to numbers)
PARAMETERS: dict[str, set[str]] = {
    "keyword": _COMMON | {"doc_values", "eager_global_ordinals", "ignore_above", "index", "index_options", "norms",
                          "null_value", "similarity", "normalizer", "split_queries_on_whitespace", "store"},
    "text": _COMMON | {"analyzer", "search_analyzer", "search_quote_analyzer", "eager_global_ordinals", "fielddata",
                       "fielddata_frequency_filter", "index", "index_options", "index_prefixes", "index_phrases",
                       "norms", "position_increment_gap", "store", "similarity", "term_vector", "doc_values"},
    **dict.fromkeys(("long", "integer", "short", "byte", "double", "float", "half_float", "unsigned_long"), _NUMERIC),
    "scaled_float": _NUMERIC | {"scaling_factor"},
    "date": _DATE,
    "date_nanos": _DATE,
    "boolean": _COMMON | {"doc_values", "index", "null_value", "store"},
}
#: legacy (non-parametrized) mappers: the only keys they read
LEGACY_PARAMETERS: dict[str, set[str]] = {
    "flat_object": {"type"},
    "object": {"type", "properties", "dynamic", "enabled"},
    "nested": {"type", "properties", "dynamic", "enabled", "include_in_parent", "include_in_root"},
}
ROOT_PARAMETERS = {"dynamic", "properties", "_source", "_meta", "date_detection", "dynamic_templates", "_routing",
                   "numeric_detection", "dynamic_date_formats", "_field_names", "enabled", "_doc_count", "derived"}


def _mapping_error(inner: str) -> Reply:
    cause = {"type": "mapper_parsing_exception", "reason": inner}
    return wrapped(400, "mapper_parsing_exception", f"Failed to parse mapping [_doc]: {inner}", cause)


def _unsupported(where: str, extra: dict[str, Any]) -> str:
    return f"{where} has unsupported parameters: " + "".join(f" [{k} : {java_text(v)}]" for k, v in extra.items())


def check_mappings(mappings: dict[str, Any], version: tuple[int, ...]) -> None:
    """Refuse mappings a real node of this version refuses (see the module docstring)."""
    extra = {k: v for k, v in mappings.items() if k not in ROOT_PARAMETERS}
    if extra:
        raise _mapping_error(_unsupported("Root mapping definition", extra))
    _check_properties(mappings.get("properties") or {}, version)


def _check_properties(properties: dict[str, Any], version: tuple[int, ...]) -> None:
    for name, spec in properties.items():
        if not isinstance(spec, dict):
            raise _mapping_error(f"Expected map for property [fields] on field [{name}] but got a class "
                                 f"{type(spec).__name__}")
        kind = spec.get("type", "object")
        if kind not in _KNOWN_TYPES or (kind == "flat_object" and version < (2, 7)):
            raise _mapping_error(f"No handler for type [{kind}] declared on field [{name}]")
        allowed = PARAMETERS.get(kind)
        if allowed is not None:
            known = allowed | ({"skip_list"} if version >= (3,) and allowed is _NUMERIC else set())
            unknown = next((k for k in spec if k not in known), None)
            if unknown is not None:
                raise _mapping_error(f"unknown parameter [{unknown}] on mapper [{name}] of type [{kind}]")
        legacy = LEGACY_PARAMETERS.get(kind)
        if legacy is not None:
            extra = {k: v for k, v in spec.items() if k not in legacy}
            if extra:
                raise _mapping_error(_unsupported(f"Mapping definition for [{name}]", extra))
        _check_properties(spec.get("properties") or {}, version)
        for sub, sub_spec in (spec.get("fields") or {}).items():
            _check_properties({sub: sub_spec}, version)


def normalize_index_mappings(mappings: Any) -> Any:
    """Index mappings as ``GET /<index>/_mapping`` hands them back: ``dynamic`` as text (``"false"``).

    (Templates keep the booleans they were given: only an index's mapping comes back stringified.)
    """
    if isinstance(mappings, dict):
        return {k: (str(v).lower() if k == "dynamic" else normalize_index_mappings(v)) for k, v in mappings.items()}
    return mappings


def java_text(value: Any) -> str:
    """A JSON value as Java's ``toString`` prints it in OpenSearch messages (``{o=1}``, ``[a, b]``, ``false``)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={java_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(java_text(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def _preview(value: Any) -> str:
    text = java_text(value)
    return text[:20] + ("..." if len(text) > 20 else "")


def _parse_failure(field: str, kind: str, doc_id: str, value: Any, cause: tuple[str, str]) -> ItemError:
    return {"type": "mapper_parsing_exception", "reason": f"failed to parse field [{field}] of type [{kind}] in "
            f"document with id '{doc_id}'. Preview of field's value: '{_preview(value)}'",
            "caused_by": {"type": cause[0], "reason": cause[1]}}


_JAVA_RANGE = {"long": "long (-9223372036854775808 - 9223372036854775807)", "integer": "int (-2147483648 - 2147483647)",
               "short": "short (-32768 - 32767)", "byte": "byte (-128 - 127)"}


def _number_problem(value: Any, kind: str) -> tuple[str, str] | None:
    """The cause a real node gives (2.19 and 3.x; Jackson's messages lose their source location here)."""
    if isinstance(value, bool):
        return ("json_parse_exception", f"Current token (VALUE_{str(value).upper()}) not numeric, can not use numeric "
                "value accessors")
    number: float | int
    if isinstance(value, int | float):
        number = value
        bits = _INT_BITS.get(kind)
        if isinstance(value, int) and bits is not None and not -(2 ** bits) <= value < 2 ** bits:
            return ("input_coercion_exception", f"Numeric value ({value}) out of range of {_JAVA_RANGE[kind]}")
    else:
        # NumberFieldMapper: long parses strings through Numbers.toLong (IllegalArgumentException), the others
        # through Java's parsers (NumberFormatException)
        bad = ("illegal_argument_exception" if kind in ("long", "unsigned_long") else "number_format_exception",
               f'For input string: "{value}"')
        try:
            number = int(str(value).strip())
        except ValueError:
            try:
                number = float(str(value).strip())
            except ValueError:
                return bad
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
            if is_number(value) or (isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value)):
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


def leaves(value: Any) -> Iterable[Any]:
    if isinstance(value, list):
        for item in value:
            yield from leaves(item)
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
        for leaf in leaves(value):
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


