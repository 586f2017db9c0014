"""The sink's own ceiling: documents/s it absorbs from trivial clients replaying one servelog-shaped body.

    python -m bench.sink --measure 5           # 2 clients, 5000-document bodies, servelog's filter_path
    python -m bench.sink --measure 5 --full    # without filter_path: full answers (Fluent Bit's case)

If the ceiling is far above a collector's rate, the sink is not what limits that collector.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time


def sample_body(docs: int) -> bytes:
    """A bulk body shaped like servelog's: create actions with 27-char ids, ~15-field sources."""
    pairs = []
    for n in range(docs):
        pairs.append(b'{"create":{"_index":"serving-logs-team-a-2026.11.24","_id":"%027d"}}\n' % n)
        pairs.append(b'{"timestamp":"2026-11-24T09:00:00.123456789Z","message":"2026-11-24 09:00:00.123 1 kserve INFO '
                     b'[model.py:predict():42] Predicting on 8 instances","stream":"stderr","level":"info",'
                     b'"component":"predictor","container_name":"kserve-container","serving_name":"sklearn-iris",'
                     b'"model_name":"sklearn-iris","model_version":"1","namespace":"team-a","pod_name":'
                     b'"sklearn-iris-predictor-00001-deployment-6d4c5f7b9c-x2x9p","pod_uid":'
                     b'"0f1e2d3c-1111-2222-3333-444455556666","node_name":"bench","restart_count":0,'
                     b'"metadata_source":"path"}\n')
    return b"".join(pairs)


SERVELOG_BULK_PATH = "/_bulk?filter_path=took,errors,items.*.status,items.*.error"


def _client(port: int, body: bytes, docs: int, deadline: float, sent: list[int], path: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    count = 0
    try:
        while time.perf_counter() < deadline:
            connection.request("POST", path, body=body,
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            count += docs
    finally:
        connection.close()
        sent.append(count)


def measure(seconds: float, *, docs: int = 5000, clients: int = 2, full: bool = False) -> dict[str, float]:
    """Start a sink process and feed it from ``clients`` threads replaying one body; documents/s absorbed.

    ``full``: no ``filter_path``, so every answer carries every item in full (what Fluent Bit asks for)."""
    proc = subprocess.Popen([sys.executable, "-m", "bench.sink", "--port", "0"], stdout=subprocess.PIPE,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().split()[1])
        body = sample_body(docs)
        sent: list[int] = []
        started = time.perf_counter()
        threads = [threading.Thread(target=_client, args=(port, body, docs, started + seconds, sent,
                                                     "/_bulk" if full else SERVELOG_BULK_PATH)) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/_stats_fake")
        received = json.loads(connection.getresponse().read())
        connection.close()
        assert received["documents"] == sum(sent), (received, sum(sent))
        return {"documents_per_second": sum(sent) / elapsed, "mib_per_second": received["bytes"] / elapsed / 2**20,
                "clients": clients, "docs_per_request": docs, "bytes_per_doc": len(body) / docs}
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
