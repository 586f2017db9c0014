"""Finding and loading the shipped assets (``index_templates/``, ``dashboards/``).

Looked up in ``$SERVELOG_ASSETS_DIR``, then next to the package (a source checkout or editable
install), then ``/usr/share/servelog`` (where the container image puts them).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collector.errors import SetupError

_VERSIONED = re.compile(r"^(?P<name>.+)-(?P<version>\d+\.\d+\.\d+)\.json$")


def assets_dir() -> Path:
    candidates = [os.environ.get("SERVELOG_ASSETS_DIR"), str(Path(__file__).resolve().parents[2]), "/usr/share/servelog"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "index_templates").is_dir():
            return Path(candidate)
    raise SetupError("cannot find servelog's index_templates/ and dashboards/: set SERVELOG_ASSETS_DIR")


@dataclass(frozen=True, slots=True)
class Template:
    """A component or index template file: its name (without version) and body."""

    name: str
    version: str
    body: dict[str, Any]

    @property
    def is_component(self) -> bool:
        return "template" in self.body and "index_patterns" not in self.body


def templates(root: Path | None = None) -> list[Template]:
    """Component templates first (index templates refer to them), then index templates."""
    folder = (root or assets_dir()) / "index_templates"
    found = []
    for path in sorted(folder.glob("servelog-*.json")):
        match = _VERSIONED.match(path.name)
        if match is None:
            raise SetupError(f"{path.name}: template files are named <name>-<semver>.json")
        found.append(Template(match["name"], match["version"], json.loads(path.read_text(encoding="utf-8"))))
    return sorted(found, key=lambda t: (not t.is_component, t.name))


def ism_policies(root: Path | None = None) -> dict[str, dict[str, Any]]:
    folder = (root or assets_dir()) / "index_templates"
    return {p.stem.removeprefix("ism-"): json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("ism-*.json"))}


def saved_objects_file(root: Path | None = None) -> Path:
    files = sorted(((root or assets_dir()) / "dashboards").glob("servelog-*.ndjson"))
    if not files:
        raise SetupError("no dashboards/servelog-<version>.ndjson found")
    return files[-1]
