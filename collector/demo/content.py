"""Pure generation of demo content: which pods exist, what their containers say, and when.

Nothing here touches a file: :func:`story` yields :class:`LogLine` and :class:`Restart` events, and
:mod:`collector.demo.kubelet` writes them like containerd and the kubelet would. Given the same
random generator and clock the story is the same, which is what makes ``--seed`` reproducible.

The cast: two InferenceServices. ``fraud-detector`` in ``team-risk`` runs model versions 1 and 2
(Knative revisions 00001 and 00002, version 2 behind a transformer); ``sentiment`` in ``team-nlp``
runs version 3. Predictors have ``storage-initializer`` (init), ``kserve-container``, the request
logger ``agent`` and ``queue-proxy``.

The story: models download, servers register them while readiness probes get 503, requests flow
(access lines, request-logger lines, model lines), version 2 of the fraud model raises a
``ValueError`` on a malformed payload (a Python traceback), a large payload is logged on one line
(longer than containerd's 16 KiB record limit), and the sentiment server is OOMKilled once and
restarts (its next lines go to ``1.log``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

Stream = Literal["stdout", "stderr"]
Clock = Callable[[], int]  # nanoseconds since the epoch
Render = Callable[[int], str]  # a line's text, given the moment it is logged

SECOND = 1_000_000_000
MILLI = 1_000_000
WRITE_LAG_NS = 183_000  # containerd stamps a record shortly after the application formatted it
KSERVE_VERSION = "v0.14.1"
NODE_NAME = "demo-node"
NODE_IP = "10.0.0.12"
PROBE_SOURCE = "10.1.0.1"  # the node's address on the pod network: where kubelet probes come from


@dataclass(frozen=True, slots=True)
class DemoPod:
    """One serving pod. ``version`` is the Knative configuration generation (the model version)."""

    namespace: str
    serving: str
    version: int
    component: Literal["predictor", "transformer"]
    uid: str
    replicaset_hash: str
    suffix: str
    pid: int
    ip: str
    server_image: str

    @property
    def revision(self) -> str:
        return f"{self.serving}-{self.component}-{self.version:05d}"

    @property
    def name(self) -> str:
        return f"{self.revision}-deployment-{self.replicaset_hash}-{self.suffix}"

    @property
    def storage_uri(self) -> str:
        return f"s3://models/{self.serving}/{self.version}"

    @property
    def containers(self) -> tuple[str, ...]:
        return ("kserve-container", "queue-proxy") + (("agent",) if self.component == "predictor" else ())

    @property
    def init_containers(self) -> tuple[str, ...]:
        return ("storage-initializer",) if self.component == "predictor" else ()


PODS = (
    DemoPod("team-risk", "fraud-detector", 1, "predictor", "3f6c1a52-8d0e-4b7a-9c21-5e8f0b4d7a10", "7c9d8f6b54",
            "q8x2m", 1, "10.1.1.14", f"kserve/sklearnserver:{KSERVE_VERSION}"),
    DemoPod("team-risk", "fraud-detector", 2, "predictor", "b27e94d0-51c3-4f86-a0d9-2c7b16e3f845", "5f4b6d9c87",
            "k2v7p", 1, "10.1.1.15", f"kserve/sklearnserver:{KSERVE_VERSION}"),
    DemoPod("team-risk", "fraud-detector", 2, "transformer", "c9a0d3e7-6b2f-48c1-8e45-97f1a2b3c4d6", "6d8c7b5f49",
            "t4n9z", 1, "10.1.1.16", "ghcr.io/team-risk/fraud-transformer:2.0.3"),
    DemoPod("team-nlp", "sentiment", 3, "predictor", "e4d5c6b7-a890-4123-b456-0789abcdef12", "84b9f7c6d5",
            "w6j3r", 1, "10.1.2.21", f"kserve/huggingfaceserver:{KSERVE_VERSION}"),
)
CRASHING_POD = PODS[1]  # fraud-detector v2 rejects a malformed payload with a traceback
OOM_POD = PODS[3]  # sentiment v3 runs out of memory once


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line written by a container instance (``restart`` picks ``<restart>.log``)."""

    pod: DemoPod
    container: str
    restart: int
    stream: Stream
    text: str
    time_ns: int


@dataclass(frozen=True, slots=True)
class Restart:
    """A container was killed and started again: the pod metadata changes, logs go to a new file."""

    pod: DemoPod
    container: str
    restart_count: int
    reason: str
    exit_code: int
    time_ns: int


