"""Human and JSON renderings of a deployment's state and history, pure (text in, text out).

Human output is for a terminal: aligned columns, colour only when the caller asks (``color=True``,
which the CLI sets when stdout is a terminal and ``NO_COLOR`` is unset), and a last line that says
what to do next. Colour codes are added after padding, so columns align with and without them.
JSON output is ``as_json()`` of the state or history, indented, keys in their documented order
(every key always present, ``null`` when unknown), one trailing newline: stable for scripts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from collector.deployment.history import with_count_suffix
from collector.deployment.model import ConditionStatus, DeploymentState, History, Status

_RESET = "\033[0m"
_STYLES = {"red": "\033[31m", "green": "\033[32m", "yellow": "\033[33m", "dim": "\033[2m", "bold": "\033[1m"}
STATUS_COLORS = {Status.RUNNING: "green", Status.IDLE: "green", Status.FAILED: "red", Status.STARTING: "yellow",
                 Status.UPDATING: "yellow", Status.STOPPING: "yellow", Status.STOPPED: "dim", Status.CREATED: "dim"}
CONDITION_COLORS = {ConditionStatus.TRUE: "green", ConditionStatus.FALSE: "red", ConditionStatus.UNKNOWN: "yellow"}


def _paint(text: str, style: str | None, color: bool) -> str:
    return f"{_STYLES[style]}{text}{_RESET}" if color and style else text


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, styles: Sequence[Sequence[str | None]] = (),
          color: bool = False, indent: str = "") -> list[str]:
    """Rows aligned under their headers (the last column is not padded); ``styles`` colour cells."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for index, row in enumerate([headers, *rows]):
        row_styles = (["bold"] * len(headers)) if index == 0 else (styles[index - 1] if index - 1 < len(styles) else [])
        cells = []
        for col, cell in enumerate(row):
            text = str(cell) if col == len(row) - 1 else str(cell).ljust(widths[col])
            cells.append(_paint(text, row_styles[col] if col < len(row_styles) else None, color))
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


def _fields(pairs: Sequence[tuple[str, str, str | None]], color: bool) -> list[str]:
    width = max(len(label) for label, _, _ in pairs)
    return [f"{label.ljust(width)}  {_paint(value, style, color)}" for label, value, style in pairs]


def _said(message: str, reason: str) -> bool:
    """The condition's reason already carries the failure's message (or the message the reason)."""
    head = " ".join(message.split())[:60].rstrip(". ")
    return head in reason or reason in message


def state_text(state: DeploymentState, *, color: bool = False) -> str:
    """``servelog status`` for a human: status, condition, model, instances, last failure, next step."""
    where = f" (namespace {state.namespace})" if state.namespace else ""
    condition = state.condition
    model = state.model_name or "unknown"
    if state.model_version:
        model += f", version {state.model_version}"
    pairs: list[tuple[str, str, str | None]] = [
        ("status", str(state.status), STATUS_COLORS.get(state.status)),
        ("condition", f"{condition.type} {condition.status}: {condition.reason}", CONDITION_COLORS.get(condition.status)),
        ("model", model, None),
    ]
    failure = state.last_failure
    if failure is not None:
        where_failed = "/".join(x for x in (failure.pod, failure.container) if x) or failure.component or "deployment"
        what = failure.reason + (f" (exit {failure.exit_code})" if failure.exit_code is not None else "")
        pairs.append(("last failure", f"{failure.time or 'time unknown'}  {where_failed}: {what}", "red"))
    lines = [_paint(state.serving_name or "(unnamed)", "bold", color) + where, *_fields(pairs, color)]
    if failure is not None and failure.last_lines:
        lines.append("  last lines it printed:")
        lines.extend(f"    {line}" for line in failure.last_lines)
    elif failure is not None and failure.message and not _said(failure.message, condition.reason):
        lines.append(f"  {failure.message.splitlines()[-1]}")
    if state.components:
        rows = [[c.name, str(c.running), str(c.desired), "yes" if c.ready else "no"] for c in state.components]
        styles = [[None, None, None, "green" if c.ready else "red"] for c in state.components]
        lines.append("")
        lines.extend(table(["COMPONENT", "RUNNING", "DESIRED", "READY"], rows, styles=styles, color=color))
    if state.next_step:
        lines.extend(["", _paint("next: ", "bold", color) + state.next_step])
    return "\n".join(lines) + "\n"


def state_json(state: DeploymentState) -> str:
    """``servelog status --output json``: exactly the documented keys."""
    return json.dumps(state.as_json(), indent=2, ensure_ascii=False) + "\n"


def _short_time(text: str) -> str:
    """``2026-11-24T09:16:02.123456789Z`` -> ``2026-11-24 09:16:02`` (UTC, to the second)."""
    return text[:19].replace("T", " ") if len(text) >= 19 else text


def history_text(history: History, *, color: bool = False, limit: int | None = None, empty: str | None = None) -> str:
    """``servelog history`` for a human: the status transitions, then the life, newest first.

    ``empty`` is what to say when there is no entry (the filters matched nothing).
    """
    where = f" (namespace {history.namespace})" if history.namespace else ""
    lines = [_paint(history.serving_name or "(unnamed)", "bold", color) + where]
    if not history.entries:
        return "\n".join([*lines, empty or "no history recorded for this deployment (is the history collector running?)"]) + "\n"
    if history.transitions:
        rows = [[_short_time(t.time), str(t.status), t.message] for t in history.transitions]
        styles = [[None, STATUS_COLORS.get(t.status), None] for t in history.transitions]
        lines.extend(["", *table(["TIME (UTC)", "STATUS", "MESSAGE"], rows, styles=styles, color=color)])
    entries = history.entries[:limit] if limit else history.entries
    rows = [[_short_time(e.time), e.model_version or "-", e.component or "-", e.container or "-", e.what,
             with_count_suffix(e)] for e in entries]
    styles = [[None, None, None, None, "red" if e.type == "Warning" else None, None] for e in entries]
    lines.extend(["", *table(["TIME (UTC)", "VERSION", "COMPONENT", "CONTAINER", "WHAT", "MESSAGE"], rows,
                             styles=styles, color=color)])
    if limit and len(history.entries) > limit:
        lines.append(f"... {len(history.entries) - limit} older entries (--output json shows all)")
    return "\n".join(lines) + "\n"


def history_json(history: History) -> str:
    """``servelog history --output json``: transitions and entries, newest first."""
    return json.dumps(history.as_json(), indent=2, ensure_ascii=False) + "\n"
