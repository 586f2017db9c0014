"""A deployment's life from its history documents: folded entries, and the status transitions they imply.

The documents are ``serving-events-*`` ``_source`` objects (``/work/brief/history-contract.md``:
``timestamp``, ``event_kind``, ``reason``, ``type``, ``message``, ``count``, ``exit_code``,
``condition_type``/``condition_status``, ``involved_kind``/``involved_name``, the model-aware
fields, ``doc_id``). Everything here is pure: the reader queries, this module orders and folds.

**Folding.** Kubernetes re-reports a repeating event with a growing ``count`` (core/v1 ``count``,
``series.count``); the collector indexes each occurrence. Documents of kind ``event`` with the same
(involved object, reason, message) become one entry ("Back-off restarting failed container ×37"):
its count is the sum over runs of the counter (a counter that drops back means a new Event object
after the old one expired: its occurrences add up), or the number of documents where no count was
given; its time is the newest occurrence, ``first_time`` the oldest. Other kinds fold only runs of
identical documents about the same subject (same pod, container, kind and condition type), so a
flapping ``Ready`` stays in order (False, True, False are three entries) while five identical
OOM kills of one container are one entry ×5. Restart documents fold whatever their text.

**Transitions** (Merlin's History view): the documents replayed oldest first through
:func:`implied_status`; a transition is recorded whenever the status changes. When the history has
InferenceService documents (``isvc_condition``, ``model_status``, ``revision``), its ``Ready``
condition decides RUNNING and FAILED; a ``revision`` document starts an update (or a start) only when
its latest created revision is not the latest ready one, and one saying they are the same again ends
an update (RUNNING: the new revision serves); a pod's failure only marks the deployment FAILED while it
is not serving (one replica's OOM kill does not fail a serving deployment; KServe's Ready will say
if it does). Without them, pod documents decide. IDLE cannot be told from history documents (a
scale to zero leaves no document) and is never derived here.

Both lists come out newest first, sorted by (``timestamp``, ``doc_id``).
"""  # noqa: RUF002

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from collector.deployment.model import History, HistoryEntry, Status, Transition
from collector.deployment.objects import as_int, one_line, time_ns
from collector.deployment.pods import CONFIG_ERRORS, FAILURE_EVENTS, IMAGE_ERRORS, START_ERRORS

ISVC_KINDS = frozenset({"isvc_condition", "model_status", "revision"})
MODEL_FAILURES = frozenset({"ModelLoadFailed", "RuntimeUnhealthy", "NoSupportingRuntime", "RuntimeNotRecognized",
                            "RuntimeDisabled", "InvalidPredictorSpec", "BlockedByFailedLoad", "FailedToLoad"})
SERVING = frozenset({Status.RUNNING, Status.IDLE})
FOLD_MARK = "\N{MULTIPLICATION SIGN}"  # before the count of occurrences an entry folds
Doc = Mapping[str, Any]


def _text(doc: Doc, key: str) -> str:
    value = doc.get(key)
    return "" if value is None else str(value)


def ordered(docs: Iterable[Doc]) -> list[Doc]:
    """Documents oldest first by (timestamp, doc_id); documents without a readable timestamp are dropped."""
    usable = [d for d in docs if isinstance(d, Mapping) and time_ns(d.get("timestamp")) is not None]
    return sorted(usable, key=lambda d: (time_ns(d.get("timestamp")) or 0, _text(d, "doc_id")))


def _what(doc: Doc) -> str:
    condition = _text(doc, "condition_type")
    if condition:
        what = f"{condition}={_text(doc, 'condition_status') or 'Unknown'}"
        return f"{what} {_text(doc, 'reason')}" if doc.get("reason") else what
    return _text(doc, "reason") or _text(doc, "event_kind")


def _entry(doc: Doc, count: int = 1, first_time: str | None = None) -> HistoryEntry:
    message = _text(doc, "message")
    if doc.get("exit_code") is not None and f"exit {doc['exit_code']}" not in message:
        message = f"exit {doc['exit_code']}" + (f": {message}" if message else "")
    return HistoryEntry(time=_text(doc, "timestamp"), kind=_text(doc, "event_kind"), what=_what(doc), message=message,
                        count=count, first_time=first_time or _text(doc, "timestamp"),
                        model_version=_text(doc, "model_version") or None, component=_text(doc, "component") or None,
                        container=_text(doc, "container_name") or None, pod=_text(doc, "pod_name") or None,
                        type=_text(doc, "type") or None)


