"""The recovery checklist: the steps the best service organisations teach, in order.

The guidance is the practice itself (see shared/seeds): own it, listen, fix, give, follow up.
"""

from dataclasses import dataclass
from enum import StrEnum


class Step(StrEnum):
    APOLOGISE = "apologise"
    EMPATHISE = "empathise"
    FIX = "fix"
    COMPENSATE = "compensate"
    FOLLOW_UP = "follow_up"


CHECKLIST: tuple[Step, ...] = tuple(Step)


@dataclass(frozen=True)
class Guidance:
    title: str
    prompt: str
    tips: tuple[str, ...]
    note_label: str


GUIDANCE: dict[Step, Guidance] = {
    Step.APOLOGISE: Guidance(
        title="Apologise and own it",
        prompt="Say sorry sincerely and take ownership. No blame, no excuses. Thank them for telling you.",
        tips=(
            "“I'm so sorry — that's not the experience we want for you, and I'll put it right.”",
            "“Thank you for telling me. I'm taking care of this myself, right now.”",
        ),
        note_label="What did you say?",
    ),
    Step.EMPATHISE: Guidance(
        title="Listen and empathise",
        prompt="Understand the whole situation before acting. Ask, then listen.",
        tips=(
            "What happened, in their words?",
            "How did it affect them (time, plans, the occasion)?",
            "What would make it right for them?",
        ),
        note_label="What did you learn?",
    ),
    Step.FIX: Guidance(
        title="Fix the problem",
        prompt="Keep things moving: fix it now, and suggest alternatives tailored to this customer.",
        tips=(
            "Replace or redo it right away, or offer something they'd prefer instead.",
            "Tell them what you're doing and how long it will take.",
        ),
        note_label="What did you do?",
    ),
    Step.COMPENSATE: Guidance(
        title="Give something of value",
        prompt="You decide, on the spot, within your limit. No approval needed.",
        tips=(),
        note_label="",
    ),
    Step.FOLLOW_UP: Guidance(
        title="Follow up",
        prompt="Check later that the fix held and they're happy. Pick when, or skip.",
        tips=(),
        note_label="",
    ),
}


def next_step(after: Step) -> Step | None:
    """The step that follows `after`, or None after the last."""
    index = CHECKLIST.index(after)
    return CHECKLIST[index + 1] if index + 1 < len(CHECKLIST) else None
