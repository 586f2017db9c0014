"""Choosing the ``ism_template`` priority of servelog's retention policies so ISM accepts them (pure).

ISM refuses a policy whose ``ism_template`` overlaps another policy's at the same priority ("New
policy ... matching existing policy templates, please use a different priority than N":
index-management ``TransportIndexPolicyAction.validateISMTemplates``); two patterns overlap when
some index name matches both (``ISMTemplateService.overlapping``: their automata intersect). A
cluster often has a catch-all policy (``*`` or ``serving-*``) at the common priority 100.

- Without ``--ism-priority``, a clash moves servelog's template to the next priority that no
  overlapping template of another policy uses, above the clash: ISM applies the highest-priority
  matching template to a new index, so servelog's retention then governs servelog's indices, which
  is what installing it asks for. The report says so.
- With ``--ism-priority N`` the priority is the operator's: a clash stops setup with the exact
  conflict and the flag to change.
- An overlapping policy at a *higher* priority wins over servelog's for new indices: a warning.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from collector.errors import SetupError

Templates = Mapping[str, Sequence[Mapping[str, Any]]]
"""policy id -> its ``ism_template`` entries (``index_patterns``, ``priority``)."""


def globs_overlap(a: str, b: str) -> bool:
    """Whether some index name matches both ``*``-globs."""

    @functools.cache
    def meet(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == "*":
            return meet(i + 1, j) or (j < len(b) and meet(i, j + 1))
        if j < len(b) and b[j] == "*":
            return meet(i, j + 1) or (i < len(a) and meet(i + 1, j))
        return i < len(a) and j < len(b) and a[i] == b[j] and meet(i + 1, j + 1)

    return meet(0, 0)


def patterns_overlap(ours: Sequence[str], theirs: Sequence[str]) -> bool:
    return any(globs_overlap(a, b) for a in ours for b in theirs)


@dataclass(frozen=True, slots=True)
class PriorityChoice:
    """The policy body to install and what the report should say about its priority."""

    body: dict[str, Any]
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def _patterns(template: Mapping[str, Any]) -> list[str]:
    value = template.get("index_patterns") or []
    return [value] if isinstance(value, str) else list(value)


def choose_priority(policy_id: str, body: dict[str, Any], others: Templates, explicit: int | None) -> PriorityChoice:
    """``body`` with every ``ism_template`` at a priority ISM accepts next to ``others`` (see the module docstring)."""
    body = copy.deepcopy(body)
    notes: list[str] = []
    warnings: list[str] = []
    for template in body["policy"].get("ism_template") or []:
        ours = _patterns(template)
        wanted = int(template.get("priority", 0)) if explicit is None else explicit
        overlapping = [(other, int(t.get("priority", 0)), _patterns(t)) for other, entries in others.items()
                       if other != policy_id for t in entries if patterns_overlap(ours, _patterns(t))]
        taken = {priority for _, priority, _ in overlapping}
        clash = [(other, patterns) for other, priority, patterns in overlapping if priority == wanted]
        if clash and explicit is not None:
            described = "; ".join(f"policy {other} (index_patterns {patterns}, priority {wanted})"
                                  for other, patterns in clash)
            raise SetupError(
                f"ISM policy {policy_id}: its ism_template {ours} at priority {wanted} overlaps {described}; ISM "
                "refuses two overlapping ism_templates at one priority (index-management "
                f"TransportIndexPolicyAction.validateISMTemplates). Choose another --ism-priority (in use by "
                f"overlapping policies: {sorted(taken)})")
        chosen = wanted
        if clash:
            while chosen in taken:
                chosen += 1
            names = ", ".join(f"{other} {patterns}" for other, patterns in clash)
            notes.append(f"ISM policy {policy_id}: priority {wanted} clashes with {names}; installed at priority "
                         f"{chosen}, so servelog's retention governs new {', '.join(ours)} indices "
                         "(set --ism-priority to choose another)")
        template["priority"] = chosen
        above = [(other, priority, patterns) for other, priority, patterns in overlapping if priority > chosen]
        for other, priority, patterns in above:
            warnings.append(f"ISM policy {other} (index_patterns {patterns}, priority {priority}) outranks "
                            f"{policy_id} (priority {chosen}): new {', '.join(ours)} indices get {other}'s "
                            f"retention, not servelog's (use --ism-priority {priority + 1} to change that)")
    return PriorityChoice(body, tuple(notes), tuple(warnings))
