"""Terminal manners of the reading commands (``status``, ``history``, ``logs``): exit statuses, colour, failures.

One table of exit statuses for the three, documented in the README and in each command's ``--help``:

====  =====================================================================================================
0     the question was answered (whatever the answer: a FAILED deployment, no line matching the filters)
1     an unexpected failure
2     invalid settings or usage (a bad flag or time, a name that cannot be a deployment's)
3     no cluster or OpenSearch to ask: no usable Kubernetes configuration, the API server or OpenSearch
      unreachable, timing out or failing (5xx)
4     refused: the API server or OpenSearch refused the request (401/403: credentials or permissions,
      e.g. a Role without ``pods/log``; another 4xx)
5     no such deployment: nothing of that name in the namespace (status), no history recorded for it at
      all (history), no container of it to read (``logs --source kubernetes``)
6     ambiguous: without ``-n``, OpenSearch holds documents of deployments of that name in several
      namespaces (history, logs from OpenSearch): the namespaces are listed, give one with ``-n``
====  =====================================================================================================

The reason goes to stderr, one line, prefixed ``servelog <command>:``. Colour only on a terminal,
never with ``NO_COLOR`` set (https://no-color.org) or ``TERM=dumb``.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from collector.errors import CollectorError, ConfigError, KubeRejected, KubeUnavailable, SinkRejected, SinkUnavailable

ANSWERED, FAILED, USAGE, UNREACHABLE, REFUSED, NOT_FOUND, AMBIGUOUS = 0, 1, 2, 3, 4, 5, 6

EXIT_STATUS_HELP = """\
exit status:
  0  the question was answered (also when the answer is FAILED, or no line matched)
  1  an unexpected failure
  2  invalid settings or usage
  3  no cluster or OpenSearch to ask: no usable Kubernetes configuration, unreachable, timing out, 5xx
  4  refused: credentials or permissions (401/403), another 4xx
  5  no such deployment (nothing of that name in the namespace / no history / nothing to read)
  6  ambiguous: without -n, that name has documents in several namespaces (listed): give -n
"""


class NotFound(CollectorError):
    """Nothing of that deployment could be found where it was looked for (exit status 5)."""


class Ambiguous(CollectorError):
    """Without a namespace, the deployment's documents are in several namespaces (exit status 6)."""


class NoCluster(CollectorError):
    """No usable Kubernetes configuration (no kubeconfig, not in a cluster): exit status 3."""


def exit_status(exc: BaseException) -> int:
    """The exit status for a failure (the table in the module docstring)."""
    if isinstance(exc, NotFound):
        return NOT_FOUND
    if isinstance(exc, Ambiguous):
        return AMBIGUOUS
    if isinstance(exc, ConfigError | ValueError):
        return USAGE
    if isinstance(exc, NoCluster | KubeUnavailable | SinkUnavailable):
        return UNREACHABLE
    if isinstance(exc, KubeRejected | SinkRejected):
        return REFUSED
    return FAILED


def explain(exc: BaseException) -> str:
    """The stderr line for a failure: what happened and, where it helps, what to check."""
    text = " ".join(str(exc).split()) if not isinstance(exc, ConfigError) else str(exc)
    if isinstance(exc, KubeRejected) and exc.status in (401, 403):
        return f"{text} (check the kubeconfig's credentials and that its user may get/list pods, events, " \
               "inferenceservices and pods/log in that namespace)"
    if isinstance(exc, KubeUnavailable):
        unreachable = "API server unreachable: "
        if text.startswith(unreachable):
            return f"the Kubernetes API cannot be reached: {text.removeprefix(unreachable)}"
        return f"the Kubernetes API could not answer: {text}"
    return text


def fail(command: str, exc: BaseException, *, stream: TextIO | None = None) -> int:
    """Report a failure on stderr; its exit status."""
    (stream or sys.stderr).write(f"servelog {command}: {explain(exc)}\n")
    return exit_status(exc)


def note(command: str, text: str, *, stream: TextIO | None = None) -> None:
    """Something the user should know that is not the answer (where logs are read from, what could not be read)."""
    (stream or sys.stderr).write(f"servelog {command}: {text}\n")


def use_color(stream: TextIO | None = None) -> bool:
    """Colour for ``stream`` (stdout): a terminal, no ``NO_COLOR``, not ``TERM=dumb``."""
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(callable(isatty) and isatty())
