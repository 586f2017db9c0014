"""Pure classification of lines for grouping Python tracebacks into one document.

KServe model servers are Python: an exception in a predictor arrives as

    Traceback (most recent call last):
      File "/app/model.py", line 42, in predict
        return self.model(x)
               ^^^^^^^^^^^^^
    ValueError: bad input

possibly chained (``During handling of the above exception, another exception occurred:`` /
``The above exception was the direct cause of the following exception:``, each surrounded by blank
lines). The grouping state machine lives in the assembler; these predicates are its vocabulary.
"""

from __future__ import annotations

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
