"""Finding and loading the shipped assets: index templates, ISM policies, Dashboards saved objects.

The assets are plain files (``index_templates/*.json``, ``dashboards/*.ndjson``) so that operators
can read, diff and import them without servelog. They are looked up, in order, in
``$SERVELOG_ASSETS_DIR`` (``servelog setup --assets-dir`` replaces the whole list), the package data
of an installed wheel (``collector/assets/``: ``setup.py``'s build hook copies both folders there, so
``pip install .`` and the container image carry them), the source checkout next to the package
(``<repo>/index_templates``: an editable install) and ``/usr/share/servelog``. A root counts only
when it holds both folders; otherwise the error lists every place that was tried.

File names carry the asset's version (``servelog-logs-mappings-1.0.0.json``); when several versions
of one template lie side by side, the highest wins. ISM policies are ``ism-<policy id>.json``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from collector.errors import SetupError

TEMPLATES_DIR = "index_templates"
DASHBOARDS_DIR = "dashboards"
_VERSIONED = re.compile(r"^(?P<name>servelog(?:-[a-z0-9-]+?)?)-(?P<version>\d+\.\d+\.\d+)\.(?:json|ndjson)$")


def candidate_roots(environ: Mapping[str, str] | None = None) -> list[Path]:
    """Every folder that may hold the assets, most specific first."""
    environ = os.environ if environ is None else environ
    package = Path(__file__).resolve().parents[1]  # .../collector
    roots = [package / "assets", package.parent, Path("/usr/share/servelog")]
    given = environ.get("SERVELOG_ASSETS_DIR")
    return [Path(given), *roots] if given else roots


def assets_root(candidates: Sequence[Path] | None = None) -> Path:
    """The first candidate (default: :func:`candidate_roots`) holding ``index_templates/`` and ``dashboards/``."""
    candidates = candidate_roots() if candidates is None else candidates
    for root in candidates:
        if (root / TEMPLATES_DIR).is_dir() and (root / DASHBOARDS_DIR).is_dir():
            return root
    tried = ", ".join(str(c) for c in candidates)
    raise SetupError(
        f"cannot find servelog's {TEMPLATES_DIR}/ and {DASHBOARDS_DIR}/ folders (tried {tried}); "
        "set SERVELOG_ASSETS_DIR to the folder that holds them"
    )


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SetupError(f"cannot read asset {path}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Template:
    """A component or index template: its name (without version), version and body."""

    kind: Literal["component_template", "index_template"]
    name: str
    version: str
    body: dict[str, Any]

    @property
    def path(self) -> str:
        return f"/_{self.kind}/{self.name}"


def load_templates(root: Path | None = None) -> list[Template]:
    """The newest version of each template; component templates first (index templates use them)."""
    folder = (root or assets_root()) / TEMPLATES_DIR
    newest: dict[str, Template] = {}
    for path in sorted(folder.glob("servelog-*.json")):
        match = _VERSIONED.match(path.name)
        if match is None:
            raise SetupError(f"{path}: template files are named servelog-<name>-<major.minor.patch>.json")
        body = _read_json(path)
        declared = body.get("_meta", {}).get("version")
        if declared != match["version"]:
            raise SetupError(f"{path}: _meta.version is {declared!r}, the file name says {match['version']}")
        kind: Literal["component_template", "index_template"] = (
            "index_template" if "index_patterns" in body else "component_template"
        )
        template = Template(kind, match["name"], match["version"], body)
        known = newest.get(template.name)
        if known is None or _version_key(template.version) > _version_key(known.version):
            newest[template.name] = template
    return sorted(newest.values(), key=lambda t: (t.kind != "component_template", t.name))


@dataclass(frozen=True, slots=True)
class IsmPolicy:
    """An ISM policy and its id (from the file name ``ism-<id>.json``)."""

    policy_id: str
    body: dict[str, Any]

    @property
    def path(self) -> str:
        return f"/_plugins/_ism/policies/{self.policy_id}"


def load_ism_policies(root: Path | None = None) -> list[IsmPolicy]:
    folder = (root or assets_root()) / TEMPLATES_DIR
    return [IsmPolicy(p.stem.removeprefix("ism-"), _read_json(p)) for p in sorted(folder.glob("ism-*.json"))]


@dataclass(frozen=True, slots=True)
class SavedObjects:
    """The Dashboards saved objects file: its path and its objects, in file order."""

    path: Path
    objects: list[dict[str, Any]]


def load_saved_objects(root: Path | None = None) -> SavedObjects:
    """The newest ``dashboards/servelog-<version>.ndjson``."""
    folder = (root or assets_root()) / DASHBOARDS_DIR
    versions = []
    for path in folder.glob("servelog-*.ndjson"):
        match = _VERSIONED.match(path.name)
        if match is not None:
            versions.append((_version_key(match["version"]), path))
    if not versions:
        raise SetupError(f"no {folder}/servelog-<version>.ndjson found")
    path = max(versions)[1]
    objects = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            objects.append(json.loads(line))
        except ValueError as exc:
            raise SetupError(f"{path}:{number}: not JSON: {exc}") from exc
    return SavedObjects(path, objects)
