"""The compiled fast path (``collector._native``, the Rust crate in ``native/``), chosen by ``pipeline.native``.

``auto`` uses it when it was built (``pip install`` with a Rust toolchain), ``on`` requires it (a
start without it fails, saying why), ``off`` keeps the pure-Python reference path. It encodes runs
of plain CRI lines exactly as :class:`~collector.transforms.assembler.LineAssembler` would and stops
at the first line it cannot decide the same way; the assembler takes that line on the reference
path (see ``native/src/lib.rs`` and the property test ``tests/unit/test_native_equivalence.py``).

The mode of an assembler built without settings (tests, tools) is ``SERVELOG_PIPELINE__NATIVE``,
the same variable as the setting, else ``auto``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Literal

Mode = Literal["auto", "on", "off"]
EncodeRun = Callable[..., tuple[Any, ...]]
MODES: tuple[Mode, ...] = ("auto", "on", "off")

try:
    from collector import _native  # type: ignore[attr-defined]
except ImportError as exc:  # not built: no Rust toolchain at install time
    _native = None
    _WHY = f"collector._native is not built ({exc}); install with a Rust toolchain (cargo) to build it"
else:
    _WHY = ""


class NativeUnavailable(RuntimeError):
    """``pipeline.native: on`` without the compiled extension."""


def available() -> bool:
    """The extension was built and imports."""
    return _native is not None


def why_unavailable() -> str:
    return _WHY


def default_mode() -> Mode:
    """The mode when no settings say: ``SERVELOG_PIPELINE__NATIVE`` or ``auto``."""
    value = os.environ.get("SERVELOG_PIPELINE__NATIVE", "auto").strip().lower()
    for mode in MODES:
        if value == mode:
            return mode
    return "auto"


def resolve(mode: str) -> EncodeRun | None:
    """The encoder for ``mode`` (None: the reference path); ``on`` without the extension raises."""
    if mode == "off":
        return None
    if _native is None:
        if mode == "on":
            raise NativeUnavailable(f"pipeline.native is on but {_WHY}")
        return None
    encode_run: EncodeRun = _native.encode_run
    return encode_run


def describe(mode: str) -> str:
    """What ``mode`` means on this install, for the start log line: ``on``, ``off`` or ``off (not built)``."""
    if mode == "off":
        return "off"
    return "on" if _native is not None else "off (not built)"
