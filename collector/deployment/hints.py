"""What to do next: one line of advice derived purely from a deployment's state.

Why: the human output of ``servelog status`` should end with the next useful move, not leave the
user to guess (the issue's "good terminal manners"). The advice follows the troubleshooting guides
the project grew from: seed 004's steps for an OOM kill (check the memory limit, then the model's
memory use; how often it was killed is counted from evidence with times, :mod:`collector.deployment.oom`),
for probe failures (model size and initialisation, the model's logs) and for a missing
image (name and tag, registry, a manual pull); seed 000's order of logs (transient logs from the
running components, historical ones from OpenSearch when nothing runs). Commands are spelled with
the deployment's own name and namespace so they can be pasted.
"""

from __future__ import annotations

import re

from collector.deployment.model import ConditionStatus, ConditionType, DeploymentState, Failure, Status
from collector.deployment.oom import OomKills, how_often_oom
from collector.deployment.pods import CONFIG_ERRORS, IMAGE_ERRORS, UNSCHEDULABLE

_INSUFFICIENT = re.compile(r"Insufficient ([\w./-]+)")


def _instances(count: int) -> str:
    return f"{count} instance{'s' if count != 1 else ''}"


def _logs(state: DeploymentState, failure: Failure | None, *, previous: bool = False, source: str = "") -> str:
    parts = [f"servelog logs {state.serving_name}"]
    if state.namespace:
        parts.append(f"-n {state.namespace}")
    if failure and failure.component:
        parts.append(f"--component {failure.component}")
    if failure and failure.container:
        parts.append(f"--container {failure.container}")
    if previous:
        parts.append("--previous")
    if source:
        parts.append(f"--source {source}")
    return " ".join(parts)


def _oom(state: DeploymentState, failure: Failure, oom: OomKills | None, now_ns: int) -> str:
    who = failure.container or "the model server"
    limit = f"its limit is {failure.memory_limit}" if failure.memory_limit else "it has no memory limit (the node ran out)"
    return (f"{who} was {how_often_oom(oom, now_ns=now_ns, last_known=failure.time)}: {limit}. Raise "
            f"resources.limits.memory of the {failure.component or 'predictor'} or make the model use less memory")


def _failed(state: DeploymentState, failure: Failure | None, oom: OomKills | None, now_ns: int) -> str:
    condition = state.condition
    reason = failure.reason if failure else ""
    if reason == "OOMKilled" and failure is not None:
        return _oom(state, failure, oom, now_ns)
    if condition.type is ConditionType.SCHEDULED or reason in UNSCHEDULABLE:
        short = sorted(set(_INSUFFICIENT.findall(condition.reason)))
        what = f"enough free {' and '.join(short)}" if short else "room for it"
        return (f"No node has {what} for an instance: lower what it requests, or add capacity or a node matching "
                "its selectors and tolerations (`kubectl describe nodes` shows what is allocatable)")
    if reason in IMAGE_ERRORS or (condition.type is ConditionType.INITIALIZED and "image" in condition.reason.lower()):
        image = failure.image if failure is not None else None
        check = (f": `docker manifest inspect {image}` (or `crane manifest {image}`) shows whether it exists"
                 if image else "; try pulling it by hand")
        return ("Check the image name and tag, that the registry has it and is reachable from the cluster, "
                f"and the pull secrets{check}")
    if reason in CONFIG_ERRORS:
        return "A secret or config map the container needs is missing or lacks a key: create it, or fix the reference"
    if condition.type is ConditionType.INITIALIZED:
        return f"Check the model's storage URI and its credentials, then read what it printed: {_logs(state, failure)}"
    if reason == "LivenessProbeFailed":
        return ("The liveness probe kills the model server before it is up: check the model's size and how long "
                f"it takes to load (give the probe a longer initial delay), then read its logs: "
                f"{_logs(state, failure, previous=True)}")
    if condition.type is ConditionType.STARTED:
        return f"Read what it printed before it stopped: {_logs(state, failure, previous=True)}"
    if condition.type is ConditionType.READY and "connectivity" in condition.reason:
        return ("The instances run but traffic cannot reach them: check the ingress gateway, the Knative route and "
                "the InferenceService's events (`kubectl describe inferenceservice`)")
    if condition.type is ConditionType.READY and "probe" in condition.reason:
        return ("The readiness probe never passed, so the controller gave up: check the model's size and how long it "
                f"takes to load, and that it listens on the probed port; read its logs: {_logs(state, failure)}")
    return f"Read its logs: {_logs(state, failure)}"


def next_step(state: DeploymentState, *, now_ns: int, oom: OomKills | None = None, old_serving: int = 0) -> str:
    """The advice line for a state; ``oom`` the OOM kills with times of the failing container
    (:func:`collector.deployment.oom.oom_kills`), for "N times in the last M minutes"."""
    failure = state.last_failure
    status, condition = state.status, state.condition
    if status is Status.FAILED:
        advice = _failed(state, failure, oom, now_ns)
        if old_serving:
            advice += f" (the previous revision still serves with {_instances(old_serving)})"
        return advice
    if status is Status.IDLE:
        return (f"Scaled to zero: the first request starts an instance (cold start); until then there are no "
                f"transient logs, read the historical ones: {_logs(state, None, source='opensearch')}")
    if status in (Status.STOPPED, Status.CREATED):
        return f"Not running: start it to serve; past logs are in OpenSearch: {_logs(state, None, source='opensearch')}"
    if status is Status.STOPPING:
        return "Instances are shutting down; run again to see it stopped"
    if condition.type is ConditionType.READY and condition.status is ConditionStatus.UNKNOWN and "probe" in condition.reason:
        return (f"The readiness probe fails: the model may still be loading (check its size), or it listens "
                f"elsewhere; follow its logs: {_logs(state, None)} --follow")
    if status is Status.UPDATING and condition.status is ConditionStatus.FALSE:
        serving = f"; the previous revision still serves with {_instances(old_serving)}" if old_serving else ""
        return f"The rollout is blocked{serving}. {_failed(state, failure, oom, now_ns)}"
    if status is Status.UPDATING:
        serving = f" while the previous revision serves ({_instances(old_serving)})" if old_serving else ""
        return (f"A new revision is rolling out{serving}, now at {condition.type} {condition.status}; "
                f"follow it: {_logs(state, None)} --follow")
    if status is Status.STARTING:
        return f"In progress ({condition.type} {condition.status}); follow it: {_logs(state, None)} --follow"
    short = [c for c in state.components if c.running < c.desired]
    if short and failure is not None:
        c = short[0]
        advice = (_oom(state, failure, oom, now_ns) if failure.reason == "OOMKilled"
                  else f"read what it printed: {_logs(state, failure, previous=True)}")
        return f"Serving with {c.running} of {c.desired} {c.name} instances; {advice}"
    if failure is not None and failure.reason == "OOMKilled" and failure.restarts:
        return _oom(state, failure, oom, now_ns) + " (it is serving again for now)"
    return f"Serving; follow its logs: {_logs(state, None)} --follow"
