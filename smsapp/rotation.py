"""Template rotation (pack §7): each contact gets one of the campaign's templates, chosen by a
hash of the contact's id, so the choice is stable (the same contact always gets the same
template of a given list) and the split is even over many contacts. The send loop chooses a
contact's sending number the same way (`stable_choice`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")

# Knuth's multiplicative hash: consecutive ids (an import's) spread over all templates.
_MULTIPLIER = 2654435761
_MODULUS = 2**32


def stable_choice(contact_id: int, choices: Sequence[T]) -> T:
    """One of `choices` for this contact: the same while the sequence is, evenly spread."""
    return choices[(contact_id * _MULTIPLIER) % _MODULUS % len(choices)]


def template_for(contact_id: int, template_ids: Sequence[int]) -> int:
    if not template_ids:
        raise ValueError("a campaign needs at least one template")
    return stable_choice(contact_id, template_ids)
