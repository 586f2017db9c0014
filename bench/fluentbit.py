"""Fluent Bit as the peer: a configuration doing servelog's work on the same corpus into the same sink.

``bench.run`` runs it when ``FLUENT_BIT_BIN`` (or ``--fluent-bit``) points at a Fluent Bit binary
(built outside this repository). Every choice is explained in ``bench/README.md``; in short:

- ``tail`` over every file of the corpus (``<root>/*/*/*.log*``: live files, rotated plain parts and
  gzipped parts, which ``in_tail`` decompresses), ``Read_From_Head On``, no ``DB`` (a fresh start, as
  servelog's fresh state directory), ``multiline.parser cri`` (containerd's ``P``/``F`` chunks merged),
  ``Path_Key`` (the file name on every record, as servelog derives fields from the path),
  ``Buffer_Chunk_Size 1M`` (servelog's ``read_chunk_bytes``), ``Buffer_Max_Size`` = servelog's
  ``pipeline.max_line_bytes`` (1 MiB); no ``Mem_Buf_Limit`` (Fluent Bit's default; optional);
- ``opensearch`` output to the loopback sink, 2 ``Workers`` (servelog's ``opensearch.workers``),
  ``Suppress_Type_Name On`` (OpenSearch 2 has no types), ``Generate_ID On`` (a deterministic ``_id``,
  a hash of the record, so a retry is a 409 as with servelog's ids), ``create`` (the default
  ``Write_Operation``, as servelog), ``Logstash_Format`` (a daily index from the record's own time, as
  servelog's ``{date}``) with nanosecond ``@timestamp`` (``Time_Key_Nanos``), ``Buffer_Size False``
  (the full ``_bulk`` answer is read: Fluent Bit sends no ``filter_path``, and a truncated answer
  fails the request), ``Retry_Limit no_limits`` (servelog never gives up a batch either).

Fluent Bit never exits by itself: it is done when the sink has received ``expected_records`` documents
(and a second passed without more).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

MAX_LINE_BYTES = 1024 * 1024  # servelog's pipeline.max_line_bytes default


def expected_records(manifest: Mapping[str, object]) -> int:
    """Documents Fluent Bit must deliver for the corpus: one per CRI record once its multiline ``cri``
    parser merged ``P`` chunks into their ``F``, per file; the ``P`` chunks a rotation cut left at the
    end of a file (their ``F`` is in the next file) are flushed as one record of their own. Traceback
    lines are one record each (no grouping)."""
    return int(str(manifest["documents_per_file"]))


def retried_chunks(log_text: str) -> int:
    """Chunk flushes Fluent Bit's log says it will retry (``[ warn] [engine] failed to flush chunk ...``)."""
    return sum(1 for line in log_text.splitlines() if "failed to flush chunk" in line or "retry in" in line)


def config(
    *,
    corpus: Path,
    port: int,
    log_file: Path,
    workers: int = 2,
    db: Path | None = None,
    mem_buf_limit: str | None = None,
    buffer_chunk_size: str = "1M",
    threaded_input: bool = False,
    flush_seconds: float = 1.0,
) -> str:
    """The classic-format configuration (``fluent-bit -c FILE``)."""
    tail = [
        ("Name", "tail"),
        ("Tag", "kube.*"),
        ("Path", f"{corpus}/*/*/*.log*"),
        ("Read_From_Head", "On"),
        ("multiline.parser", "cri"),
        ("Path_Key", "file"),
        ("Buffer_Chunk_Size", buffer_chunk_size),
        ("Buffer_Max_Size", f"{MAX_LINE_BYTES // 1024}k"),
        ("Refresh_Interval", "1"),
    ]
    if db is not None:
        tail.append(("DB", str(db)))
    if mem_buf_limit:
        tail.append(("Mem_Buf_Limit", mem_buf_limit))
    if threaded_input:
        tail.append(("Threaded", "On"))
    output = [
        ("Name", "opensearch"),
        ("Match", "*"),
        ("Host", "127.0.0.1"),
        ("Port", str(port)),
        ("Logstash_Format", "On"),
        ("Logstash_Prefix", "serving-logs"),
        ("Time_Key_Nanos", "On"),
        ("Suppress_Type_Name", "On"),
        ("Generate_ID", "On"),
        ("Write_Operation", "create"),
        ("Buffer_Size", "False"),
        ("Workers", str(workers)),
        ("Retry_Limit", "no_limits"),
    ]
    service = [
        ("Flush", f"{flush_seconds:g}"),
        ("Grace", "1"),
        ("Log_Level", "info"),
        ("Log_File", str(log_file)),
        ("HTTP_Server", "Off"),
    ]

    def section(name: str, pairs: list[tuple[str, str]]) -> str:
        width = max(len(k) for k, _ in pairs)
        return f"[{name}]\n" + "".join(f"    {k.ljust(width)} {v}\n" for k, v in pairs)

    return "\n".join([section("SERVICE", service), section("INPUT", tail), section("OUTPUT", output)])


def command(binary: str, config_file: Path) -> list[str]:
    return [binary, "-c", str(config_file)]
