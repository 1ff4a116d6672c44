"""Class roles (gloved hand, bare hand, context) and the per-frame compliance verdict."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """What a detected class means for glove compliance."""

    PROTECTED = "protected"  # a gloved hand
    VIOLATION = "violation"  # a bare hand
    CONTEXT = "context"  # head, person, anything else


class Verdict(StrEnum):
    COMPLIANT = "compliant"
    VIOLATION = "violation"
    NO_HANDS = "no hands seen"


_PROTECTED_NAMES = {"glove", "gloves", "gloved_hand", "glove_blue", "glove_white",
                    "glove_steel", "glove_steel_b"}
_VIOLATION_NAMES = {"hand", "hands", "no_glove", "no-glove", "bare_hand", "bare-hand",
                    "bare hand", "nogloves", "no_gloves"}


def default_role(name: str) -> Role:
    """Role implied by a class name (``Glove_Blue`` -> protected, ``no_glove`` -> violation)."""
    key = name.strip().lower()
    if key in _VIOLATION_NAMES or key.startswith(("no_glove", "no-glove", "bare")):
        return Role.VIOLATION
    if key in _PROTECTED_NAMES or key.startswith("glove"):
        return Role.PROTECTED
    return Role.CONTEXT


@dataclass(frozen=True)
class ClassRoles:
    """The role of each class id of one model."""

    names: Mapping[int, str]
    roles: Mapping[int, Role]

    @classmethod
    def from_names(cls, names: Mapping[int, str],
                   overrides: Mapping[str, Role | str] | None = None) -> ClassRoles:
        """Roles from class names, with optional overrides keyed by class name."""
        overrides = {k: Role(v) for k, v in (overrides or {}).items()}
        roles = {i: overrides.get(n, default_role(n)) for i, n in names.items()}
        return cls(names=dict(names), roles=roles)

    def role_of(self, class_id: int) -> Role:
        return self.roles.get(class_id, Role.CONTEXT)

    def ids_with(self, role: Role) -> list[int]:
        return [i for i, r in self.roles.items() if r is role]

    def as_dict(self) -> dict[str, str]:
        """``{class name: role}``, for storing with a model or a session."""
        return {self.names[i]: str(r) for i, r in self.roles.items()}


@dataclass(frozen=True)
class FrameVerdict:
    """Verdict for one image or video frame, with the counts it was judged from."""

    verdict: Verdict
    protected: int
    violation: int
    context: int

    @property
    def hands(self) -> int:
        return self.protected + self.violation


def judge(class_ids: Iterable[int], roles: ClassRoles) -> FrameVerdict:
    """A frame is a violation if any bare hand is seen, compliant if only gloved hands are."""
    counts = {Role.PROTECTED: 0, Role.VIOLATION: 0, Role.CONTEXT: 0}
    for cid in class_ids:
        counts[roles.role_of(cid)] += 1
    if counts[Role.VIOLATION]:
        verdict = Verdict.VIOLATION
    elif counts[Role.PROTECTED]:
        verdict = Verdict.COMPLIANT
    else:
        verdict = Verdict.NO_HANDS
    return FrameVerdict(verdict, counts[Role.PROTECTED], counts[Role.VIOLATION],
                        counts[Role.CONTEXT])
