"""``servelog logs``: print a deployment's indexed logs, oldest first, optionally following.

    servelog logs --serving fraud-detector --model-version 2 --component predictor --since now-1h
    servelog logs --serving fraud-detector --level error --follow
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from collector.model import LOG_INDEX_PATTERN
from collector.query.search import LogQuery, format_hit, search_body
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
    parser.add_argument("--limit", type=int, default=1000, help="most lines to print (0: no limit)")
    parser.add_argument("--follow", action="store_true", help="keep polling for new lines (Ctrl-C to stop)")
    parser.add_argument("--json", action="store_true", help="print raw documents as NDJSON")


def run(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    if args.opensearch_url:
        overrides["opensearch"] = {"url": args.opensearch_url}
    settings = load_settings(config_file=args.config, overrides=overrides)
    from collector.sinks.opensearch.client import OpenSearchClient  # noqa: PLC0415

    client = OpenSearchClient(settings.opensearch)
    query = LogQuery(**{k: getattr(args, k) for k in LogQuery.__dataclass_fields__})
    printed = 0
    after: list[Any] | None = None
    page = 500
    try:
        while True:
            size = page if not args.limit else min(page, args.limit - printed)
            if size <= 0:
                return 0
            response = client.request("POST", f"/{args.index}/_search", body=search_body(query, size=size, after=after),
                                      params={"ignore_unavailable": "true", "allow_no_indices": "true"})
            hits = response.get("hits", {}).get("hits", [])
            for hit in hits:
                if args.json:
                    import orjson  # noqa: PLC0415

                    sys.stdout.write(orjson.dumps({"index": hit.get("_index"), "id": hit.get("_id"),
                                                   "source": hit.get("_source")}).decode() + "\n")
                else:
                    sys.stdout.write(format_hit(hit) + "\n")
            printed += len(hits)
            if hits:
                after = hits[-1].get("sort")
            if len(hits) < size:
                if not args.follow:
                    return 0
                sys.stdout.flush()
                time.sleep(2.0)
    except KeyboardInterrupt:
        return 0
    finally:
        client.close()
