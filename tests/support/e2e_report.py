"""``python -m tests.support.e2e_report FILE``: fail unless every selected OpenSearch version was really tested.

``.ci/run`` runs it after the test suite when the e2e suite is required (``SERVELOG_E2E_REQUIRE=1``):
the suite cannot then pass with the real-cluster tests deselected, skipped or never collected. The
file is written by :func:`tests.support.e2e_fixtures.pytest_sessionfinish`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def problems(report: dict[str, Any] | None) -> list[str]:
    """What is wrong with a run's report (empty: every version had passing tests and none skipped)."""
    if not report:
        return ["no report: the real-cluster tests did not run (was tests/ collected?)"]
    found = []
    if report.get("selection") not in ("local", "external", "container"):
        found.append(f"the suite ran against {report.get('selection')!r}, not a real node")
    for version in report.get("versions", []):
        outcomes = report.get("outcomes", {}).get(version, {})
        if not outcomes.get("passed"):
            found.append(f"OpenSearch {version}: no real-cluster test passed ({outcomes or 'none ran'})")
    return found


def main(argv: list[str]) -> int:
    path = Path(argv[1])
    text = path.read_text() if path.exists() else ""
    report = json.loads(text) if text.strip() else None
    found = problems(report)
    for problem in found:
        print(f"error: {problem}", file=sys.stderr)
    if not found:
        print(", ".join(f"{v}: {dict(o)}" for v, o in report["outcomes"].items()))  # type: ignore[index]
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
