"""The ``servelog`` command line: ``run``, ``setup``, ``status``, ``history``, ``logs``, ``events``, ``demo``, ...

Flags only override settings (see :mod:`collector.settings` for file and environment); there is no
flag for a secret, by design: argv is visible to every process on the node. ``--config`` is accepted
before or after the subcommand (``servelog --config x.yaml run`` and ``servelog run --config x.yaml``).

Output into a closed pipe (``servelog logs ... | head``) ends the command quietly with the status a
process killed by SIGPIPE has (141), as other command-line tools end.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

import orjson

from collector import __version__
from collector.errors import CollectorError, ConfigError
from collector.settings import Settings, load_settings, settings_reference

_RUN_EPILOG = """\
Every setting can also be given in the YAML file (--config / SERVELOG_CONFIG) or as an environment
variable SERVELOG_<KEY> with "__" between nested keys, e.g. SERVELOG_OPENSEARCH__URL,
SERVELOG_OPENSEARCH__PASSWORD_FILE. Precedence: flags > environment > file > defaults.
Secrets (opensearch.password, opensearch.password_file) are never accepted as flags.
`servelog config-reference` prints every setting with its default.

exit status:
  0  every line read was delivered: created, already present, or dead-lettered (a per-document
     refusal); also after a SIGTERM whose drain acknowledged everything
  1  an unexpected failure, or a --once run that found input it may not read (input_unreadable)
  2  invalid settings, every problem listed (including a log root that does not exist, a state
     directory that cannot be written, a telemetry port that is taken)
  3  not everything read was delivered: --once made no progress for opensearch.once_give_up_seconds
     (default 300 s: an unreachable host, refused credentials, a TLS failure, a URL that is not
     OpenSearch, a block or a full cluster), or a shutdown left batches unacknowledged (the drain
     timed out, or a second SIGINT/SIGTERM stopped at once). Checkpoints hold only acknowledged
     positions: a rerun resumes where delivery stopped, and its replays are harmless 409s.
"""

_CONFIG_HELP = "YAML settings file (or SERVELOG_CONFIG)"
# Subcommands that read settings, and so take --config after their name too.
_READS_SETTINGS = {"run", "setup", "logs", "events", "status", "history"}


def _add_config(parser: argparse.ArgumentParser) -> None:
    """``--config`` on a subcommand; SUPPRESS keeps the value given before the subcommand when absent."""
    if not any("--config" in action.option_strings for action in parser._actions):
        parser.add_argument("--config", type=Path, default=argparse.SUPPRESS, help=_CONFIG_HELP)


def _add_run(sub: Any) -> None:
    run = sub.add_parser(
        "run", help="collect pod logs and index them", epilog=_RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Tail kubelet pod logs, enrich them with model metadata and index them into OpenSearch "
        "exactly once (at-least-once delivery + deterministic ids with create).",
    )
    add_run_arguments(run)


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    """The flags of ``run``, shared by the commands that take the same settings (``servelog events``)."""
    run.add_argument("--log-root", type=Path, help="kubelet pod log directory (default /var/log/pods)")
    run.add_argument("--opensearch-url", help="OpenSearch URL (default http://localhost:9200)")
    run.add_argument("--state-dir", type=Path, help="where checkpoints and dead-letter files live (default /var/lib/servelog)")
    run.add_argument("--node-name", help="this node's name (default: $NODE_NAME, else the host name)")
    run.add_argument("--once", action="store_true", default=None,
                     help="index what exists now, flush, save checkpoints, print a summary and exit (backfill)")
    run.add_argument("--output", choices=["opensearch", "stdout"],
                     help="stdout: print documents as NDJSON {index,id,source} instead of sending (dry run; "
                     "checkpoints are not saved)")
    run.add_argument("--source", choices=["files", "kubernetes"], help="read kubelet files (default) or stream pods/log")
    run.add_argument("--metadata-file", type=Path, help="static pod metadata (a PodList in YAML or JSON)")
    run.add_argument("--listen", help="host:port for /metrics, /healthz, /readyz ('' disables; default 127.0.0.1:9880)")
    run.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="collector log level")
    _add_config(run)


def run_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Settings overrides from the flags of :func:`add_run_arguments`."""
    overrides: dict[str, Any] = {}
    for flag, key in (("log_root", "log_root"), ("state_dir", "state_dir"), ("node_name", "node_name"),
                      ("once", "once"), ("output", "output"), ("source", "source"),
                      ("metadata_file", "metadata_file")):
        value = getattr(args, flag, None)
        if value is not None:
            overrides[key] = value
    if args.opensearch_url is not None:
        overrides.setdefault("opensearch", {})["url"] = args.opensearch_url
    if args.listen is not None:
        overrides.setdefault("telemetry", {})["listen"] = args.listen
    if args.log_level is not None:
        overrides.setdefault("telemetry", {})["log_level"] = args.log_level
    return overrides


