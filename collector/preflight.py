"""Start-time checks of what ``servelog run`` is pointed at: the log root, the state directory, the port.

Settings can be well-formed and still unusable: a log root that does not exist reads nothing and
would say "0 lines", a state directory under a regular file or on a read-only mount would never keep
a checkpoint, a busy port would end in a traceback. ``servelog run`` checks these before it starts
and reports them with every other settings problem (exit status 2). The checks create nothing: a
state directory that does not exist yet is created by the first checkpoint save, so only its
nearest existing parent is checked.

The format check of ``telemetry.listen`` (:func:`listen_format_problem`) is pure and used by the
settings model; :func:`split_listen` is the one parser of ``host:port``.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import re
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collector.settings import Settings

_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$")
_LISTEN_EXAMPLE = "e.g. 127.0.0.1:9880, 0.0.0.0:9880, [::]:9880, or '' to disable"
CHECKPOINTS_FILE = "checkpoints.json"


def split_listen(listen: str) -> tuple[str, int]:
    """``host:port`` -> (host, port); an empty host is loopback. Assumes a valid value."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def listen_format_problem(listen: str) -> str | None:
    """Why ``listen`` is not ``host:port`` (or ''), or None."""
    if listen == "":
        return None
    host, sep, port = listen.rpartition(":")
    if not sep:
        return f"expected host:port ({_LISTEN_EXAMPLE}), got {listen!r}"
    if not port.isdigit() or int(port) > 65535:
        return f"port must be a number from 0 to 65535 ({_LISTEN_EXAMPLE}), got {listen!r}"
    host = host.strip("[]") if host.startswith("[") and host.endswith("]") else host
    if host:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not _HOSTNAME.match(host):
                return f"{host!r} is neither an IP address nor a host name ({_LISTEN_EXAMPLE})"
    return None


def listen_problem(listen: str) -> str | None:
    """Why the telemetry endpoint could not listen on ``listen`` (tries to bind it), or None."""
    if not listen:
        return None
    host, port = split_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            # as http.server does: a port left in TIME_WAIT by the previous run is free
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        busy = exc.errno == errno.EADDRINUSE
        hint = " (another process listens there: choose another port, or '' to disable)" if busy else ""
        return f"telemetry.listen: cannot listen on {listen}: {reason}{hint}"
    return None


def log_root_problem(root: Path) -> str | None:
    """Why the files source could not read ``root``, or None."""
    try:
        with os.scandir(root):
            return None
    except FileNotFoundError:
        return (f"log_root: {root} does not exist (the kubelet's pod log directory: mount it, "
                "e.g. hostPath /var/log/pods, or pass --log-root)")
    except NotADirectoryError:
        return f"log_root: {root} is not a directory"
    except OSError as exc:
        return f"log_root: cannot list {root}: {exc.strerror or exc}"


def state_dir_problem(state_dir: Path) -> str | None:
    """Why checkpoints could not be saved in (or read from) ``state_dir``, or None.

    An existing directory is tried for real (a temporary file is created and removed); for one that
    does not exist yet, its nearest existing parent must be a directory this process may write.
    """
    existing = state_dir
    while not os.path.lexists(existing) and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        if existing == state_dir:
            return f"state_dir: {state_dir} is not a directory"
        return f"state_dir: {state_dir} cannot be created: {existing} is a file, not a directory"
    if existing != state_dir:
        if not os.access(existing, os.W_OK | os.X_OK, effective_ids=os.access in os.supports_effective_ids):
            return f"state_dir: {state_dir} cannot be created: {existing} is not writable"
        return None
    try:
        fd, probe = tempfile.mkstemp(prefix=".servelog-write-check-", dir=state_dir)
    except OSError as exc:
        return f"state_dir: cannot write in {state_dir}: {exc.strerror or exc} (checkpoints could not be saved)"
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    checkpoints = state_dir / CHECKPOINTS_FILE
    try:
        with open(checkpoints, "rb"):
            pass
    except FileNotFoundError:
        pass
    except OSError as exc:
        return f"state_dir: cannot read {checkpoints}: {exc.strerror or exc}"
    return None


def run_problems(settings: Settings) -> list[str]:
    """Everything ``servelog run`` with these settings could not use, as settings problems."""
    problems = []
    if settings.source == "files":
        problems.append(log_root_problem(settings.log_root))
    if settings.output == "opensearch":  # only then are checkpoints persisted
        problems.append(state_dir_problem(settings.state_dir))
    problems.append(listen_problem(settings.telemetry.listen))
    return [p for p in problems if p is not None]
