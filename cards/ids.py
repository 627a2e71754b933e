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
    # a follow-up reminder's answers (handlers/*/followups.py)
    REMINDER_DONE = "reminder_done"
    REMINDER_REOPEN = "reminder_reopen"
    REMINDER_SNOOZE = "reminder_snooze"
    # top-ups (handlers/*/topups.py): ask a manager for more than the allowance; a manager decides
    TOP_UP_ASK = "top_up_ask"
    TOP_UP_APPROVE = "top_up_approve"
    TOP_UP_DENY = "top_up_deny"
    RECOGNISE = "recognise"  # a manager's credit on a summary (bot/learning.py)
    # App Home admin buttons (handlers/slack/home.py): each opens its settings form
    HOME_ROLES = "home_roles"
    HOME_ASSIGN = "home_assign"
    HOME_CHANNEL = "home_channel"
    HOME_CATALOGUE = "home_catalogue"


class Form(StrEnum):
    """Modal callback ids."""

    NEW_CASE = "new_case"
    STEP_NOTE = "step_note"
    GIVE = "give"
    FOLLOW_UP = "follow_up"
    HOME_ROLES = "home_roles_form"
    HOME_ASSIGN = "home_assign_form"
    HOME_CHANNEL = "home_channel_form"
    HOME_CATALOGUE = "home_catalogue_form"


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
    REASON = "reason"  # why a top-up over the allowance is needed
    ROOT_CAUSE = "root_cause"  # asked for on closing (bot/learning.py)
    CHANGE_NOTE = "change_note"
    # the App Home's settings forms
    HOME_ROLE_NAME = "home_role_name"
    HOME_PER_CASE = "home_per_case"
    HOME_BUDGET = "home_budget"
    HOME_PERIOD = "home_period"
    HOME_MANAGING = "home_managing"
    HOME_PERSON = "home_person"
    HOME_ROLE = "home_role"
    HOME_CHANNEL = "home_channel"
    HOME_ITEM_NAME = "home_item_name"
    HOME_ITEM_VALUE = "home_item_value"
    HOME_ITEM_EMOJI = "home_item_emoji"
    HOME_ITEM_REMOVE = "home_item_remove"


def button_value(case_id: str, step: Step | None = None) -> str:
    """What a button carries: the case, and the step it was drawn for (so a stale button is recognised)."""
    return case_id if step is None else f"{case_id}:{step.value}"


def read_button_value(value: str) -> tuple[str, Step | None]:
    case_id, _, step = (value or "").partition(":")
    try:
        return case_id, Step(step) if step else None
    except ValueError:
        return case_id, None
