"""``servelog logs [SERVING]``: a deployment's logs, from its running components or from OpenSearch.

    servelog logs fraud-detector -n models                        # auto: the components if running, else OpenSearch
    servelog logs fraud-detector -n models --source kubernetes --container kserve-container --previous
    servelog logs fraud-detector --source opensearch --model-version 2 --component predictor --since now-1h
    servelog logs --namespace models --level error --follow       # every deployment's, from OpenSearch

Which source, and what ``--tail``/``--limit`` mean for each, is :mod:`collector.query.logs`. Without
``--follow`` it prints what the source has (oldest first); with it, every new line exactly once
(:mod:`collector.query.follow` for OpenSearch, :mod:`collector.query.transient_follow` for the API).
``--serving NAME`` keeps working as the positional argument's old spelling.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from collector.errors import CollectorError
from collector.model import LOG_INDEX_PATTERN
from collector.query.connections import Connections
from collector.query.logs import SOURCES, LogRequest, read_logs
from collector.query.options import add_kube_arguments, add_opensearch_arguments, load
from collector.query.search import LogQuery, format_hit
from collector.query.terminal import EXIT_STATUS_HELP, fail, note

_EPILOG = EXIT_STATUS_HELP + """
--source auto (the default) reads the deployment's running components through the Kubernetes API and
says so on stderr; when none runs (idle, stopped, failed before starting) or no cluster answers, it
reads OpenSearch and says why. Without a deployment name, OpenSearch. From the components --limit keeps
the newest lines, from OpenSearch the oldest of --since; --tail N is the last N lines (of each container
from the components). --json prints {index, id, source} per line, the same documents from both sources.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _EPILOG
    parser.add_argument("serving", metavar="SERVING", nargs="?", help="the deployment (InferenceService / serving name)")
    parser.add_argument("--serving", dest="serving_flag", help=argparse.SUPPRESS)  # the old spelling
    parser.add_argument("-n", "--namespace", help="Kubernetes namespace (the cluster is asked in the kubeconfig "
                        "context's when not given; OpenSearch is filtered only when given)")
    parser.add_argument("--source", choices=SOURCES, default="auto",
                        help="auto (default): the running components, else OpenSearch; kubernetes; opensearch")
    parser.add_argument("--index", default=LOG_INDEX_PATTERN, help=f"index pattern (default {LOG_INDEX_PATTERN})")
    parser.add_argument("--model-name", help="model name")
    parser.add_argument("--model-version", help="model version")
    parser.add_argument("--component", help="predictor | transformer | explainer")
    parser.add_argument("--container", dest="container_name", help="kserve-container, storage-initializer, agent, ...")
    parser.add_argument("--pod", dest="pod_name", help="pod name")
    parser.add_argument("--level", choices=["debug", "info", "warning", "error", "critical"], help="log level")
    parser.add_argument("--grep", dest="text", help="phrase the message must contain")
    parser.add_argument("--since", help="from this time: RFC 3339, a day, a duration back (10m, 2h, 1d) or now-1h")
    parser.add_argument("--until", help="up to this time (exclusive; the same forms)")
    parser.add_argument("--tail", type=int, metavar="N", help="the last N lines (of each container, from the components)")
    parser.add_argument("--previous", action="store_true",
                        help="the previous instance of each container (the one before a restart; needs the components)")
    parser.add_argument("--limit", type=int, default=1000,
                        help="most lines to print (0: no limit); with --follow, the newest lines shown first")
    parser.add_argument("--follow", "-f", action="store_true", help="keep printing new lines (Ctrl-C to stop)")
    parser.add_argument("--follow-window", type=float, default=60.0, metavar="SECONDS",
                        help="with --follow from OpenSearch: how late a line may become searchable and still be printed "
                        "(default 60)")
    parser.add_argument("--poll-seconds", type=float, default=2.0, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print documents as NDJSON {index, id, source}")
    add_opensearch_arguments(parser)
    add_kube_arguments(parser)


def printer(as_json: bool, *, flush: bool) -> Any:
    """Print one hit as ``servelog logs`` does (``--json``: ``{index, id, source}``)."""
    def emit(hit: dict[str, Any]) -> None:
        if as_json:
            sys.stdout.write(orjson.dumps({"index": hit.get("_index"), "id": hit.get("_id"),
                                           "source": hit.get("_source")}).decode() + "\n")
        else:
            sys.stdout.write(format_hit(hit) + "\n")
        if flush:  # a follower's reader sees each line as it is found
            sys.stdout.flush()
    return emit


def request_from(args: argparse.Namespace) -> LogRequest:
    if args.serving and args.serving_flag and args.serving != args.serving_flag:
        raise ValueError(f"two deployments named: {args.serving} and --serving {args.serving_flag}")
    fields = {k: getattr(args, k) for k in LogQuery.__dataclass_fields__ if k != "serving_name"}
    query = LogQuery(serving_name=args.serving or args.serving_flag, **fields)
    return LogRequest(query=query, source=args.source, tail=args.tail, previous=args.previous, limit=args.limit,
                      follow=args.follow, follow_window=args.follow_window, poll_seconds=args.poll_seconds,
                      index=args.index)


def run(args: argparse.Namespace) -> int:
    try:
        request = request_from(args)
        request.check()
    except ValueError as exc:
        return fail("logs", exc)
    settings = load(args)
    with Connections(settings, context=args.context) as connections:
        try:
            read_logs(request, connections, printer(args.json, flush=args.follow),
                      note=lambda text: note("logs", text), warn=lambda text: print(f"warning: {text}", file=sys.stderr))
        except KeyboardInterrupt:
            return 0
        except (CollectorError, ValueError) as exc:
            return fail("logs", exc)
    return 0
