"""Settings of the history source (``history.*``), a group of :class:`collector.settings.Settings`.

Kept beside the source it configures; :mod:`collector.settings` only adds the group, so the file,
the ``SERVELOG_HISTORY__*`` environment variables and the flags of ``servelog events`` are read and
validated at start like every other setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from collector.model import DEFAULT_EVENTS_INDEX


class HistorySettings(BaseModel):
    """``servelog events``: which history to collect and where it goes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: str = Field(DEFAULT_EVENTS_INDEX, description="Target index of history documents; {date} (their UTC day) is replaced.")
    events_api: Literal["events.k8s.io", "core"] = Field(
        "events.k8s.io", description="Read Events through events.k8s.io/v1 or core/v1 (the same objects, same ids).")
    inferenceservices: bool = Field(
        True, description="Watch KServe InferenceServices (a cluster without the CRD is noticed and rechecked).")
    crd_recheck_seconds: float = Field(300.0, gt=0, description="How often a missing or forbidden CRD is looked for again.")
    lifecycle: bool = Field(True, description="Container lifecycle and pod conditions from a cluster-wide pod watch.")
    serving_only: bool = Field(True, description="Only events about model deployments (their pods and owners).")
    from_files: Path | None = Field(
        None, description="Read Event, Pod and InferenceService documents (JSON/YAML) from this directory, not the API.")

    @model_validator(mode="after")
    def _check(self) -> HistorySettings:
        problems = []
        if "{date}" not in self.index:
            problems.append("history.index must contain {date} so a document's index is a function of its timestamp")
        if self.from_files is not None and not self.from_files.is_dir():
            problems.append(f"history.from_files: no such directory {self.from_files}")
        if problems:
            raise ValueError("; ".join(problems))
        return self
