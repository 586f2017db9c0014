"""``servelog history SERVING [-n NAMESPACE] [--model-version V] [--since T] [--output json]``: a deployment's life.

    servelog history fraud-detector -n models --since now-1d
    servelog history fraud-detector --model-version 3 --output json

Reads the deployment's documents from ``serving-events-*`` (``servelog events`` indexes them: see the
contract in :mod:`collector.model`), sorted by (``timestamp``, ``doc_id``) and paged with
``search_after`` by :class:`collector.query.reader.LogReader`, then folds them
(:func:`collector.deployment.deployment_history`): the status transitions, then the entries, newest
first, repeated events folded ("Back-off restarting failed container x37").
"""

from __future__ import annotations

import argparse
import sys

from collector.deployment import History, deployment_history, history_json, history_text
from collector.errors import CollectorError
from collector.query import cluster
from collector.query.connections import Connections
from collector.query.options import add_deployment_argument, add_opensearch_arguments, load
from collector.query.reader import PAGE_SIZE, LogReader, pin_namespace
from collector.query.search import LogQuery, check_time
from collector.query.terminal import EXIT_STATUS_HELP, NotFound, fail, use_color


def history_index(connections: Connections) -> str:
    """The index pattern of the history documents (``history.index`` with its ``{date}`` as ``*``)."""
    return connections.settings.history.index.replace("{date}", "*")


def read_history(connections: Connections, name: str, namespace: str | None = None, *, model_version: str | None = None,
                 since: str | None = None, index: str | None = None, page_size: int = PAGE_SIZE) -> History:
    """The deployment's history, every matching document read (``search_after`` pages of ``page_size``).

    Without ``namespace``: the one namespace the deployment's documents are in;
    :class:`~collector.query.terminal.Ambiguous` when they are in several,
    :class:`~collector.query.terminal.NotFound` when none was ever recorded.
    """
    cluster.check_name(name)
    check_time("--since", since)
    pattern = index or history_index(connections)
    reader = LogReader(connections.opensearch(), pattern, page_size=page_size)
    query = pin_namespace(reader, LogQuery(serving_name=name, namespace=namespace, model_version=model_version,
                                           since=since), what="history")
    docs = [hit.get("_source") or {} for hit in reader.pages(query)]
    filtered = model_version is not None or since is not None
    if not docs and (not filtered or not reader.count(LogQuery(serving_name=name, namespace=query.namespace))):
        where = f" in namespace {namespace}" if namespace else ""
        raise NotFound(f"no history recorded for {name}{where} in {pattern}: check the name, and that `servelog events` "
                       "runs (kubectl -n servelog get deploy servelog-events)")
    return deployment_history(docs, serving_name=name, namespace=query.namespace or "")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = ("A deployment's history from serving-events-*: its status transitions and every event, "
                          "container end, waiting reason and condition change, newest first, repeats folded.")
    parser.epilog = EXIT_STATUS_HELP + "\n--output json prints {serving_name, namespace, transitions, entries}.\n"
    add_deployment_argument(parser, namespace_help="its namespace (default: the one its history is in; several: "
                            "exit status 6)")
    parser.add_argument("--model-version", help="only this model version's documents")
    parser.add_argument("--since", help="from this time: RFC 3339, a day, a duration back (10m, 2h, 1d) or now-1d")
    parser.add_argument("--output", choices=["text", "json"], default="text", help="text (default) or json")
    parser.add_argument("--limit", type=int, default=100, help="most entries shown as text (0: all; json shows all)")
    parser.add_argument("--index", help="index pattern (default: history.index with {date} as *, serving-events-*)")
    add_opensearch_arguments(parser)


def run(args: argparse.Namespace) -> int:
    settings = load(args)
    with Connections(settings) as connections:
        try:
            history = read_history(connections, args.serving, args.namespace, model_version=args.model_version,
                                   since=args.since, index=args.index)
        except (CollectorError, ValueError) as exc:
            return fail("history", exc)
    if args.output == "json":
        sys.stdout.write(history_json(history))
    else:
        filters = ", ".join(f"{k} {v}" for k, v in (("version", args.model_version), ("since", args.since)) if v)
        sys.stdout.write(history_text(history, color=use_color(), limit=args.limit or None,
                                      empty=f"nothing recorded for {filters}" if filters else None))
    return 0
