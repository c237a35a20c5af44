"""Template rotation (pack §7): each contact gets one of the campaign's templates, chosen by a
hash of the contact's id, so the choice is stable (the same contact always gets the same
template of a given list) and the split is even over many contacts."""

from __future__ import annotations

from collections.abc import Sequence

# Knuth's multiplicative hash: consecutive ids (an import's) spread over all templates.
_MULTIPLIER = 2654435761
_MODULUS = 2**32


def template_for(contact_id: int, template_ids: Sequence[int]) -> int:
    if not template_ids:
        raise ValueError("a campaign needs at least one template")
    return template_ids[(contact_id * _MULTIPLIER) % _MODULUS % len(template_ids)]
