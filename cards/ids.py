"""Every id a card sets and a handler listens for, in one place, so they cannot drift.

Slack uses them as action_id / callback_id / block_id; Teams will use them as Action.Execute verbs.
"""

from enum import StrEnum

from bot.checklist import Step


class Action(StrEnum):
    STEP_DONE = "step_done"
    STEP_NOTE = "step_note"
    GIVE = "give"
    NOTHING_NEEDED = "nothing_needed"
    FOLLOW_UP_TOMORROW = "follow_up_tomorrow"
    FOLLOW_UP_NEXT_WEEK = "follow_up_next_week"
    FOLLOW_UP_PICK = "follow_up_pick"
    NO_FOLLOW_UP = "no_follow_up"
    TAKE = "take"


class Form(StrEnum):
    """Modal callback ids."""

    NEW_CASE = "new_case"
    STEP_NOTE = "step_note"
    GIVE = "give"
    FOLLOW_UP = "follow_up"


class Shortcut(StrEnum):
    """Message shortcut callback ids (declared in the Slack manifests)."""

    RECOVER_FROM_MESSAGE = "recover_from_message"


class Field(StrEnum):
    """Input block ids (and the action ids inside them: one input per block)."""

    WHAT = "what"
    CUSTOMER = "customer"
    NOTE = "note"
    KIND = "kind"
    AMOUNT = "amount"
    DATE = "date"


def button_value(case_id: str, step: Step | None = None) -> str:
    """What a button carries: the case, and the step it was drawn for (so a stale button is recognised)."""
    return case_id if step is None else f"{case_id}:{step.value}"


def read_button_value(value: str) -> tuple[str, Step | None]:
    case_id, _, step = (value or "").partition(":")
    try:
        return case_id, Step(step) if step else None
    except ValueError:
        return case_id, None
