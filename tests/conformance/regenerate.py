"""Rewrite the golden files of the conformance cases from what servelog produces now.

    python -m tests.conformance.regenerate              # every case's expected.ndjson
    python -m tests.conformance.regenerate CASE ...     # only these
    python -m tests.conformance.regenerate --kubelet    # also re-record kubelet.json (needs Go)

The test never rewrites anything: it compares. Review the diff of a regenerated file line by line
against the case's description before committing it: a golden file is a claim about the format.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from tests.conformance.driver import all_cases, encode_expected, run_case

KUBELET_ORACLE = Path(__file__).parent / "kubelet"


def record_kubelet(stream: bytes, target: Path) -> None:
    """Run the kubelet's reader over the stream's bytes (one file) and store what it printed."""
    scratch = target.parent / ".kubelet-input.log"
    scratch.write_bytes(stream)
    try:
        done = subprocess.run(["go", "run", ".", str(scratch.resolve())], cwd=KUBELET_ORACLE, capture_output=True,
                              check=True, timeout=600)
    finally:
        scratch.unlink()
    target.write_bytes(done.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="*", help="case names (default: all)")
    parser.add_argument("--kubelet", action="store_true", help="re-record kubelet.json with the Go oracle")
    args = parser.parse_args(argv)
    cases = [c for c in all_cases() if not args.cases or c.name in args.cases]
    missing = set(args.cases) - {c.name for c in cases}
    if missing:
        print(f"no such case: {', '.join(sorted(missing))}", file=sys.stderr)
        return 2
    for case in cases:
        case.expected_path.write_bytes(encode_expected(run_case(case)))
        if args.kubelet:
            record_kubelet(case.stream_bytes(), case.kubelet_path)
        print(f"{case.name}: written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
