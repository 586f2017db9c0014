"""A model deployment's state and history, computed purely from Kubernetes objects and history documents.

This package is the I/O-free core of ``servelog status`` and ``servelog history`` (and of the
notebook API): callers fetch the InferenceService, pods, events and ``serving-events-*`` documents,
these functions decide what they mean, and the renderers print the answer.

- :func:`deployment_state` (``state``): status, condition, instances, model, last failure, next step.
- :func:`deployment_history`, :func:`fold_history`, :func:`status_transitions` (``history``).
- :func:`state_text`, :func:`state_json`, :func:`history_text`, :func:`history_json` (``render``).
"""

from collector.deployment.history import deployment_history, fold_history, status_transitions
from collector.deployment.model import (
    ComponentState,
    Condition,
    ConditionStatus,
    ConditionType,
    DeploymentState,
    Failure,
    History,
    HistoryEntry,
    Status,
    Transition,
)
from collector.deployment.render import history_json, history_text, state_json, state_text
from collector.deployment.state import deployment_state

__all__ = [
    "ComponentState",
    "Condition",
    "ConditionStatus",
    "ConditionType",
    "DeploymentState",
    "Failure",
    "History",
    "HistoryEntry",
    "Status",
    "Transition",
    "deployment_history",
    "deployment_state",
    "fold_history",
    "history_json",
    "history_text",
    "state_json",
    "state_text",
    "status_transitions",
]
