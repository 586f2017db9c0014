"""Print ``requirements.lock``: the exact installed versions of servelog's runtime dependencies.

    python deploy/lock.py > requirements.lock

The lock is ``pip freeze`` narrowed to what servelog needs at run time: the ``dependencies`` of
``pyproject.toml`` and, transitively, what they require (extras and markers evaluated for this
interpreter; test tools excluded). The Dockerfile installs with it as a constraints file, so the image
carries the versions that were tested here rather than whatever is newest on the day of the build.
"""

from __future__ import annotations

import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def project_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[Requirement]:
    """The project's runtime dependencies as declared (no extras)."""
    return [Requirement(text) for text in tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]]


def requirements_of(name: str, extras: frozenset[str] = frozenset()) -> list[Requirement]:
    """What an installed distribution requires in this environment (its markers evaluated)."""
    found = []
    for text in distribution(name).requires or []:
        requirement = Requirement(text)
        if requirement.marker is None:
            found.append(requirement)
            continue
        if any(requirement.marker.evaluate({"extra": extra}) for extra in extras or {""}):
            found.append(requirement)
    return found


def closure(roots: list[Requirement]) -> dict[str, tuple[str, str]]:
    """canonical name -> (distribution name, installed version), for the roots and all they pull in."""
    seen: dict[str, tuple[str, str]] = {}
    todo = [(r.name, frozenset(r.extras)) for r in roots if r.marker is None or r.marker.evaluate()]
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        if key in seen and not extras:
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            raise SystemExit(f"{name} is required but not installed: pip install -e . first") from None
        seen[key] = (dist.metadata["Name"], dist.version)
        todo += [(r.name, frozenset(r.extras)) for r in requirements_of(name, extras) if canonicalize_name(r.name) not in seen]
    return seen


def main() -> int:
    pins = closure(project_requirements())
    sys.stdout.write("# servelog's runtime dependencies, pinned (used as pip constraints by the Dockerfile).\n"
                     "# Generated from the tested environment: python deploy/lock.py > requirements.lock\n")
    for _, (name, version) in sorted(pins.items()):
        sys.stdout.write(f"{name}=={version}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
