"""``servelog logs``: print a deployment's indexed logs, oldest first, optionally following.

    servelog logs --serving fraud-detector --model-version 2 --component predictor --since now-1h
    servelog logs --serving fraud-detector --level error --follow

Without ``--follow`` it pages (:mod:`collector.query.reader`) through what ``--since``/``--until``
select, oldest first, up to ``--limit`` lines. With ``--follow`` it prints the newest ``--limit``
lines and then every new one exactly once (:mod:`collector.query.follow`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from collector.model import LOG_INDEX_PATTERN
from collector.query.follow import Follower
from collector.query.reader import LogReader
from collector.query.search import LogQuery, format_hit
from collector.settings import load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--opensearch-url", help="OpenSearch URL (default from settings)")
    parser.add_argument("--index", default=LOG_INDEX_PATTERN, help=f"index pattern (default {LOG_INDEX_PATTERN})")
    parser.add_argument("--serving", dest="serving_name", help="serving (InferenceService) name")
    parser.add_argument("--model-name", help="model name")
    parser.add_argument("--model-version", help="model version")
    parser.add_argument("--component", help="predictor | transformer | explainer")
    parser.add_argument("--container", dest="container_name", help="kserve-container, storage-initializer, agent, ...")
    parser.add_argument("--namespace", help="Kubernetes namespace")
    parser.add_argument("--pod", dest="pod_name", help="pod name")
    parser.add_argument("--level", choices=["debug", "info", "warning", "error", "critical"], help="log level")
    parser.add_argument("--grep", dest="text", help="phrase the message must contain")
    parser.add_argument("--since", help="from this time (RFC 3339 or date math such as now-1h)")
    parser.add_argument("--until", help="up to this time (exclusive)")
    parser.add_argument("--limit", type=int, default=1000,
                        help="most lines to print (0: no limit); with --follow, the newest lines shown first")
    parser.add_argument("--follow", action="store_true", help="keep printing new lines (Ctrl-C to stop)")
    parser.add_argument("--follow-window", type=float, default=60.0, metavar="SECONDS",
                        help="with --follow: how late a line may become searchable and still be printed (default 60)")
    parser.add_argument("--poll-seconds", type=float, default=2.0, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print raw documents as NDJSON")


def _printer(as_json: bool, *, flush: bool) -> Any:
    def emit(hit: dict[str, Any]) -> None:
        if as_json:
            sys.stdout.write(orjson.dumps({"index": hit.get("_index"), "id": hit.get("_id"),
                                           "source": hit.get("_source")}).decode() + "\n")
        else:
            sys.stdout.write(format_hit(hit) + "\n")
        if flush:  # a follower's reader sees each line as it is found
            sys.stdout.flush()
    return emit


def run(args: argparse.Namespace) -> int:
    if args.follow and args.until:
        print("servelog logs: --follow and --until exclude each other", file=sys.stderr)
        return 2
    overrides: dict[str, Any] = {}
    if args.opensearch_url:
        overrides["opensearch"] = {"url": args.opensearch_url}
    settings = load_settings(config_file=args.config, overrides=overrides)
    from collector.sinks.opensearch.client import OpenSearchClient  # noqa: PLC0415

    client = OpenSearchClient(settings.opensearch)
    query = LogQuery(**{k: getattr(args, k) for k in LogQuery.__dataclass_fields__})
    reader = LogReader(client, args.index)
    emit = _printer(args.json, flush=args.follow)
    try:
        if args.follow:
            Follower(reader, query, emit, warn=lambda text: print(f"warning: {text}", file=sys.stderr),
                     window_ns=int(args.follow_window * 1e9), poll_seconds=args.poll_seconds).run(args.limit)
        else:
            for hit in reader.pages(query, limit=args.limit):
                emit(hit)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        client.close()
