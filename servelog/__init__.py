"""servelog from Python: troubleshoot a model deployment from a notebook.

    import servelog

    d = servelog.deployment("fraud-detector", namespace="models")
    d.state()                                # status, condition, instances, model, last failure
    d.history()                              # status transitions and events, newest first
    d.logs(component="predictor", tail=10)   # from the running components, else OpenSearch

The distribution is ``servelog``; its code lives in the ``collector`` package, of which this module
re-exports the notebook API (:mod:`collector.notebook`) and the shapes it returns
(:mod:`collector.deployment`).
"""

from collector import __version__
from collector.deployment import (
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
    history_json,
    history_text,
    state_json,
    state_text,
)
from collector.notebook import Ambiguous, Deployment, Logs, NoCluster, NotFound, deployment

__all__ = [
    "Ambiguous",
    "ComponentState",
    "Condition",
    "ConditionStatus",
    "ConditionType",
    "Deployment",
    "DeploymentState",
    "Failure",
    "History",
    "HistoryEntry",
    "Logs",
    "NoCluster",
    "NotFound",
    "Status",
    "Transition",
    "__version__",
    "deployment",
    "history_json",
    "history_text",
    "state_json",
    "state_text",
]
