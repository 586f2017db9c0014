"""docker-compose.yml, checked offline (there is no Docker engine here): services, pins, exposure, commands.

The commands are checked twice: against ``KNOWN_FLAGS`` below (always), and against the real CLI parser
when ``collector.cli.build_parser()`` exists, which also keeps ``KNOWN_FLAGS`` honest.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import yaml

from collector.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
OURS = ("setup", "demo", "collector", "events")

# The subcommands and flags the compose file may use: value = whether the flag takes an argument.
KNOWN_FLAGS: dict[str, dict[str, bool]] = {
    "run": {"--log-root": True, "--opensearch-url": True, "--state-dir": True, "--node-name": True, "--once": False,
            "--output": True, "--metadata-file": True, "--source": True, "--listen": True},
    "setup": {"--opensearch-url": True, "--dashboards-url": True, "--tenant": True},
    "demo": {"--log-root": True, "--metadata-file": True, "--duration": True, "--once": False, "--rate": True,
             "--seed": True, "--history-dir": True},
    "events": {"--opensearch-url": True, "--state-dir": True, "--once": False, "--listen": True, "--from-files": True,
               "--output": True},
}


def split_command(argv: list[str]) -> tuple[str, dict[str, str | None]]:
    """(subcommand, {flag: value}) using KNOWN_FLAGS to know which flags take a value."""
    subcommand, rest = argv[0], argv[1:]
    assert subcommand in KNOWN_FLAGS, f"unknown subcommand {subcommand}"
    flags: dict[str, str | None] = {}
    i = 0
    while i < len(rest):
        flag = rest[i]
        assert flag in KNOWN_FLAGS[subcommand], f"{subcommand} has no flag {flag}"
        takes_value = KNOWN_FLAGS[subcommand][flag]
        flags[flag] = rest[i + 1] if takes_value else None
        i += 2 if takes_value else 1
    return subcommand, flags


def real_subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_the_six_services_exist() -> None:
    assert set(SERVICES) == {"opensearch", "dashboards", "setup", "demo", "collector", "events"}


def test_images_are_pinned_and_opensearch_matches_dashboards() -> None:
    for name, service in SERVICES.items():
        image = service["image"]
        assert not image.endswith(":latest") and ":" in image, f"{name}: pin the image"
        if "build" not in service:
            assert re.search(r":\d+\.\d+\.\d+$", image), f"{name}: pin an exact version"
        else:
            assert service["pull_policy"] == "build", f"{name}: a local image is built, never pulled"
    assert SERVICES["opensearch"]["image"] == "opensearchproject/opensearch:2.19.1"
    assert SERVICES["dashboards"]["image"] == "opensearchproject/opensearch-dashboards:2.19.1"


def test_every_published_port_is_bound_to_loopback() -> None:
    published = [(name, port) for name, service in SERVICES.items() for port in service.get("ports", [])]
    assert published
    for name, port in published:
        assert isinstance(port, str) and port.startswith("127.0.0.1:"), f"{name}: {port} must bind 127.0.0.1"


def test_build_contexts_and_referenced_files_exist() -> None:
    for name in OURS:
        context = ROOT / SERVICES[name]["build"]
        assert (context / "Dockerfile").is_file() and (context / ".dockerignore").is_file(), name
    named = set(COMPOSE.get("volumes") or {})
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: {source}"
            else:
                assert source in named, f"{name}: volume {source} is not declared"


def test_commands_use_known_subcommands_and_flags() -> None:
    assert split_command(SERVICES["setup"]["command"]) == ("setup", {
        "--opensearch-url": "http://opensearch:9200", "--dashboards-url": "http://dashboards:5601"})
    subcommand, demo = split_command(SERVICES["demo"]["command"])
    assert subcommand == "demo" and "--once" not in demo, "the demo keeps writing while the stack runs"
    subcommand, run = split_command(SERVICES["collector"]["command"])
    assert subcommand == "run"
    assert run["--log-root"] == demo["--log-root"] and run["--metadata-file"] == demo["--metadata-file"]
    assert run["--opensearch-url"] == "http://opensearch:9200"
    subcommand, events = split_command(SERVICES["events"]["command"])
    assert subcommand == "events" and "--once" not in events, "the history is indexed while the demo tells it"
    assert events["--from-files"] == demo["--history-dir"], "the history the demo writes is the history indexed"
    assert events["--opensearch-url"] == "http://opensearch:9200"


def test_known_flags_exist_in_the_real_cli_and_the_commands_parse() -> None:
    parsers = real_subparsers()
    for subcommand, flags in KNOWN_FLAGS.items():
        assert subcommand in parsers, f"the CLI has no {subcommand} subcommand"
        real = {option: action.nargs != 0 for action in parsers[subcommand]._actions for option in action.option_strings}
        for flag, takes_value in flags.items():
            assert flag in real, f"servelog {subcommand} has no {flag}: update KNOWN_FLAGS or the compose file"
            assert real[flag] == takes_value, f"servelog {subcommand} {flag}: takes a value? {real[flag]}"
    parser = build_parser()
    for name in OURS:
        args = parser.parse_args(SERVICES[name]["command"])
        assert args.command == SERVICES[name]["command"][0]


def test_startup_order_waits_for_health_and_for_setup_to_succeed() -> None:
    def conditions(name: str) -> dict[str, str]:
        return {dep: spec["condition"] for dep, spec in SERVICES[name].get("depends_on", {}).items()}

    assert conditions("dashboards") == {"opensearch": "service_healthy"}
    assert conditions("setup") == {"opensearch": "service_healthy", "dashboards": "service_healthy"}
    assert conditions("collector") == {"setup": "service_completed_successfully", "demo": "service_started"}
    assert conditions("events") == {"setup": "service_completed_successfully", "demo": "service_started"}
    for name in SERVICES:
        for dep, condition in conditions(name).items():
            if condition == "service_healthy":
                assert SERVICES[dep]["healthcheck"]["test"], f"{dep} needs a healthcheck"
    assert SERVICES["setup"]["restart"] == "on-failure", "retried until OpenSearch accepts it, then done"


def test_one_shot_and_demo_services_turn_off_the_image_healthcheck() -> None:
    # The image's HEALTHCHECK asks the collector's /healthz; setup and demo serve none.
    for name in ("setup", "demo"):
        assert SERVICES[name]["healthcheck"] == {"disable": True}
    assert "healthcheck" not in SERVICES["collector"]
    assert "healthcheck" not in SERVICES["events"], "the image's check finds its /healthz on 9880 in its container"
    _, events = split_command(SERVICES["events"]["command"])
    assert events["--listen"] == "0.0.0.0:9880"


def test_demo_logs_are_shared_read_only_with_the_collector_and_state_persists() -> None:
    def mounts(name: str) -> dict[str, tuple[str, str]]:
        found = {}
        for volume in SERVICES[name]["volumes"]:
            source, target, *mode = volume.split(":")
            found[source] = (target, mode[0] if mode else "rw")
        return found

    demo, collector = mounts("demo"), mounts("collector")
    shared = set(demo) & set(collector)
    assert len(shared) == 1
    (volume,) = shared
    assert demo[volume][1] == "rw" and collector[volume][1] == "ro"
    _, run = split_command(SERVICES["collector"]["command"])
    assert Path(run["--log-root"] or "").is_relative_to(collector[volume][0])
    assert Path(run["--state-dir"] or "") == Path(collector["collector-state"][0])
    history = mounts("events")
    assert history[volume] == (demo[volume][0], "ro"), "the history files are read, never written, by the indexer"
    _, events = split_command(SERVICES["events"]["command"])
    assert Path(events["--from-files"] or "").is_relative_to(history[volume][0])
    assert Path(events["--state-dir"] or "") == Path(history["events-state"][0]), "its own checkpoints, not the collector's"
    # Named volumes start as copies of the image's directories: the image must make them writable for uid 10001.
    dockerfile = (ROOT / "Dockerfile").read_text()
    for directory in (demo[volume][0], collector["collector-state"][0]):
        assert re.search(rf"mkdir -p [^\n]*{re.escape(directory)}\b", dockerfile), directory
        assert re.search(rf"chown 10001:10001 [^\n]*{re.escape(directory)}\b", dockerfile), directory


def test_our_containers_run_read_only_without_capabilities() -> None:
    for name in OURS:
        service = SERVICES[name]
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert "user" not in service or service["user"] not in {"0", "root"}, name


def test_opensearch_is_the_single_node_demo_setup() -> None:
    env = SERVICES["opensearch"]["environment"]
    assert env["discovery.type"] == "single-node"
    assert env["OPENSEARCH_JAVA_OPTS"] == "-Xms512m -Xmx512m"
    assert env["DISABLE_SECURITY_PLUGIN"] == "true", "demo only; deploy/ keeps TLS and auth"
    assert SERVICES["dashboards"]["environment"]["DISABLE_SECURITY_DASHBOARDS_PLUGIN"] == "true"
    assert SERVICES["dashboards"]["environment"]["OPENSEARCH_HOSTS"] == '["http://opensearch:9200"]'
