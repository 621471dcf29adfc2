"""The ground truth of a conversation: what was said, per insight field.

A provider that knows what its callee states (the simulator) marks each utterance with
``TranscriptMessage.facts`` (field -> value). The truth of a conversation is the other party's
facts merged in order, so a later statement replaces an earlier one (a price that was
negotiated down). A field no utterance states was never said: it is absent from the truth,
and the right reading of it is "missing".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mission_server.insights.base import InsightDefinition
from mission_server.telephony.base import TranscriptMessage

__all__ = ["conversation_truth", "has_truth"]


def has_truth(transcript: Sequence[TranscriptMessage]) -> bool:
    """Whether the transcript carries ground truth at all (every simulated call does; a real
    call does not)."""
    return any(message.facts is not None for message in transcript)


def conversation_truth(
    definition: InsightDefinition, transcript: Sequence[TranscriptMessage]
) -> dict[str, Any] | None:
    """The values the other party stated for ``definition``'s fields, or None when the
    transcript carries no truth or the insight is free text."""
    if not definition.structured or not has_truth(transcript):
        return None
    names = {parameter.name for parameter in definition.parameters}
    truth: dict[str, Any] = {}
    for message in transcript:
        if message.role != "user" or not message.facts:
            continue
        for name, value in message.facts.items():
            if name in names:
                truth[name] = value
    return truth
