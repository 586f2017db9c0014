"""Pure parsing of kubelet log paths: ``<ns>_<pod>_<uid>/<container>/<restart>.log[.<ts>[.gz]]``.

The path alone names the namespace, pod, pod UID, container and restart count: the metadata of last
resort when no pod watch knows the pod (deleted long ago, collector outside the cluster).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# kubelet: fmt.Sprintf("%s_%s_%s", namespace, podName, podUID); namespace and pod names are DNS
# labels/subdomains without "_", so splitting on "_" is unambiguous.
_POD_DIR = re.compile(
    r"^(?P<ns>[a-z0-9]([-a-z0-9]*[a-z0-9])?)_(?P<pod>[a-z0-9]([-.a-z0-9]*[a-z0-9])?)_(?P<uid>[0-9a-fA-F-]{8,64})$"
)
# kubelet rotation suffix: time.Now().Format("20060102-150405"); gzip adds ".gz".
_LOG_FILE = re.compile(r"^(?P<restart>\d+)\.log(?:\.(?P<rotated>\d{8}-\d{6}(?:\.\d+)?))?(?P<gz>\.gz)?$")


@dataclass(frozen=True, slots=True)
class PodDir:
    """A pod's log directory name, parsed."""

    namespace: str
    pod_name: str
    pod_uid: str


@dataclass(frozen=True, slots=True)
class LogFileName:
    """A container log file name, parsed. ``rotated`` is the kubelet's rotation stamp, if any."""

    restart_count: int
    rotated: str | None
    gzipped: bool

    @property
    def order_key(self) -> tuple[int, str]:
        """Oldest first: rotated files by stamp, then the live ``N.log``."""
        return (0, self.rotated) if self.rotated is not None else (1, "")


def parse_pod_dir(name: str) -> PodDir | None:
    """``team-a_iris-predictor-00001-deployment-7d9-x2x9p_0f1e...`` -> PodDir, or None."""
    match = _POD_DIR.match(name)
    if match is None:
        return None
    return PodDir(namespace=match["ns"], pod_name=match["pod"], pod_uid=match["uid"])


def parse_log_file_name(name: str) -> LogFileName | None:
    """``0.log``, ``0.log.20261124-091201``, ``0.log.20261124-091201.gz`` -> LogFileName, or None.

    A ``.gz`` without a rotation stamp, temporary files (``.tmp``) and anything else is not a log.
    """
    match = _LOG_FILE.match(name)
    if match is None:
        return None
    if match["gz"] and not match["rotated"]:
        return None
    return LogFileName(restart_count=int(match["restart"]), rotated=match["rotated"], gzipped=bool(match["gz"]))


_KSERVE_POD = re.compile(
    r"^(?P<serving>[a-z0-9][-a-z0-9]*?)-(?P<component>predictor|transformer|explainer)"
    r"(?:-default)?(?:-(?P<revision>\d{5}))?(?:-deployment)?(?:-[a-z0-9]{6,10})?-[a-z0-9]{5}$"
)


def kserve_names_from_pod(pod_name: str) -> tuple[str, str] | None:
    """(serving_name, component) from a KServe pod name, or None when it is not one.

    Serverless: ``<isvc>-predictor-00001-deployment-<rs>-<pod>``; raw deployment:
    ``<isvc>-predictor-<rs>-<pod>``; older KServe inserts ``-default``.
    """
    match = _KSERVE_POD.match(pod_name)
    if match is None:
        return None
    return match["serving"], match["component"]
