"""Pure decisions of ``servelog setup``: what to write, given what is wanted and what exists.

Nothing here does I/O. A :class:`Step` is one asset with its verdict (create, update or
unchanged) and the request that applies it; the installer and the Dashboards client gather the
current state, these functions decide, and the command prints and applies the steps.

"Unchanged" means the cluster already holds everything the asset says (:func:`contains`): servers
hand assets back with bookkeeping added (ISM's ``last_updated_time`` and retry defaults) and with
scalars turned to text (index settings come back as ``"1"``, mappings' ``dynamic`` as ``"false"``),
so equality would report every asset as changed on every run.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

from collector.errors import SetupError

State = Literal["create", "update", "unchanged"]

#: flat_object (pod labels) arrived in OpenSearch 2.7; date_nanos is older.
MIN_OPENSEARCH = (2, 7)
#: before 2.12, flat_object mis-parsed the keys after a dotted key (opensearch-project/OpenSearch#11402, #11425)
DOTTED_LABELS_FIXED = (2, 12)

_AGE = re.compile(r"^[1-9]\d*(d|h|m|s|ms|micros|nanos)$")


@dataclass(frozen=True, slots=True)
class Step:
    """One asset, its verdict and the write that applies it (not sent when unchanged)."""

    kind: str  # component_template | index_template | ism_policy | saved_object
    name: str
    state: State
    method: str
    path: str
    body: Any = field(default=None, repr=False, compare=False)
    params: Mapping[str, Any] | None = None
    detail: str = ""

    @property
    def changed(self) -> bool:
        return self.state != "unchanged"

    @property
    def target(self) -> str:
        return self.path + ("?" + urlencode(dict(self.params)) if self.params else "")

    def describe(self) -> str:
        request = f"{self.method} {self.target}" + ("" if self.changed else " (not sent)")
        detail = f"  [{self.detail}]" if self.detail else ""
        return f"{self.state:<9}  {self.kind:<18} {self.name:<46} {request}{detail}"


def contains(actual: Any, desired: Any) -> bool:
    """Whether ``actual`` holds everything in ``desired``; scalars compare as lower-case text."""
    if isinstance(desired, Mapping):
        return isinstance(actual, Mapping) and all(k in actual and contains(actual[k], v) for k, v in desired.items())
    if isinstance(desired, list):
        return (isinstance(actual, list) and len(actual) == len(desired)
                and all(contains(a, d) for a, d in zip(actual, desired, strict=True)))
    if desired is None:
        return actual is None
    return str(actual).lower() == str(desired).lower()


def verdict(current: Any | None, desired: Any) -> State:
    if current is None:
        return "create"
    return "unchanged" if contains(current, desired) else "update"


def check_opensearch(info: Mapping[str, Any], node_versions: list[str] | None = None) -> str:
    """The cluster's OpenSearch version; SetupError when it is not OpenSearch >= 2.7.

    ``GET /`` names the distribution, except on a 2.x cluster with
    ``compatibility.override_main_response_version: true``: it then reports version 7.10.2 and no
    distribution, for Elasticsearch clients (OpenSearch ``MainResponse``). ``node_versions`` (from
    ``GET /_nodes``) tells: nodes of such a cluster report their real versions, an Elasticsearch's
    nodes the same number as ``GET /``. The lowest node version is the one that counts.
    """
    version = info.get("version") or {}
    number = str(version.get("number", "unknown"))
    if version.get("distribution") != "opensearch":
        real = sorted({v for v in node_versions or [] if v != number and _major_minor(v) < (7, 0)}, key=_major_minor)
        if not real or len(real) != len(set(node_versions or [])):
            hint = ("" if node_versions is not None else
                    "; if it is OpenSearch with compatibility.override_main_response_version: true, let setup read "
                    "GET /_nodes (cluster:monitor/nodes/info) or turn the override off")
            raise SetupError(
                f"the cluster is not OpenSearch (GET / reports version {number} and no version.distribution "
                f"'opensearch', and its nodes do not contradict it: Elasticsearch?){hint}; servelog's templates need "
                "OpenSearch >= 2.7 (flat_object, date_nanos, ISM)"
            )
        number = real[0]
    if _major_minor(number) < MIN_OPENSEARCH:
        raise SetupError(
            f"OpenSearch {number} is too old: servelog needs >= {MIN_OPENSEARCH[0]}.{MIN_OPENSEARCH[1]} "
            "(flat_object for pod labels); upgrade the cluster"
        )
    return number


def version_warnings(number: str) -> list[str]:
    """What works less well on an accepted but older OpenSearch."""
    if _major_minor(number) < DOTTED_LABELS_FIXED:
        return [f"OpenSearch {number}: flat_object mis-indexes the keys that follow a dotted key in the same "
                "object (opensearch-project/OpenSearch#11402, fixed in 2.12 by #11425): it pushes the whole dotted "
                "key onto the path but pops only its last part, so every later label key of a pod is indexed under "
                "a wrong path. Kubernetes label keys are dotted (app.kubernetes.io/name), so searching labels by "
                "path (labels.<key>: value) misses most pods; searching the whole field (labels: value) works. "
                "Upgrade to 2.12 or later to search labels by key"]
    return []


def _major_minor(number: str) -> tuple[int, int]:
    match = re.match(r"^(\d+)\.(\d+)", number)
    return (int(match[1]), int(match[2])) if match else (0, 0)


def retention_age(value: str) -> str:
    """An ISM age such as ``14d`` or ``36h``; SetupError otherwise."""
    if not _AGE.match(value):
        raise SetupError(f"retention {value!r} is not an age such as 14d, 36h or 90m")
    return value


def with_retention(policy: dict[str, Any], age: str | None) -> dict[str, Any]:
    """The policy with every transition into its ``delete`` state taken at ``age``."""
    if age is None:
        return policy
    policy = copy.deepcopy(policy)
    for state in policy["policy"]["states"]:
        for transition in state.get("transitions", []):
            if transition.get("state_name") == "delete":
                transition["conditions"] = {"min_index_age": age}
    return policy


def retention_of(policy: dict[str, Any]) -> str | None:
    """The age at which the policy deletes an index (for the report)."""
    for state in policy["policy"]["states"]:
        for transition in state.get("transitions", []):
            if transition.get("state_name") == "delete":
                age = transition.get("conditions", {}).get("min_index_age")
                return str(age) if age is not None else None
    return None


def with_replicas(template: dict[str, Any], replicas: int | None) -> dict[str, Any]:
    """A component template carrying index settings, with ``number_of_replicas`` overridden."""
    settings = template.get("template", {}).get("settings")
    if replicas is None or settings is None:
        return template
    template = copy.deepcopy(template)
    template["template"]["settings"].setdefault("index", {})["number_of_replicas"] = replicas
    return template
