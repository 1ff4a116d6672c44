"""Class roles: what each class of a model means for glove compliance.

A role is a property of the model's classes (a gloved hand, a bare hand, or context such as a
head). Whether a hand is *compliant* at a machine is decided by that station's rule
(:mod:`core.events.rules`), which reads these roles.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """What a detected class means for glove compliance."""

    PROTECTED = "protected"  # a gloved hand
    VIOLATION = "violation"  # a bare hand
    CONTEXT = "context"  # head, person, anything else


_PROTECTED_NAMES = {
    "glove",
    "gloves",
    "gloved_hand",
    "glove_blue",
    "glove_white",
    "glove_steel",
    "glove_steel_b",
}
_VIOLATION_NAMES = {
    "hand",
    "hands",
    "no_glove",
    "no-glove",
    "bare_hand",
    "bare-hand",
    "bare hand",
    "nogloves",
    "no_gloves",
}


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
    def from_names(
        cls, names: Mapping[int, str], overrides: Mapping[str, Role | str] | None = None
    ) -> ClassRoles:
        """Roles from class names, with optional overrides keyed by class name."""
        fixed = {k: Role(v) for k, v in (overrides or {}).items()}
        roles = {i: fixed.get(n, default_role(n)) for i, n in names.items()}
        return cls(names=dict(names), roles=roles)

    def role_of(self, class_id: int) -> Role:
        return self.roles.get(class_id, Role.CONTEXT)

    def ids_with(self, role: Role) -> list[int]:
        return [i for i, r in self.roles.items() if r is role]

    def names_with(self, role: Role) -> list[str]:
        return [self.names[i] for i in self.ids_with(role)]

    def as_dict(self) -> dict[str, str]:
        """``{class name: role}``, for storing with a model or a session."""
        return {self.names[i]: str(r) for i, r in self.roles.items()}
