"""Pure classification of lines for grouping Python tracebacks into one document.

KServe model servers are Python: an exception in a predictor arrives as

    Traceback (most recent call last):
      File "/app/model.py", line 42, in predict
        return self.model(x)
               ^^^^^^^^^^^^^
    ValueError: bad input

possibly chained (``During handling of the above exception, another exception occurred:`` /
``The above exception was the direct cause of the following exception:``, each surrounded by blank
lines). These predicates and :func:`advance` (the grouping state machine) are pure; the assembler
holds the open group.
"""

from __future__ import annotations

from typing import Any

TRACEBACK_START = "Traceback (most recent call last):"
_CHAIN_MARKERS = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)


def starts_traceback(message: str) -> bool:
    """The line opens a Python traceback."""
    return message.startswith(TRACEBACK_START)


def continues_traceback(message: str) -> bool:
    """Inside an open traceback: indented frame/code/caret lines and nested ``Traceback`` headers."""
    return message[:1] in (" ", "\t") or message.startswith(TRACEBACK_START)


def chains_traceback(message: str) -> bool:
    """The line links two tracebacks of one chained exception."""
    return message.startswith(_CHAIN_MARKERS)


# grouping states: no group open; inside the frames; after the exception line; after a chain marker
NONE, FRAMES, AFTER_EXC, CHAIN = 0, 1, 2, 3


def advance(state: int, message: str) -> int | None:
    """The group's next state once ``message`` joins it, or None when ``message`` is not part of it."""
    if state == FRAMES:
        if not continues_traceback(message) and message:
            return AFTER_EXC  # the exception line closes the frames
        return FRAMES
    if state == AFTER_EXC:
        if message == "":
            return AFTER_EXC  # maybe a chained traceback follows; trailing blanks are split off on close
        if chains_traceback(message):
            return CHAIN
        return AFTER_EXC if message[:1] in (" ", "\t") else None  # indented notes / multi-line messages
    # CHAIN: blank lines, then the next Traceback header
    if message == "":
        return CHAIN
    if starts_traceback(message):
        return FRAMES
    return None


class Line:
    """A complete logical line that takes part in grouping, awaiting encoding."""

    __slots__ = ("flags", "message", "ordinal", "stream", "ts", "ts_ns")

    def __init__(self, ts_ns: int, ts: str, ordinal: int, stream: str | None, message: str,
                 flags: dict[str, Any] | None) -> None:
        self.ts_ns, self.ts, self.ordinal, self.stream, self.message, self.flags = ts_ns, ts, ordinal, stream, message, flags


class TracebackGroup:
    """The traceback being grouped (at most one per stream assembler): its lines, state and mark.

    ``mark`` is the owner's resume mark at the group's first line (opaque here).
    """

    __slots__ = ("lines", "mark", "state")

    def __init__(self) -> None:
        self.lines: list[Line] = []
        self.state = NONE
        self.mark: Any = None

    def start(self, line: Line, mark: Any) -> None:
        self.lines, self.state, self.mark = [line], FRAMES, mark

    def offer(self, line: Line) -> bool:
        """Add ``line`` if it continues the group (same stream, the state machine agrees)."""
        state = advance(self.state, line.message) if line.stream == self.lines[0].stream else None
        if state is None:
            return False
        self.state = state
        self.lines.append(line)
        return True

    def take(self) -> tuple[list[Line], list[Line]]:
        """Close the group: its lines, and the blank lines after its last exception line (no part of it)."""
        lines, trailing = self.lines, []
        while len(lines) > 1 and lines[-1].message == "" and self.state in (AFTER_EXC, CHAIN):
            trailing.append(lines.pop())
        trailing.reverse()
        self.lines, self.state, self.mark = [], NONE, None
        return lines, trailing
