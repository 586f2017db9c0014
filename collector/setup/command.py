"""``servelog setup``: install index templates, ISM retention and Dashboards saved objects, idempotently.

    servelog setup --opensearch-url https://os:9200 --dashboards-url https://os.example/_dashboards
    servelog setup --dry-run --logs-retention 7d
    servelog setup --print-discover-url --dashboards-url http://localhost:5601 --serving iris --model-version 2

Every asset is compared with what the cluster holds and written only when it differs; the report
says, per asset, create / update / unchanged and the request that applies it (``--dry-run`` prints
that plan and sends no write). Templates and retention are installed even when Dashboards is not
reachable: a missing ``--dashboards-url`` is a warning (exit 0), an unreachable one an error (exit 1).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from collector.errors import SetupError
from collector.settings import Settings, load_settings
from collector.setup import assets
from collector.setup.dashboards import DashboardsClient, plan_saved_objects
from collector.setup.discover import discover_url
from collector.setup.installer import Installer
from collector.setup.plan import Step, retention_age, version_warnings
from collector.sinks.opensearch.client import OpenSearchClient, redact

_RETENTION = {  # flag -> (ISM policy id, default age shown in --help)
    "logs_retention": ("servelog-logs-retention", "14d"),
    "deadletter_retention": ("servelog-deadletter-retention", "30d"),
    "events_retention": ("servelog-events-retention", "90d"),
}


def _age(value: str) -> str:
    try:
        return retention_age(value)
    except SetupError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _replicas(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"--replicas takes a number >= 0, got {value!r}")
    return int(value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--opensearch-url", help="OpenSearch URL (default: from settings)")
    parser.add_argument("--dashboards-url",
                        help="OpenSearch Dashboards URL including any base path, e.g. https://host/_dashboards "
                        "(without it, saved objects are not imported)")
    parser.add_argument("--tenant", help="security plugin tenant for the saved objects (securitytenant header)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan (each asset, request, verdict); change nothing")
    parser.add_argument("--skip-dashboards", action="store_true", help="install templates and retention only")
    for flag, (policy_id, default) in _RETENTION.items():
        parser.add_argument(f"--{flag.replace('_', '-')}", type=_age, metavar="AGE",
                            help=f"{policy_id}: delete indices this old (default {default})")
    parser.add_argument("--replicas", type=_replicas, help="number_of_replicas of new indices (default 1)")
    parser.add_argument("--assets-dir", type=Path,
                        help="folder holding index_templates/ and dashboards/ (default: found next to servelog)")
    parser.add_argument("--print-discover-url", action="store_true",
                        help="print a Discover link for --serving [--model-version] [--component] and exit")
    parser.add_argument("--serving", help="with --print-discover-url: the serving (InferenceService) name")
    parser.add_argument("--model-version", help="with --print-discover-url: the model version")
    parser.add_argument("--component", help="with --print-discover-url: predictor, transformer, ...")
    parser.add_argument("--since", default="now-24h", help="with --print-discover-url: start of the time range")


def run(args: argparse.Namespace) -> int:
    if args.print_discover_url:
        if not args.dashboards_url or not args.serving:
            raise SetupError("--print-discover-url needs --dashboards-url and --serving")
        print(discover_url(args.dashboards_url, serving=args.serving, model_version=args.model_version,
                           component=args.component, since=args.since))
        return 0
    overrides: dict[str, Any] = {"opensearch": {"url": args.opensearch_url}} if args.opensearch_url else {}
    settings = load_settings(config_file=getattr(args, "config", None), overrides=overrides)
    root = assets.assets_root([args.assets_dir] if args.assets_dir else None)
    steps = _install_opensearch(settings, args, root)
    if args.skip_dashboards:
        return _summary(steps, dry_run=args.dry_run)
    if not args.dashboards_url:
        print("warning: no --dashboards-url given: index patterns, saved searches and the dashboard were not "
              "imported (rerun with --dashboards-url URL, or --skip-dashboards to silence this)", file=sys.stderr)
        return _summary(steps, dry_run=args.dry_run)
    steps += _install_dashboards(settings, args, root)
    return _summary(steps, dry_run=args.dry_run)


def _install_opensearch(settings: Settings, args: argparse.Namespace, root: Path) -> list[Step]:
    client = OpenSearchClient(settings.opensearch)
    try:
        installer = Installer(client)
        version = installer.check_version()
        print(f"OpenSearch {version} at {redact(settings.opensearch.url)}")
        for warning in version_warnings(version):
            print(f"warning: {warning}", file=sys.stderr)
        retention = {policy_id: getattr(args, flag) for flag, (policy_id, _) in _RETENTION.items()}
        steps = installer.plan(assets.load_templates(root), assets.load_ism_policies(root), replicas=args.replicas,
                               retention=retention)
        if not args.dry_run:
            installer.apply(steps)
    finally:
        client.close()
    _report(steps)
    for step in steps:
        if step.kind == "ism_policy" and step.state == "update":
            # ISM pins each managed index to the policy version it started with
            print(f"note: indices already managed by {step.name} keep its previous version; move them with "
                  f"POST _plugins/_ism/change_policy/<indices> {{\"policy_id\": \"{step.name}\"}}", file=sys.stderr)
    return steps


def _install_dashboards(settings: Settings, args: argparse.Namespace, root: Path) -> list[Step]:
    saved = assets.load_saved_objects(root)
    client = DashboardsClient.from_settings(args.dashboards_url, settings.opensearch, tenant=args.tenant)
    try:
        version = client.version()
        tenant = f", tenant {args.tenant}" if args.tenant else ""
        print(f"OpenSearch Dashboards {version} at {redact(client.url)}{tenant}")
        stored = client.bulk_get([(o["type"], o["id"]) for o in saved.objects])
        steps = plan_saved_objects(saved.objects, stored)
        changed = [s.body for s in steps if s.changed]
        if changed and not args.dry_run:
            result = client.import_objects(changed, filename=saved.path.name)
            if result.errors:
                raise SetupError(f"Dashboards refused {len(result.errors)} saved object(s) from {saved.path.name}: "
                                 + "; ".join(result.errors))
    finally:
        client.close()
    _report(steps)
    return steps


def _report(steps: Sequence[Step]) -> None:
    for step in steps:
        print(step.describe())


def _summary(steps: Sequence[Step], *, dry_run: bool) -> int:
    count = {state: sum(1 for s in steps if s.state == state) for state in ("create", "update", "unchanged")}
    if dry_run:
        print(f"dry run: {count['create']} to create, {count['update']} to update, {count['unchanged']} unchanged; "
              "nothing was changed")
    else:
        print(f"setup complete: {count['create']} created, {count['update']} updated, {count['unchanged']} unchanged")
    return 0
