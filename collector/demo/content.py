"""Pure generation of demo content: which pods exist and what their containers say.

Two deployments (``fraud-detector`` in ``team-risk`` with model versions 1 and 2, the latter behind a
transformer; ``sentiment`` in ``team-nlp`` with version 3), each pod with ``storage-initializer``,
``kserve-container`` and the request logger ``agent``. The story: models download, servers register
them, requests flow, version 2 of the fraud model crashes on a bad payload (a Python traceback), the
sentiment server is OOMKilled once and restarts, and a readiness check fails while a model loads.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class DemoPod:
    namespace: str
    serving: str
    version: int
    component: str
    uid: str

    @property
    def name(self) -> str:
        return f"{self.serving}-{self.component}-{self.version:05d}-deployment-6d4c5f7b9-{self.uid[:5]}"

    @property
    def revision(self) -> str:
        return f"{self.serving}-{self.component}-{self.version:05d}"


PODS = (
    DemoPod("team-risk", "fraud-detector", 1, "predictor", "a1b2c3d4-0001-4000-8000-000000000001"),
    DemoPod("team-risk", "fraud-detector", 2, "predictor", "a1b2c3d4-0002-4000-8000-000000000002"),
    DemoPod("team-risk", "fraud-detector", 2, "transformer", "a1b2c3d4-0003-4000-8000-000000000003"),
    DemoPod("team-nlp", "sentiment", 3, "predictor", "a1b2c3d4-0004-4000-8000-000000000004"),
)
OOM_POD = PODS[3]


def pod_object(pod: DemoPod, *, restarts: int = 0) -> dict[str, Any]:
    """A Pod as ``kubectl get pod -o yaml`` shows it (the parts servelog reads)."""
    containers = ["kserve-container", "queue-proxy"] + (["agent"] if pod.component == "predictor" else [])
    status: dict[str, Any] = {"name": "kserve-container", "restartCount": restarts, "state": {"running": {}}}
    if restarts:
        status["lastState"] = {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": pod.name, "namespace": pod.namespace, "uid": pod.uid,
        "labels": {"app": pod.revision, "component": pod.component, "serving.kserve.io/inferenceservice": pod.serving,
                   "serving.knative.dev/configuration": f"{pod.serving}-{pod.component}",
                   "serving.knative.dev/configurationGeneration": str(pod.version),
                   "serving.knative.dev/revision": pod.revision, "serving.knative.dev/service": f"{pod.serving}-{pod.component}"},
        "annotations": {"internal.serving.kserve.io/storage-initializer-sourceuri": f"s3://models/{pod.serving}/{pod.version}"}},
        "spec": {"nodeName": "demo-node", "containers": [{"name": c} for c in containers],
                 "initContainers": [{"name": "storage-initializer"}]},
        "status": {"phase": "Running", "containerStatuses": [status],
                   "initContainerStatuses": [{"name": "storage-initializer", "restartCount": 0,
                                              "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}}


def _sdk(when: datetime, level: str, where: str, message: str, pid: int = 1) -> str:
    """The KServe SDK log format."""
    return f"{when.strftime('%Y-%m-%d %H:%M:%S')}.{when.microsecond // 1000:03d} {pid} kserve {level} [{where}] {message}"


def startup_lines(pod: DemoPod, when: datetime) -> dict[str, list[str]]:
    uri = f"s3://models/{pod.serving}/{pod.version}"
    init = [
        _sdk(when, "INFO", "storage.py:download():64", f"Copying contents of {uri} to local"),
        _sdk(when, "INFO", "storage.py:_download_s3():215", f"Downloaded object {pod.serving}/{pod.version}/model.joblib"),
        _sdk(when, "INFO", "storage.py:download():101", f"Successfully copied {uri} to /mnt/models"),
        _sdk(when, "INFO", "storage.py:download():103", "Model downloaded in 1.11 seconds."),
    ]
    server = [
        _sdk(when, "INFO", "model_server.py:register_model():402", f"Registering model: {pod.serving}"),
        _sdk(when, "WARNING", "model_server.py:_check_ready():88",
             "Model is not ready yet: readiness probe will fail (HTTP 503) until loading completes"),
        _sdk(when, "INFO", "model_server.py:start():367", "Setting max asyncio worker threads as 12"),
        "INFO:     Started server process [1]",
        "INFO:     Uvicorn running on http://0.0.0.0:8080 (Press CTRL+C to quit)",
    ]
    return {"storage-initializer": init, "kserve-container": server}


TRACEBACK = [
    "Traceback (most recent call last):",
    '  File "/usr/local/lib/python3.11/site-packages/kserve/protocol/dataplane.py", line 311, in infer',
    "    response = await model(request, headers=headers)",
    "               ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
    '  File "/app/model.py", line 42, in predict',
    "    features = self.encoder.transform(payload[\"instances\"])",
    "KeyError: 'instances'",
]


def traffic_line(pod: DemoPod, rng: random.Random, when: datetime) -> tuple[str, str, str]:
    """(container, stream, line) for one moment of traffic."""
    roll = rng.random()
    request_id = f"{rng.getrandbits(64):016x}"
    if pod.component == "transformer":
        if roll < 0.5:
            return "kserve-container", "stderr", _sdk(when, "INFO", "transformer.py:preprocess():58",
                                                     f"preprocessed request {request_id}")
        return "kserve-container", "stdout", (f'INFO:     10.1.{rng.randint(0, 9)}.{rng.randint(2, 250)}:0 - '
                                              f'"POST /v1/models/{pod.serving}:predict HTTP/1.1" 200 OK')
    if roll < 0.45:
        status = 200 if rng.random() > 0.03 else 500
        return "kserve-container", "stdout", (f'INFO:     10.1.{rng.randint(0, 9)}.{rng.randint(2, 250)}:0 - '
                                              f'"POST /v1/models/{pod.serving}:predict HTTP/1.1" {status} OK')
    if roll < 0.75:
        return "agent", "stdout", orjson.dumps({
            "level": "info", "ts": round(when.timestamp(), 3), "logger": "fallback-logger", "msg": "Logging request",
            "inferenceservice": pod.serving, "id": request_id}).decode()
    return "kserve-container", "stderr", _sdk(when, "INFO", "model.py:predict():40",
                                              f"scored request {request_id} in {rng.uniform(2, 40):.1f} ms")


def now() -> datetime:
    return datetime.now(tz=UTC)