@dataclass(slots=True)
class _EventFold:
    """Occurrences of one event key: counter runs and the time span."""

    first: Doc
    last: Doc
    total: int = 0
    run_max: int = 0
    docs: int = 0
    counted: bool = False
    first_seen: str = field(default="")

    def add(self, doc: Doc) -> None:
        self.docs += 1
        self.last = doc
        count = as_int(doc.get("count"))
        if count is None:
            return
        self.counted = True
        if count < self.run_max:  # the counter started over: a new Event object, its occurrences add up
            self.total += self.run_max
            self.run_max = count
        else:
            self.run_max = count

    @property
    def count(self) -> int:
        return self.total + self.run_max if self.counted else self.docs


def _event_key(doc: Doc) -> tuple[str, ...]:
    return ("event", _text(doc, "involved_kind"), _text(doc, "involved_name") or _text(doc, "pod_name"),
            _text(doc, "reason"), _text(doc, "message"))


def _subject(doc: Doc) -> tuple[str, ...]:
    return (_text(doc, "event_kind"), _text(doc, "pod_name") or _text(doc, "involved_name"),
            _text(doc, "container_name"), _text(doc, "condition_type"))


def _same(a: Doc, b: Doc) -> bool:
    keys: tuple[str, ...] = ("reason", "condition_status", "exit_code", "type")
    if _text(a, "event_kind") != "restart":
        keys = (*keys, "message")
    return all(_text(a, k) == _text(b, k) for k in keys)


def fold_history(docs: Iterable[Doc]) -> list[HistoryEntry]:
    """The deployment's life, newest first, repeated events folded (rules in the module docstring)."""
    folds: dict[tuple[str, ...], _EventFold] = {}
    runs: dict[tuple[str, ...], list[Any]] = {}  # subject -> [first doc, last doc, count, sort key]
    entries: list[tuple[tuple[int, str], HistoryEntry]] = []
    for doc in ordered(docs):
        key = (time_ns(doc.get("timestamp")) or 0, _text(doc, "doc_id"))
        if _text(doc, "event_kind") == "event":
            fold = folds.get(_event_key(doc))
            if fold is None:
                fold = folds[_event_key(doc)] = _EventFold(first=doc, last=doc,
                                                           first_seen=_text(doc, "first_timestamp") or _text(doc, "timestamp"))
            fold.add(doc)
            continue
        subject = _subject(doc)
        run = runs.get(subject)
        if run is not None and _same(run[1], doc):
            run[1], run[2], run[3] = doc, run[2] + 1, key
            continue
        if run is not None:
            entries.append((run[3], _entry(run[1], run[2], _text(run[0], "timestamp"))))
        runs[subject] = [doc, doc, 1, key]
    for run in runs.values():
        entries.append((run[3], _entry(run[1], run[2], _text(run[0], "timestamp"))))
    for fold in folds.values():
        last_key = (time_ns(fold.last.get("timestamp")) or 0, _text(fold.last, "doc_id"))
        entries.append((last_key, _entry(fold.last, fold.count, fold.first_seen)))
    return [entry for _, entry in sorted(entries, key=lambda pair: pair[0], reverse=True)]


def _failure_message(doc: Doc) -> str:
    who = _text(doc, "container_name") or _text(doc, "pod_name") or _text(doc, "involved_name")
    reason = _text(doc, "reason")
    exit_code = f" (exit {doc['exit_code']})" if doc.get("exit_code") is not None else ""
    message = _text(doc, "message")
    head = f"{who}: {reason}{exit_code}" if who else f"{reason}{exit_code}"
    return one_line(f"{head}: {message}" if message else head)


def _pod_failure(doc: Doc) -> bool:
    kind, reason = _text(doc, "event_kind"), _text(doc, "reason")
    if kind == "pod_condition":
        return _text(doc, "condition_type") == "PodScheduled" and _text(doc, "condition_status") == "False"
    if kind == "waiting":
        return reason in IMAGE_ERRORS | CONFIG_ERRORS | START_ERRORS
    if kind == "termination":
        return (as_int(doc.get("exit_code")) or 0) != 0 or reason in ("OOMKilled", "Error")
    if kind == "event":
        return _text(doc, "type") == "Warning" and reason in FAILURE_EVENTS
    return False


