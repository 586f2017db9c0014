"""What the corpus's containers say: InferenceService pods and their CRI records, as containerd writes them.

``plan`` lays out pods and containers (a predictor pod with ``kserve-container``, ``storage-initializer``
and ``agent``, a transformer pod with ``transformer-container``); a ``ContainerWriter`` builds one
container's records from its own random stream (deterministic for a seed): KServe SDK lines, uvicorn
access lines, JSON lines, ``kserve.trace`` timings, Python tracebacks, 40 KB lines split into 16 KiB
``P``/``F`` chunks, and keeps count of the documents, ``P`` records and chunked lines it wrote.
``bench.corpus`` writes them into the kubelet's layout.
"""

from __future__ import annotations

import itertools
import random
import time
import uuid
from dataclasses import dataclass

BASE_NS = 1795510800 * 10**9  # 2026-11-24T09:00:00Z
CHUNK = 16384  # containerd's max_container_log_line_size

ISVCS = ("sklearn-iris", "xgb-fraud", "bert-ner", "llama3-8b-chat", "resnet50-vision", "lgbm-churn", "t5-summarizer",
         "yolo-detector", "torch-mnist", "prophet-forecast", "catboost-credit", "whisper-asr")
NAMESPACES = ("team-a", "fraud-detection", "vision", "nlp-project")
# (container, component, share of the node's lines)
CONTAINERS = (("kserve-container", "predictor", 10.0), ("storage-initializer", "predictor", 0.3),
              ("agent", "predictor", 4.0), ("transformer-container", "transformer", 5.0))


@dataclass(frozen=True)
class Spec:
    """One container instance of the corpus."""

    namespace: str
    isvc: str
    pod: str
    uid: str
    container: str
    weight: float
    crashloop: bool


