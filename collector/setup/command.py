"""``servelog setup``: install templates, ISM retention and Dashboards saved objects.

    servelog setup --opensearch-url https://os:9200 --dashboards-url https://os/_dashboards
    servelog setup --dry-run
    servelog setup --print-discover-url --dashboards-url http://localhost:5601 --serving iris --model-version 2
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from collector.errors import SetupError
from collector.settings import load_settings
from collector.setup import assets
from collector.setup.discover import discover_url
from collector.setup.installer import Action, DashboardsClient, Installer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--opensearch-url", help="OpenSearch URL (default from settings)")
    parser.add_argument("--dashboards-url", help="OpenSearch Dashboards URL, including a base path such as /_dashboards")
    parser.add_argument("--tenant", help="security tenant for the saved objects (securitytenant header)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    parser.add_argument("--skip-dashboards", action="store_true", help="install only templates and ISM policies")
    parser.add_argument("--logs-retention", help="delete log indices after this age (default 14d)")
    parser.add_argument("--deadletter-retention", help="delete dead-letter indices after this age (default 30d)")
    parser.add_argument("--events-retention", help="delete event indices after this age (default 90d)")
    parser.add_argument("--replicas", type=int, help="number_of_replicas of new indices (default 1)")
    parser.add_argument("--print-discover-url", action="store_true",
                        help="print a Discover link for --serving [--model-version] [--component] and exit")
    parser.add_argument("--serving", help="serving name, with --print-discover-url")
    parser.add_argument("--model-version", help="model version, with --print-discover-url")
    parser.add_argument("--component", help="component, with --print-discover-url")


def run(args: argparse.Namespace) -> int:
    if args.print_discover_url:
        if not args.dashboards_url or not args.serving:
            raise SetupError("--print-discover-url needs --dashboards-url and --serving")
        print(discover_url(args.dashboards_url, serving=args.serving, model_version=args.model_version,
                           component=args.component))
        return 0
    overrides: dict[str, Any] = {}
    if args.opensearch_url:
        overrides["opensearch"] = {"url": args.opensearch_url}
    settings = load_settings(config_file=args.config, overrides=overrides)
    from collector.sinks.opensearch.client import OpenSearchClient  # noqa: PLC0415

    client = OpenSearchClient(settings.opensearch)
    installer = Installer(client, dry_run=args.dry_run)
    prefix = "plan" if args.dry_run else "done"
    try:
        version = installer.check_version()
        print(f"OpenSearch {version} at {settings.opensearch.url}")
        actions: list[Action] = installer.templates(replicas=args.replicas)
        actions += installer.ism({"servelog-logs-retention": args.logs_retention,
                                  "servelog-deadletter-retention": args.deadletter_retention,
                                  "servelog-events-retention": args.events_retention})
        for action in actions:
            print(f"{prefix}: {action}")
    finally:
        client.close()
    if args.skip_dashboards:
        return 0
    if not args.dashboards_url:
        print("note: no --dashboards-url: saved objects (index patterns, searches, dashboard) not imported",
              file=sys.stderr)
        return 0
    dashboards = DashboardsClient(args.dashboards_url, settings.opensearch, tenant=args.tenant)
    print(f"OpenSearch Dashboards {dashboards.check()} at {args.dashboards_url}")
    path = assets.saved_objects_file()
    if args.dry_run:
        print(f"plan: {Action('saved_objects', path.name, 'import', 'overwrite=true')}")
        return 0
    print(f"done: {dashboards.import_objects(path.read_bytes(), path.name)}")
    return 0
