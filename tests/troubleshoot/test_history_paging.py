"""``servelog history`` reads every matching document, page after page (issue 11 review, D7c).

The review feared one page of at most 10,000 documents. The reader pages with ``search_after`` on
(``timestamp``, ``doc_id``); with a page size of 7 (the seam) and 52 documents, eight pages are asked
and every document is folded in, including several sharing one timestamp across a page boundary.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from collector.query.connections import Connections
from collector.query.history import read_history
from collector.settings import load_settings
from tests.support.opensearch_server import FakeOpenSearch

NAME, NS = "sklearn-iris", "kserve-test"


def doc(n: int) -> dict[str, Any]:
    second = n // 4  # four documents share each timestamp: page boundaries fall inside a timestamp
    return {"timestamp": f"2026-11-24T09:{second // 60:02d}:{second % 60:02d}.000000000Z", "doc_id": f"d{n:04d}",
            "event_kind": "termination", "reason": "Error", "exit_code": 1, "type": "Warning",
            "container_name": f"c{n}", "pod_name": f"p{n}", "serving_name": NAME, "namespace": NS,
            "message": f"instance {n} ended"}


def test_history_reads_more_documents_than_one_page() -> None:
    with FakeOpenSearch() as fos:
        lines = [json.dumps(x) for n in range(52) for x in ({"create": {"_index": "serving-events-2026.11.24",
                                                                         "_id": f"d{n:04d}"}}, doc(n))]
        request = urllib.request.Request(fos.url + "/_bulk?refresh=true", data=("\n".join(lines) + "\n").encode(),
                                         method="POST", headers={"Content-Type": "application/x-ndjson"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        settings = load_settings(overrides={"opensearch": {"url": fos.url}})
        with Connections(settings) as connections:
            history = read_history(connections, NAME, NS, page_size=7)
        searches = [r for r in fos.requests if r.path.endswith("/_search")]
        assert len(searches) == 8, "52 documents in pages of 7"
    assert sorted(e.message for e in history.entries) == sorted(f"exit 1: instance {n} ended" for n in range(52))