Event = LogLine | Restart


def simulated_clock(start_ns: int, rng: random.Random) -> Clock:
    """A clock that advances 1-40 ms (with nanosecond jitter) per reading: ``--once`` runs are reproducible."""
    now = start_ns

    def read() -> int:
        nonlocal now
        now += rng.randint(MILLI, 40 * MILLI)
        return now

    return read


def _iso(time_ns: int) -> str:
    return datetime.fromtimestamp(time_ns // SECOND, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sdk(time_ns: int, pid: int, level: str, where: str, message: str, logger: str = "kserve") -> str:
    """KServe's log format: ``%(asctime)s.%(msecs)03d %(process)s %(name)s %(levelname)s [...] %(message)s``."""
    when = datetime.fromtimestamp(time_ns / SECOND, tz=UTC)
    millis = (time_ns // MILLI) % 1000
    return f"{when.strftime('%Y-%m-%d %H:%M:%S')}.{millis:03d} {pid} {logger} {level} [{where}] {message}"


def _zap(time_ns: int, level: str, caller: str, msg: str, **fields: Any) -> str:
    """The request logger (a Go agent) logs zap JSON."""
    return orjson.dumps({"level": level, "ts": round(time_ns / SECOND, 6), "logger": "fallback-logger",
                         "caller": caller, "msg": msg, **fields}).decode()


def _queue_proxy(time_ns: int, severity: str, message: str, pod: DemoPod) -> str:
    """Knative's queue-proxy logs JSON (collected only if ``pipeline.exclude_containers`` allows it)."""
    return orjson.dumps({"severity": severity, "timestamp": datetime.fromtimestamp(time_ns / SECOND, tz=UTC).isoformat(),
                         "logger": "queueproxy", "caller": "sharedmain/main.go:277", "message": message,
                         "knative.dev/key": f"{pod.namespace}/{pod.revision}", "knative.dev/pod": pod.name}).decode()


def _access(client: str, method: str, path: str, status: int) -> str:
    """A uvicorn access line, as the model servers print it on stdout."""
    reason = {200: "OK", 400: "Bad Request", 500: "Internal Server Error", 503: "Service Unavailable"}[status]
    return f'INFO:     {client} - "{method} {path} HTTP/1.1" {status} {reason}'


def _client(rng: random.Random) -> str:
    return f"10.1.{rng.randint(0, 7)}.{rng.randint(2, 250)}:{rng.randint(32768, 60999)}"


def _line(pod: DemoPod, container: str, restart: int, stream: Stream, clock: Clock, text: str | Render) -> LogLine:
    """Read the clock once: the application stamps its text, containerd stamps the record a moment later."""
    now = clock()
    return LogLine(pod, container, restart, stream, text if isinstance(text, str) else text(now), now + WRITE_LAG_NS)


def startup(pod: DemoPod, *, clock: Clock, restart: int = 0) -> list[LogLine]:
    """A container instance starting: model download (first start only), registration, failing readiness, ready."""
    out: list[LogLine] = []

    def say(container: str, stream: Stream, text: str | Render) -> None:
        out.append(_line(pod, container, restart if container == "kserve-container" else 0, stream, clock, text))

    def kserve(level: str, where: str, message: str, pid: int = pod.pid) -> Render:
        return lambda now: _sdk(now, pid, level, where, message)

    if restart == 0 and pod.component == "predictor":
        uri, artifact = pod.storage_uri, "model.joblib" if "sklearn" in pod.server_image else "model.safetensors"
        say("storage-initializer", "stderr", kserve("INFO", "storage.py:download():64", f"Copying contents of {uri} to local", 1))
        say("storage-initializer", "stderr", kserve("INFO", "storage.py:_download_s3():215",
                                                    f"Downloaded object {pod.serving}/{pod.version}/{artifact} to "
                                                    f"/mnt/models/{artifact}", 1))
        say("storage-initializer", "stderr", kserve("INFO", "storage.py:download():101",
                                                    f"Successfully copied {uri} to /mnt/models", 1))
        say("storage-initializer", "stderr", kserve("INFO", "storage.py:download():103", "Model downloaded in 1.11 seconds.", 1))
    if restart == 0:
        say("queue-proxy", "stderr", lambda now: _queue_proxy(now, "INFO", "Starting queue-proxy", pod))
    if pod.component == "predictor" and restart == 0:
        say("agent", "stderr", lambda now: _zap(now, "info", "agent/main.go:134", "Starting the log dispatcher", workers=5))
        say("agent", "stderr", lambda now: _zap(now, "info", "agent/main.go:187", "Starting agent http server...", port="9081"))
    if pod.component == "transformer":
        say("kserve-container", "stderr", kserve("INFO", "transformer.py:main():61",
                                                 f"Predictor host: {pod.serving}-predictor.{pod.namespace}"))
    say("kserve-container", "stderr", kserve("INFO", "model_server.py:register_model():402", f"Registering model: {pod.serving}"))
    say("kserve-container", "stderr", kserve("INFO", "model_server.py:start():367", "Setting max asyncio worker threads as 12"))
    say("kserve-container", "stderr", f"INFO:     Started server process [{pod.pid}]")
    say("kserve-container", "stderr", "INFO:     Waiting for application startup.")
    for _ in range(2):  # the model is still loading: readiness probes fail
        say("kserve-container", "stderr", kserve("WARNING", "dataplane.py:model_ready():187",
                                                 f"Model with name {pod.serving} is not ready."))
        say("kserve-container", "stdout", _access(f"{PROBE_SOURCE}:{41000 + len(out)}", "GET", f"/v1/models/{pod.serving}", 503))
        say("queue-proxy", "stderr", lambda now: _queue_proxy(
            now, "ERROR", "Readiness probe failed: HTTP probe did not respond Ready, got status code: 503", pod))
    say("kserve-container", "stderr", kserve("INFO", "model.py:load():58", f"Model {pod.serving} loaded"))
    say("kserve-container", "stderr", "INFO:     Application startup complete.")
    say("kserve-container", "stderr", "INFO:     Uvicorn running on http://0.0.0.0:8080 (Press CTRL+C to quit)")
    say("kserve-container", "stdout", _access(f"{PROBE_SOURCE}:{41000 + len(out)}", "GET", f"/v1/models/{pod.serving}", 200))
    return out


TRACEBACK = (
    "Traceback (most recent call last):",
    '  File "/prod_venv/lib/python3.11/site-packages/kserve/protocol/dataplane.py", line 311, in infer',
    "    response = await model(request, headers=headers)",
    "               ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
    '  File "/prod_venv/lib/python3.11/site-packages/sklearnserver/model.py", line 62, in predict',
    "    result = self._model.predict(instances)",
    "             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
    '  File "/prod_venv/lib/python3.11/site-packages/sklearn/utils/validation.py", line 2829, in _check_n_features',
    "    raise ValueError(",
    "ValueError: X has 12 features, but StandardScaler is expecting 14 features as input.",
)


def request(pod: DemoPod, *, rng: random.Random, clock: Clock, restart: int = 0) -> list[LogLine]:
    """One inference request through a pod: the lines it leaves in each container."""
    hex_id = f"{rng.getrandbits(128):032x}"
    request_id = f"{hex_id[:8]}-{hex_id[8:12]}-{hex_id[12:16]}-{hex_id[16:20]}-{hex_id[20:]}"
    path = f"/v1/models/{pod.serving}:predict"
    access_from = _client(rng)
    if pod.component == "transformer":
        return [
            _line(pod, "kserve-container", 0, "stderr", clock, lambda now: _sdk(
                now, pod.pid, "INFO", "transformer.py:preprocess():74", f"Preprocessed request {request_id}: 14 features")),
            _line(pod, "kserve-container", 0, "stdout", clock, _access(access_from, "POST", path, 200)),
        ]
    status = 200 if rng.random() > 0.02 else 400
    latency = rng.uniform(2, 40)
    return [
        _line(pod, "agent", 0, "stderr", clock, lambda now: _zap(
            now, "info", "logger/handler.go:79", "Logging request", id=request_id, inferenceservice=pod.serving,
            namespace=pod.namespace, component=pod.component)),
        _line(pod, "kserve-container", restart, "stderr", clock, lambda now: _sdk(
            now, pod.pid, "INFO", "model.py:__call__():134", f"predict latency {latency:.2f} ms for request {request_id}")),
        _line(pod, "kserve-container", restart, "stdout", clock, _access(access_from, "POST", path, status)),
        _line(pod, "agent", 0, "stderr", clock, lambda now: _zap(
            now, "info", "logger/handler.go:112", "Logging response", id=request_id, status=status)),
    ]


def crash(pod: DemoPod, *, clock: Clock, client: str) -> list[LogLine]:
    """A malformed payload: ``logger.exception`` writes the message, then the traceback, line by line."""
    path = f"/v1/models/{pod.serving}:predict"
    out = [_line(pod, "kserve-container", 0, "stderr", clock, lambda now: _sdk(
        now, pod.pid, "ERROR", "errors.py:generic_exception_handler():108", f"Exception on {path}"))]
    out += [_line(pod, "kserve-container", 0, "stderr", clock, line) for line in TRACEBACK]
    out.append(_line(pod, "kserve-container", 0, "stdout", clock, _access(client, "POST", path, 500)))
    return out


def large_payload(pod: DemoPod, *, rng: random.Random, clock: Clock, restart: int = 0) -> LogLine:
    """A model that logs its whole input batch: one line of ~40 KB, split by containerd into 16 KiB records."""
    rows = [[round(rng.uniform(-3, 3), 4) for _ in range(14)] for _ in range(400)]
    payload = orjson.dumps({"instances": rows}).decode()
    return _line(pod, "kserve-container", restart, "stdout", clock, lambda now: _sdk(
        now, pod.pid, "DEBUG", "model.py:preprocess():41", f"Received payload: {payload}"))


def out_of_memory(pod: DemoPod, *, clock: Clock) -> list[Event]:
    """The server exceeds its memory limit, the kernel kills it, the kubelet starts it again as restart 1."""
    events: list[Event] = [_line(pod, "kserve-container", 0, "stderr", clock, lambda now: _sdk(
        now, pod.pid, "WARNING", "model.py:predict():88", "Batch of 4096 inputs: tokenizer memory at 97% of limit"))]
    events.append(Restart(pod, "kserve-container", 1, "OOMKilled", 137, clock()))
    events += startup(pod, clock=clock, restart=1)
    return events


def story(*, rng: random.Random, clock: Clock, max_lines: int | None, oom_after: int = 2000,
          crash_every: int = 400, large_every: int = 250) -> Iterator[Event]:
    """The whole demo, in order. Stops after about ``max_lines`` lines (None: never)."""
    lines = 0
    restarts = {pod.uid: 0 for pod in PODS}
    for pod in PODS:
        for line in startup(pod, clock=clock):
            lines += 1
            yield line
    tick = 0
    oomed = False
    while max_lines is None or lines < max_lines:
        tick += 1
        pod = PODS[rng.randrange(len(PODS))]
        events: list[Event] = list(request(pod, rng=rng, clock=clock, restart=restarts[pod.uid]))
        if tick % crash_every == 0:
            events += crash(CRASHING_POD, clock=clock, client=_client(rng))
        if tick % large_every == 0:
            events.append(large_payload(pod, rng=rng, clock=clock, restart=restarts[pod.uid]))
        if not oomed and lines >= oom_after:
            oomed = True
            restarts[OOM_POD.uid] = 1
            events += out_of_memory(OOM_POD, clock=clock)
        for event in events:
            lines += isinstance(event, LogLine)
            yield event


def pod_object(pod: DemoPod, *, created_ns: int, restart: Restart | None = None) -> dict[str, Any]:
    """The Pod as ``kubectl get pod -o yaml`` would show it (what servelog reads, and the usual context)."""
    created = _iso(created_ns)
    kserve_labels = {
        "app": pod.revision,
        "component": pod.component,
        "pod-template-hash": pod.replicaset_hash,
        "serving.kserve.io/inferenceservice": pod.serving,
        "serving.knative.dev/configuration": f"{pod.serving}-{pod.component}",
        "serving.knative.dev/configurationGeneration": str(pod.version),
        "serving.knative.dev/configurationUID": _derived_uid(pod, "configuration"),
        "serving.knative.dev/revision": pod.revision,
        "serving.knative.dev/revisionUID": _derived_uid(pod, "revision"),
        "serving.knative.dev/service": f"{pod.serving}-{pod.component}",
        "serving.knative.dev/serviceUID": _derived_uid(pod, "service"),
    }
    server: dict[str, Any] = {
        "name": "kserve-container", "image": pod.server_image,
        "args": [f"--model_name={pod.serving}", "--model_dir=/mnt/models", "--http_port=8080"],
        "ports": [{"name": "user-port", "containerPort": 8080, "protocol": "TCP"}],
        "env": [{"name": "PORT", "value": "8080"}, {"name": "K_REVISION", "value": pod.revision}],
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}},
        "volumeMounts": [{"name": "kserve-provision-location", "mountPath": "/mnt/models", "readOnly": True}],
    }
    containers = [server, {
        "name": "queue-proxy", "image": "gcr.io/knative-releases/knative.dev/serving/cmd/queue:v1.16.0",
        "ports": [{"name": "http-queueadm", "containerPort": 8022}, {"name": "http-usermetric", "containerPort": 9091},
                  {"name": "queue-port", "containerPort": 8012}],
        "readinessProbe": {"httpGet": {"path": "/", "port": 8012, "httpHeaders": [{"name": "K-Network-Probe",
                                                                                   "value": "queue"}]},
                           "periodSeconds": 10, "successThreshold": 1},
    }]
    if "agent" in pod.containers:
        containers.append({"name": "agent", "image": f"kserve/agent:{KSERVE_VERSION}",
                           "args": ["--enable-puller", "false", "--log-url", "http://message-dumper.default/",
                                    "--component-port", "8080", "--log-mode", "all"],
                           "ports": [{"name": "agent-port", "containerPort": 9081}]})
    init = [{"name": "storage-initializer", "image": f"kserve/storage-initializer:{KSERVE_VERSION}",
             "args": [pod.storage_uri, "/mnt/models"],
             "volumeMounts": [{"name": "kserve-provision-location", "mountPath": "/mnt/models"}]}
            for _ in pod.init_containers]

    def status_of(container: dict[str, Any]) -> dict[str, Any]:
        restarted = restart is not None and restart.container == container["name"]
        count = restart.restart_count if restarted and restart else 0
        status: dict[str, Any] = {
            "name": container["name"], "image": container["image"], "ready": True, "started": True,
            "restartCount": count,
            "containerID": "containerd://" + "".join(
                _derived_uid(pod, f"{container['name']}/{count}/{half}").replace("-", "") for half in (0, 1)),
            "state": {"running": {"startedAt": _iso(restart.time_ns) if restarted and restart else created}},
        }
        if restarted and restart:
            status["lastState"] = {"terminated": {"exitCode": restart.exit_code, "reason": restart.reason,
                                                  "startedAt": created, "finishedAt": _iso(restart.time_ns)}}
        return status

    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": pod.name, "generateName": f"{pod.revision}-deployment-{pod.replicaset_hash}-",
            "namespace": pod.namespace, "uid": pod.uid, "creationTimestamp": created, "labels": kserve_labels,
            "annotations": {
                "autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev",
                "autoscaling.knative.dev/min-scale": "1",
                "internal.serving.kserve.io/storage-initializer-sourceuri": pod.storage_uri,
                "serving.knative.dev/creator": "system:serviceaccount:kserve:kserve-controller-manager",
            },
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "controller": True,
                                 "blockOwnerDeletion": True, "name": f"{pod.revision}-deployment-{pod.replicaset_hash}",
                                 "uid": _derived_uid(pod, "replicaset")}],
        },
        "spec": {"nodeName": NODE_NAME, "serviceAccountName": "default", "containers": containers,
                 "initContainers": init,
                 "volumes": [{"name": "kserve-provision-location", "emptyDir": {}}]},
        "status": {
            "phase": "Running", "hostIP": NODE_IP, "podIP": pod.ip, "startTime": created, "qosClass": "Burstable",
            "conditions": [{"type": t, "status": "True", "lastTransitionTime": created}
                           for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
            "initContainerStatuses": [{"name": c["name"], "image": c["image"], "ready": True, "restartCount": 0,
                                       "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                                                "startedAt": created, "finishedAt": created}}}
                                      for c in init],
            "containerStatuses": [status_of(c) for c in containers],
        },
    }


def pod_list(*, created_ns: int, restarts: dict[str, Restart]) -> dict[str, Any]:
    """Every demo pod, as a PodList (the metadata file read by ``servelog run --metadata-file``)."""
    return {"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": ""},
            "items": [pod_object(p, created_ns=created_ns, restart=restarts.get(p.uid)) for p in PODS]}


def _derived_uid(pod: DemoPod, what: str) -> str:
    """A stable, UUID-shaped id for an object related to the pod (same input, same id)."""
    digest = random.Random(f"{pod.uid}/{what}").getrandbits(128)
    text = f"{digest:032x}"
    return f"{text[:8]}-{text[8:12]}-4{text[13:16]}-8{text[17:20]}-{text[20:]}"