def _command_run(args: argparse.Namespace) -> int:
    settings = load_settings(config_file=args.config, overrides=run_overrides(args), for_run=True)
    from collector.runner import run_collector  # noqa: PLC0415 - keeps --help fast

    return run_collector(settings)


# Subcommands contributed by other packages: name -> module with add_arguments(parser) and run(args).
_PLUGGABLE = {
    "setup": ("collector.setup.command", "install index templates, ISM policies and Dashboards saved objects"),
    "demo": ("collector.demo.command", "write realistic KServe pod logs for a local demo"),
    "status": ("collector.query.status", "a deployment's status, condition, instances and last failure, from the cluster"),
    "history": ("collector.query.history", "a deployment's history: status transitions and events, newest first"),
    "logs": ("collector.query.command", "a deployment's logs: from its running components, or indexed in OpenSearch"),
    "events": ("collector.sources.history.command",
               "index deployment history: events, container failures, InferenceService status"),
}


def _chosen_command(argv: list[str]) -> str | None:
    """The subcommand named on the command line (the first argument that is one), if any."""
    names = {"run", "config-reference", *_PLUGGABLE}
    return next((arg for arg in argv if arg in names), None)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; ``only``: the pluggable commands other than that one are left out
    (not imported: ``servelog run`` starts without the query, setup and demo modules)."""
    parser = argparse.ArgumentParser(
        prog="servelog",
        description="servelog: exactly-once log pipeline for ML model serving pods into OpenSearch.",
    )
    parser.add_argument("--version", action="version", version=f"servelog {__version__}")
    parser.add_argument("--config", type=Path, default=None, help=_CONFIG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_run(sub)
    for name, (module_name, help_text) in _PLUGGABLE.items():
        if only is not None and name != only:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # that part of servelog is not installed in this build
            raise
        command = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command)
        if name in _READS_SETTINGS:
            _add_config(command)
        command.set_defaults(handler=module.run)
    sub.add_parser("config-reference", help="print every setting, its environment variable and default")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(only=_chosen_command(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    try:
        status = _dispatch(parser, args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except ConfigError as exc:
        sys.stderr.write(f"servelog: {exc}\n")
        return 2
    except CollectorError as exc:
        sys.stderr.write(f"servelog: {exc}\n")
        return 1
    except BrokenPipeError:
        return _closed_pipe()
    return status


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.command == "run":
        return _command_run(args)
    if args.command == "config-reference":
        sys.stdout.write(settings_reference())
        return 0
    if getattr(args, "handler", None) is not None:
        return int(args.handler(args))
    parser.print_help()
    return 2


def _closed_pipe() -> int:
    """The reader of stdout went away (``| head``): stop quietly, with SIGPIPE's conventional status."""
    # Python would report the unflushed rest at exit: point stdout at /dev/null first.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + signal.SIGPIPE


def print_summary(summary: dict[str, Any], *, reason: str | None = None) -> None:
    """The run's summary: a human line and a JSON line, on stderr (stdout may carry data).

    A dry run (``--output stdout``) says what it did: documents *printed*, nothing sent. ``reason``
    (why not everything was delivered) follows on its own line.
    """
    head = "servelog: read {lines_read} lines -> {documents} documents: ".format(**summary)
    if summary.get("output") == "stdout":
        outcome = "{printed} printed to stdout (dry run: nothing sent to OpenSearch)".format(**summary)
    else:
        outcome = "{indexed} indexed, {already_present} already present, {dead_lettered} dead-lettered".format(**summary)
    sys.stderr.write(head + outcome + "\n")
    if summary.get("left_for_next_run"):
        sys.stderr.write("servelog: {left_for_next_run} line(s) of live files left for the next run "
                         "(still being written, or no timestamp yet in their stream)\n".format(**summary))
    if reason is not None:
        sys.stderr.write(f"servelog: not everything was delivered: {reason}\n")
    sys.stderr.write(orjson.dumps({"summary": summary}).decode() + "\n")


__all__ = ["Settings", "build_parser", "main", "print_summary"]
