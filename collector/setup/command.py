"""``servelog setup``: install index templates, ISM retention and Dashboards saved objects, idempotently.

    servelog setup --opensearch-url https://os:9200 --dashboards-url https://os.example/_dashboards
    servelog setup --dry-run --logs-retention 7d
    servelog setup --print-discover-url --dashboards-url http://localhost:5601 --serving iris --model-version 2
    servelog setup --skip-retention            # a cluster without the ISM plugin: templates only

Every asset is compared with what the cluster holds and written only when it differs; the report
says, per asset, create / update / unchanged and the request that applies it (``--dry-run`` prints
that plan and sends no write). Templates and retention are installed even when Dashboards is not
reachable: a missing ``--dashboards-url`` is a warning (exit 0), an unreachable one an error (exit 1).
A cluster without the ISM plugin is an error (exit 1) unless ``--skip-retention`` says to install the
templates alone. The shard arithmetic of the daily indices is printed, with a warning near the
cluster's shard limit (:mod:`collector.setup.sizing`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from collector.errors import SetupError, SinkError
from collector.settings import Settings, load_settings
from collector.setup import assets
from collector.setup.dashboards import DashboardsClient, plan_saved_objects
from collector.setup.discover import discover_url
from collector.setup.installer import Installer
from collector.setup.plan import Step, retention_age, retention_of, version_warnings
from collector.setup.sizing import Layout, age_days, namespaces_in, project
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


def _count(flag: str) -> Any:
    def parse(value: str) -> int:
        if not value.isdigit():
            raise argparse.ArgumentTypeError(f"{flag} takes a number >= 0, got {value!r}")
        return int(value)
    return parse


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
    parser.add_argument("--replicas", type=_count("--replicas"), help="number_of_replicas of new indices (default 1)")
    parser.add_argument("--skip-retention", action="store_true",
                        help="install no ISM retention policy (a cluster without the ISM plugin); old indices stay")
    parser.add_argument("--ism-priority", type=_count("--ism-priority"), metavar="N",
                        help="ism_template priority of the retention policies (default: 100, or the next free one "
                        "when another policy's template overlaps at 100)")
    parser.add_argument("--namespaces", type=_count("--namespaces"), metavar="N",
                        help="namespaces expected to log, for the shard sizing check (default: counted from "
                        "existing indices)")
    parser.add_argument("--assets-dir", type=Path,
                        help="folder holding index_templates/ and dashboards/ (default: found next to servelog)")
    parser.add_argument("--print-discover-url", action="store_true",
                        help="print a Discover link for --serving [--model-version] [--component] and exit")
    parser.add_argument("--serving", help="with --print-discover-url: the serving (InferenceService) name")
    parser.add_argument("--model-version", help="with --print-discover-url: the model version")
    parser.add_argument("--component", help="with --print-discover-url: predictor, transformer, ...")
    parser.add_argument("--since", default="now-24h", help="with --print-discover-url: start of the time range")
    parser.add_argument("--legacy-discover-url", action="store_true",
                        help="with --print-discover-url: the form OpenSearch Dashboards before 2.10 reads")


def run(args: argparse.Namespace) -> int:
    if args.print_discover_url:
        if not args.dashboards_url or not args.serving:
            raise SetupError("--print-discover-url needs --dashboards-url and --serving")
        print(discover_url(args.dashboards_url, serving=args.serving, model_version=args.model_version,
                           component=args.component, since=args.since, legacy=args.legacy_discover_url))
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
        shown = (f" (GET / reports {installer.reported_version}: compatibility.override_main_response_version)"
                 if installer.reported_version else "")
        print(f"OpenSearch {version} at {redact(settings.opensearch.url)}{shown}")
        for warning in version_warnings(version):
            print(f"warning: {warning}", file=sys.stderr)
        retention = {policy_id: getattr(args, flag) for flag, (policy_id, _) in _RETENTION.items()}
        policies = [] if args.skip_retention else assets.load_ism_policies(root)
        templates = assets.load_templates(root)
        steps = installer.plan(templates, policies, replicas=args.replicas, retention=retention,
                               ism_priority=args.ism_priority)
        if args.skip_retention:
            print("warning: --skip-retention: no ISM policy installed, so nothing deletes servelog's daily indices",
                  file=sys.stderr)
        for note in installer.notes:
            print(f"note: {note}", file=sys.stderr)
        for warning in installer.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        _check_sizing(installer, settings, args, templates, steps)
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


def _check_sizing(installer: Installer, settings: Settings, args: argparse.Namespace,
                  templates: Sequence[assets.Template], steps: Sequence[Step]) -> None:
    """Print the shard arithmetic of the daily indices; warn near the cluster's shard limit."""
    try:
        cluster = installer.shard_facts()
    except SinkError as exc:
        print(f"note: shard sizing not checked ({exc})", file=sys.stderr)
        return
    index_settings: dict[str, Any] = next((t.body["template"]["settings"].get("index", {}) for t in templates
                           if t.name == "servelog-logs-settings"), {})
    ages = {s.name: retention_of(s.body) for s in steps if s.kind == "ism_policy"}
    template = settings.opensearch.index
    seen = namespaces_in(installer.log_index_names(), template)
    namespaces = args.namespaces if args.namespaces is not None else max(len(seen), 1)
    layout = Layout(namespaces=namespaces, per_namespace="{namespace}" in template,
                    shards=int(index_settings.get("number_of_shards", 1)),
                    replicas=args.replicas if args.replicas is not None else int(index_settings.get("number_of_replicas", 1)),
                    log_days=age_days(ages.get("servelog-logs-retention")),
                    deadletter_days=age_days(ages.get("servelog-deadletter-retention")),
                    events_days=age_days(ages.get("servelog-events-retention")))
    projection = project(layout, cluster)
    counted = "" if args.namespaces is not None else f" ({len(seen)} seen in existing indices; set --namespaces)"
    print(f"sizing: {projection.arithmetic}{counted}")
    if projection.warning:
        print(f"warning: {projection.warning}", file=sys.stderr)


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