def _pod_progress(doc: Doc, current: Status | None, has_isvc: bool) -> tuple[Status, str] | None:
    kind, condition, status = _text(doc, "event_kind"), _text(doc, "condition_type"), _text(doc, "condition_status")
    starting = current in (None, Status.STOPPED, Status.CREATED)
    if starting and (_text(doc, "reason") == "Scheduled" or (condition == "PodScheduled" and status == "True")):
        return Status.STARTING, one_line(_text(doc, "message") or "Scheduled")
    if not has_isvc and kind == "pod_condition" and condition == "Ready" and status == "True":
        return Status.RUNNING, one_line(_text(doc, "message") or "Deployment is ready")
    return None


def _rolling_out(doc: Doc) -> bool:
    """A ``revision`` document of a newly created revision that is not ready yet (``revision`` is the latest
    created, ``ready_revision`` the latest ready); documents without those fields go by their reason."""
    created, ready = _text(doc, "revision"), _text(doc, "ready_revision")
    if created:
        return created != ready
    return _text(doc, "reason") not in ("RevisionReady", "TrafficSplit")


def implied_status(doc: Doc, current: Status | None, *, has_isvc: bool, served: bool = False) -> tuple[Status, str] | None:
    """The status a document moves the deployment to (None: no change).

    ``current`` is the status so far, ``served`` whether the deployment was ever RUNNING or IDLE (a
    change after that is an update, before it a start).
    """
    kind, condition, status = _text(doc, "event_kind"), _text(doc, "condition_type"), _text(doc, "condition_status")
    message = one_line(_text(doc, "message"))
    moving = Status.UPDATING if served and current is not Status.STOPPED else Status.STARTING
    if kind == "isvc_condition" and condition == "Stopped":
        if status == "True":
            return Status.STOPPED, message or "Deployment is stopped"
        return (Status.STARTING, message or "Deployment is starting") if current is Status.STOPPED else None
    if kind == "isvc_condition" and condition == "Ready":
        if status == "True":
            return Status.RUNNING, message or "Deployment is ready"
        if status == "False":
            return Status.FAILED, message or _text(doc, "reason") or "Deployment is not ready"
        return moving, message or f"Deployment is {moving.lower()}"
    if kind == "revision":
        if not _rolling_out(doc):  # the latest created revision is the ready one: a rollout ended
            return (Status.RUNNING, message or "The new revision is ready") if current is Status.UPDATING else None
        if current in (Status.STARTING, Status.UPDATING):
            return None  # already on its way
        return moving, message or "A new revision is rolling out"
    if kind == "model_status" and (_text(doc, "reason") in MODEL_FAILURES or _text(doc, "type") == "Warning"):
        return Status.FAILED, _failure_message(doc)
    if _pod_failure(doc):
        if has_isvc and current in SERVING:
            return None
        return Status.FAILED, _failure_message(doc)
    return _pod_progress(doc, current, has_isvc)


def status_transitions(docs: Iterable[Doc]) -> list[Transition]:
    """The status changes the documents imply, newest first (rules in the module docstring)."""
    history = ordered(docs)
    has_isvc = any(_text(d, "event_kind") in ISVC_KINDS for d in history)
    current: Status | None = None
    version: str | None = None
    found: list[Transition] = []
    served = False
    for doc in history:
        implied = implied_status(doc, current, has_isvc=has_isvc, served=served)
        doc_version = _text(doc, "model_version") or None
        if implied is None and doc_version and version and doc_version != version and current in SERVING:
            implied = Status.UPDATING, f"model version {doc_version} is rolling out (was {version})"
        version = doc_version or version
        if implied is not None and implied[0] is not current:
            current = implied[0]
            served = served or current in SERVING
            found.append(Transition(time=_text(doc, "timestamp"), status=implied[0], message=implied[1]))
    return found[::-1]


def deployment_history(docs: Iterable[Doc], *, serving_name: str = "", namespace: str = "") -> History:
    """Entries and transitions of one deployment's documents, newest first."""
    history = ordered(docs)
    first = history[0] if history else {}
    return History(serving_name=serving_name or _text(first, "serving_name"),
                   namespace=namespace or _text(first, "namespace"),
                   entries=tuple(fold_history(history)), transitions=tuple(status_transitions(history)))


def with_count_suffix(entry: HistoryEntry) -> str:
    """The entry's message with its fold count: ``Back-off restarting failed container ×37``."""  # noqa: RUF002
    return f"{entry.message} {FOLD_MARK}{entry.count}" if entry.count > 1 else entry.message