def plan(containers: int, rng: random.Random) -> list[Spec]:
    """Pods and containers: per InferenceService a predictor pod (3 containers) and a transformer pod."""
    specs: list[Spec] = []
    for i in itertools.count():
        isvc = ISVCS[i % len(ISVCS)] + (f"-{i // len(ISVCS)}" if i >= len(ISVCS) else "")
        namespace = NAMESPACES[i % len(NAMESPACES)]
        pods: dict[str, tuple[str, str]] = {}
        for component in ("predictor", "transformer"):
            template_hash = "".join(rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(10))
            suffix = "".join(rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
            pods[component] = (f"{isvc}-{component}-00001-deployment-{template_hash}-{suffix}",
                               str(uuid.UUID(int=rng.getrandbits(128), version=4)))
        for container, component, weight in CONTAINERS:
            if len(specs) == containers:
                return specs
            pod, uid = pods[component]
            specs.append(Spec(namespace, isvc, pod, uid, container, weight,
                              crashloop=container == "kserve-container" and i % 5 == 2))
    raise AssertionError("unreachable")


# -- content ---------------------------------------------------------------------------------------
TRACEBACKS: tuple[tuple[bytes, ...], ...] = (
    (b"Traceback (most recent call last):",
     b'  File "/usr/local/lib/python3.11/site-packages/kserve/protocol/rest/v1_endpoints.py", line 76, in predict',
     b"    response, response_headers = await self.dataplane.infer(",
     b"                                 ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
     b'  File "/usr/local/lib/python3.11/site-packages/kserve/protocol/dataplane.py", line 311, in infer',
     b"    response = await model(request, headers=headers)",
     b'  File "/app/model.py", line 42, in predict',
     b"    return self.model.predict(instances)",
     b"ValueError: Expected 2D array, got 1D array instead: array=[5.1 3.5 1.4 0.2]."),
    (b"Traceback (most recent call last):",
     b'  File "/app/model.py", line 57, in preprocess',
     b'    instances = payload["instances"]',
     b"                ~~~~~~~^^^^^^^^^^^^^",
     b"KeyError: 'instances'",
     b"",
     b"During handling of the above exception, another exception occurred:",
     b"",
     b"Traceback (most recent call last):",
     b'  File "/usr/local/lib/python3.11/site-packages/kserve/model.py", line 122, in __call__',
     b"    payload = await self.preprocess(body, headers)",
     b'  File "/app/model.py", line 60, in preprocess',
     b'    raise InvalidInput("expected an \'instances\' key")',
     b"kserve.errors.InvalidInput: expected an 'instances' key"),
    (b"Traceback (most recent call last):",
     b'  File "/usr/local/lib/python3.11/site-packages/torch/nn/modules/module.py", line 1532, in _wrapped_call_impl',
     b"    return self._call_impl(*args, **kwargs)",
     b'  File "/app/model.py", line 88, in forward',
     b"    return self.head(x)",
     b"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.77 GiB total capacity)"),
)
PATHS = (b"/v1/models/%s:predict", b"/v2/models/%s/infer", b"/v1/models/%s", b"/v2/health/ready")
AGENT_MESSAGES = (
    b'{"level":"info","ts":%d.%06d,"logger":"fallback-logger","msg":"Logging request","id":"%016x"}',
    b'{"level":"info","ts":%d.%06d,"logger":"fallback-logger","msg":"batch flushed","batchId":"%016x","size":%d}',
)


class ContainerWriter:
    """Builds one container's CRI records; its own random stream keeps the corpus deterministic."""

    def __init__(self, spec: Spec, seed: int, index: int) -> None:
        self.spec = spec
        self.rng = random.Random(seed * 100_003 + index)
        self.ts_ns = BASE_NS + index * 7_919_000
        self.records: list[bytes] = []
        self.documents = 0
        self.partials = 0  # P records: chunks of a long line that an F record ends
        self.chunked_lines = 0  # lines written as P chunks then an F
        self._sec = -1
        self._sec_text = b""
        self._app_sec = b""
        self._seconds(self.ts_ns // 1_000_000_000)
        self.isvc = spec.isvc.encode()
        self.big = self._big_payload()
        self.open_traceback = False

    def _big_payload(self) -> bytes:
        # an occasional debug dump of an input tensor: 40 KB on one line
        values = b",".join(b"%.6f" % self.rng.random() for _ in range(4500))
        return b'DEBUG payload {"instances":[[' + values[: 40_000 - 40] + b"]]}"

    def _stamp(self) -> bytes:
        self.ts_ns += self.rng.randrange(20_000, 1_500_000)
        sec, frac = divmod(self.ts_ns, 1_000_000_000)
        if sec != self._sec:
            self._seconds(sec)
        fraction = (b"%09d" % frac).rstrip(b"0")
        return self._sec_text + (b"." + fraction + b"Z" if fraction else b"Z")

    def _seconds(self, sec: int) -> None:
        self._sec = sec
        self._sec_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)).encode()
        self._app_sec = self._sec_text.replace(b"T", b" ")

    def _app_time(self) -> bytes:
        return b"%s.%03d" % (self._app_sec, self.ts_ns // 1_000_000 % 1000)

    def line(self, stream: bytes, content: bytes) -> None:
        """One logical line: one record, or 16 KiB ``P`` chunks ending with an ``F``."""
        self.open_traceback = False
        self.documents += 1
        if len(content) <= CHUNK:
            self.records.append(self._stamp() + stream + b" F " + content + b"\n")
            return
        last = (len(content) - 1) // CHUNK
        self.partials += last
        self.chunked_lines += 1
        for n in range(last + 1):
            tag = b" F " if n == last else b" P "
            self.records.append(self._stamp() + stream + tag + content[n * CHUNK:(n + 1) * CHUNK] + b"\n")

    def traceback(self) -> None:
        """An ERROR line from the KServe SDK, then a traceback on stderr: two documents."""
        rng = self.rng
        self.line(b" stderr", b"%s 1 kserve ERROR [errors.py:generic_exception_handler():%d] Exception on %s"
                  % (self._app_time(), rng.randrange(40, 120), PATHS[0] % self.isvc))
        frames = TRACEBACKS[rng.randrange(len(TRACEBACKS))]
        self.documents += 1
        for frame in frames:
            self.records.append(self._stamp() + b" stderr F " + frame + b"\n")
        self.open_traceback = True

    def crash(self) -> None:
        """The container's last words before it dies: an exception, then the server gives up."""
        self.traceback()
        self.close_traceback(b"%s 1 kserve CRITICAL [model_server.py:start():%d] Model server exiting: unrecoverable error"
                             % (self._app_time(), self.rng.randrange(300, 340)))

    def close_traceback(self, content: bytes) -> None:
        # A file never ends inside a traceback: a grouped traceback is complete only when the
        # next line arrives, and a collector may rightly wait for it at the end of a live file.
        self.open_traceback = False
        self.line(b" stderr", content)

    def _sdk_message(self) -> bytes:
        rng = self.rng
        k = rng.randrange(5)
        if k == 0:
            return b"[model_server.py:register_model():402] Registering model: %s" % self.isvc
        if k == 1:
            return b"[model.py:predict():%d] Predicting on %d instances" % (rng.randrange(40, 500), rng.randrange(1, 64))
        if k == 2:
            return b"[dataplane.py:infer():%d] Inference request for model %s" % (rng.randrange(280, 330), self.isvc)
        if k == 3:
            return b"[model_repository.py:update():%d] Model %s is ready" % (rng.randrange(40, 80), self.isvc)
        return b"[batcher.py:run():%d] Flushing batch of %d requests" % (rng.randrange(90, 140), rng.randrange(1, 32))

    # one logical line of each container kind
    def predictor_line(self) -> None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.36:
            self.line(b" stderr", b"%s 1 kserve INFO %s" % (self._app_time(), self._sdk_message()))
        elif roll < 0.66:
            path = PATHS[rng.randrange(len(PATHS))]
            path = path % self.isvc if b"%" in path else path
            if roll < 0.5:
                self.line(b" stdout", b'%s 1 uvicorn.access INFO:     10.%d.%d.%d:%d 1 - "POST %s HTTP/1.1" 200 OK'
                          % (self._app_time(), rng.randrange(256), rng.randrange(256), rng.randrange(256),
                             rng.randrange(30000, 61000), path))
            else:
                self.line(b" stdout", b'INFO:     10.%d.%d.%d:%d - "POST %s HTTP/1.1" 200 OK'
                          % (rng.randrange(256), rng.randrange(256), rng.randrange(256), rng.randrange(30000, 61000), path))
        elif roll < 0.84:
            self.line(b" stdout", b'{"time":"%s","level":"INFO","message":"prediction served","request_id":"%016x",'
                      b'"latency_ms":%.2f}' % (self._app_time(), rng.getrandbits(64), rng.uniform(0.5, 80.0)))
        elif roll < 0.9988:
            self.line(b" stderr", b"%s 1 kserve.trace requestId: %016x, preprocess_ms: %.3f, explain_ms: 0, "
                      b"predict_ms: %.3f, postprocess_ms: %.3f"
                      % (self._app_time(), rng.getrandbits(64), rng.uniform(0, 2), rng.uniform(1, 60), rng.uniform(0, 1)))
        elif roll < 0.99975:
            self.traceback()
        else:
            self.line(b" stdout", self.big)

    def agent_line(self) -> None:
        rng = self.rng
        micros = self.ts_ns // 1000 % 1_000_000
        if rng.random() < 0.8:
            self.line(b" stderr", AGENT_MESSAGES[0] % (self._sec, micros, rng.getrandbits(64)))
        else:
            self.line(b" stderr", AGENT_MESSAGES[1] % (self._sec, micros, rng.getrandbits(64), rng.randrange(1, 64)))

    def storage_line(self, n: int) -> None:
        rng = self.rng
        uri = b"s3://models/%s/%d" % (self.isvc, n % 7)
        if n % 3 == 0:
            self.line(b" stderr", b"%s 1 kserve INFO [storage.py:download():%d] Copying contents of %s to local"
                      % (self._app_time(), rng.randrange(60, 90), uri))
        elif n % 3 == 1:
            self.line(b" stderr", b"%s 1 kserve INFO [storage.py:_download_s3():%d] Downloaded object %s/part-%05d "
                      b"to /mnt/models/part-%05d" % (self._app_time(), rng.randrange(180, 260), uri, n, n))
        else:
            self.line(b" stderr", b"%s 1 kserve INFO [storage.py:download():%d] Successfully copied %s to /mnt/models"
                      % (self._app_time(), rng.randrange(90, 110), uri))

    def fill(self, records: int) -> None:
        kind = self.spec.container
        n = 0
        while len(self.records) < records:
            if kind == "agent":
                self.agent_line()
            elif kind == "storage-initializer":
                self.storage_line(n)
            else:
                self.predictor_line()
            n += 1
        if self.open_traceback:
            self.close_traceback(b"%s 1 kserve INFO [model_server.py:predict():%d] Recovered; serving %s"
                                 % (self._app_time(), self.rng.randrange(300, 340), self.isvc))
