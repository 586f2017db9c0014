"""``servelog logs SERVING --source kubernetes --follow``: every line of every component, once, as it is printed.

One thread per container instance follows its ``pods/log`` (:class:`collector.query.transient.StreamReader`):

- a **dropped stream** (a proxy's idle timeout, an API server restart) is resumed after a bounded
  backoff at the whole second of the last position, with the identities of that second recomputed
  and skipped through the last line printed, so lines sharing the boundary timestamp are printed
  once (see :mod:`collector.query.transient`);
- a stream the server **ends** is resumed while its instance still runs (the pod says so), and
  finished when the instance has ended (its log was read to the end);
- the deployment's pods are **listed again** every ``poll_seconds``: a new replica, a new revision's
  pods, a restarted container's new instance are followed from their first line.

Lines of all instances go through one queue to the caller's thread, which prints them in timestamp
order within a short reorder delay (``merge_delay``): lines that arrive together (the first tail of
each instance, a burst) come out merged by timestamp, later ones as they come. A traceback the model
server printed last stays open in its assembler until the next line; after ``idle_flush`` seconds
without one it is printed as it is.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from collector.errors import KubeError, KubeRejected
from collector.query.transient import Emit, Hit, LogStreamer, Stream, StreamReader, hit_ns
from collector.sources.kubernetes.targets import targets_of_pod
from collector.transforms.assembler import AssemblerOptions


class PodReader(LogStreamer, Protocol):
    def get_pod(self, namespace: str, name: str) -> dict[str, Any]: ...


class TransientFollower:
    """Follows the streams ``list_streams`` returns (called at start and every ``poll_seconds``) until ``stop``."""

    def __init__(self, client: PodReader, list_streams: Callable[[], Sequence[Stream]], options: AssemblerOptions,
                 emit: Emit, *, warn: Callable[[str], None], accept: Callable[[Hit], bool] = lambda _: True,
                 tail: int | None = None, since_ns: int | None = None, request_timeout: float = 60.0,
                 poll_seconds: float = 2.0, merge_delay: float = 0.3, idle_flush: float = 2.0,
                 stop: threading.Event | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.list_streams, self.options, self.emit = client, list_streams, options, emit
        self.warn, self.accept, self.tail, self.since_ns = warn, accept, tail, since_ns
        self.request_timeout, self.poll_seconds, self.merge_delay, self.idle_flush = (
            request_timeout, poll_seconds, merge_delay, idle_flush)
        self.stop = stop or threading.Event()
        self.clock = clock
        self._queue: queue.Queue[tuple[float, Hit]] = queue.Queue()
        self._readers: dict[str, StreamReader] = {}
        self._threads: list[threading.Thread] = []
        self._order = itertools.count()
        self._warned: set[str] = set()

    # -- the caller's thread -----------------------------------------------------------------------
    def run(self, initial: Sequence[Stream] | None = None) -> None:
        """Follow until ``stop`` is set (or KeyboardInterrupt); what is buffered is printed before returning."""
        heap: list[tuple[int, int, Hit]] = []
        arrived: dict[int, float] = {}
        self._start(self.list_streams() if initial is None else initial, first=True)
        next_poll = self.clock() + self.poll_seconds
        try:
            while not self.stop.is_set():
                self._collect(heap, arrived, timeout=0.1)
                self._print(heap, arrived, until=self.clock() - self.merge_delay)
                for reader in list(self._readers.values()):
                    reader.flush_idle(self.idle_flush)
                if self.clock() >= next_poll:
                    self._poll()
                    next_poll = self.clock() + self.poll_seconds
        finally:
            self.stop.set()
            for reader in list(self._readers.values()):
                reader.abort()
            for thread in self._threads:
                thread.join(timeout=5)
            self._collect(heap, arrived, timeout=0)
            self._print(heap, arrived, until=None)

    def _collect(self, heap: list[tuple[int, int, Hit]], arrived: dict[int, float], *, timeout: float) -> None:
        try:
            item = self._queue.get(timeout=timeout) if timeout else self._queue.get_nowait()
        except queue.Empty:
            return
        while True:
            when, hit = item
            order = next(self._order)
            arrived[order] = when
            heapq.heappush(heap, (hit_ns(hit), order, hit))
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return

    def _print(self, heap: list[tuple[int, int, Hit]], arrived: dict[int, float], *, until: float | None) -> None:
        while heap and (until is None or arrived[heap[0][1]] <= until):
            _, order, hit = heapq.heappop(heap)
            del arrived[order]
            if self.accept(hit):
                self.emit(hit)

    def _poll(self) -> None:
        try:
            streams = self.list_streams()
        except KubeError as exc:
            self._warn_once("list", f"the deployment's pods cannot be listed: {exc}; following what was found")
            return
        self._start(streams, first=False)

    def _warn_once(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.warn(text)

    def _start(self, streams: Sequence[Stream], *, first: bool) -> None:
        for stream in streams:
            if stream.key in self._readers:
                continue  # being followed, or read to its end: an instance is read once
            # an instance found later is read from its first line: nothing of it was shown yet
            reader = StreamReader(self.client, stream, self.options, self._enqueue, tail=self.tail if first else None,
                                  since_ns=self.since_ns if first else None, request_timeout=self.request_timeout,
                                  clock=self.clock)
            self._readers[stream.key] = reader
            thread = threading.Thread(target=self._follow, args=(reader,), name=f"logs:{stream.label}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _enqueue(self, hit: Hit) -> None:
        self._queue.put((self.clock(), hit))

    # -- one thread per instance -------------------------------------------------------------------
    def _follow(self, reader: StreamReader) -> None:
        backoff = 0.5
        while not self.stop.is_set():
            try:
                reader.read(follow=True)
            except KubeRejected as exc:
                if exc.status not in (400, 404):  # 400/404: the instance or its pod is gone
                    self.warn(f"{reader.stream.label}: {exc}")
                return
            except KubeError as exc:
                self._warn_once(f"drop:{reader.stream.key}", f"{reader.stream.label}: stream interrupted ({exc}); resuming")
                if self.stop.wait(backoff):
                    return
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.5
            if self.stop.is_set() or not self._still_running(reader.stream):
                return
            self.stop.wait(min(self.poll_seconds, 1.0))  # the server ended a follow of a running instance: resume

    def _still_running(self, stream: Stream) -> bool:
        if stream.target.finished:
            return False
        try:
            pod = self.client.get_pod(stream.target.namespace, stream.target.pod_name)
        except KubeRejected:
            return False
        except KubeError:
            return True  # cannot tell now: try again
        meta: Mapping[str, Any] = pod.get("metadata") or {}
        if meta.get("uid") != stream.target.pod_uid:
            return False  # a new pod under the same name
        return any(t.key == stream.key and not t.finished for t in targets_of_pod(pod))
