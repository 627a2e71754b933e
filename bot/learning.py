"""Learn, don't punish: why a case happened, what will change, guests who keep coming back, and credit.

Closing a case asks for a root cause from the workspace's list (an admin edits it) and an optional
"what we'll change", so the numbers say what goes wrong, not who. A guest with earlier recoveries is
pointed out when a new case opens for them, so the employee can go further. Managers recognise good
recoveries; the digest counts those recognitions per owner.
"""

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from datetime import timedelta

from bot.cases import Case
from bot.errors import BadCommand, NotYourCase, Refusal, StepNotOpen

ROOT_CAUSES_KEY = "config:root_causes"
DEFAULT_ROOT_CAUSES: tuple[str, ...] = ("food", "wait", "staff", "booking", "billing", "facilities", "other")
ROOT_CAUSES_MAX = 25  # a short list people can scan on a phone (Slack allows 100 options)
CAUSE_MAX = 40
CAUSE = re.compile(r"^[^\W_][\w &/'+-]*$")
CHANGE_NOTE_MAX = 500
PICK_A_CAUSE = "Pick what caused it first."

REPEAT_WINDOW = timedelta(days=90)
REPEATS_LISTED = 5

NAMES_KEY = "recognisers"  # display names of managers who recognised a case (ids are what cases keep)


# --- root causes ------------------------------------------------------------------------------

async def root_causes(store, *, workspace: str) -> tuple[str, ...]:
    """The workspace's causes, in the order the admin gave them (the defaults until an admin sets some)."""
    kept = await store.reference(workspace=workspace, key=ROOT_CAUSES_KEY)
    causes = tuple((kept or {}).get("causes") or ())
    return causes or DEFAULT_ROOT_CAUSES


def parse_root_causes(text: str) -> tuple[str, ...]:
    """"food, wait, front desk" → ("food", "wait", "front desk"); a sentence says what is wrong."""
    causes = [" ".join(part.split()).lower() for part in (text or "").split(",")]
    causes = [cause for cause in causes if cause]
    if not causes:
        raise BadCommand("List the causes separated by commas, e.g. `/recover admin causes food, wait, staff, other`.")
    if len(causes) > ROOT_CAUSES_MAX:
        raise BadCommand(f"Keep the list to {ROOT_CAUSES_MAX} causes or fewer; nothing changed.")
    for cause in causes:
        if len(cause) > CAUSE_MAX or not CAUSE.match(cause):
            raise BadCommand(f"{cause[:60]!r} can't be a cause: use up to {CAUSE_MAX} letters, digits, spaces "
                             "or - & / ' +, starting with a letter or digit. Nothing changed.")
    repeated = sorted({cause for cause in causes if causes.count(cause) > 1})
    if repeated:
        raise BadCommand(f"{', '.join(repeated)} is listed twice; nothing changed.")
    return tuple(causes)


async def set_root_causes(store, *, workspace: str, text: str) -> tuple[str, ...]:
    causes = parse_root_causes(text)
    await store.put_reference(workspace=workspace, key=ROOT_CAUSES_KEY, value={"causes": list(causes)})
    return causes


def check_closing(causes: Iterable[str], *, root_cause: str, change_note: str) -> tuple[str, str]:
    """The cause (one of the workspace's) and the change note as they will be kept, or a refusal."""
    causes = tuple(causes)
    cause = " ".join((root_cause or "").split()).lower()
    if not cause:
        raise Refusal(PICK_A_CAUSE)
    if cause not in causes:
        raise Refusal(f"“{cause[:60]}” isn't one of this workspace's causes ({', '.join(causes)}); "
                      "pick one of those. Nothing changed.")
    note = " ".join((change_note or "").split())
    if len(note) > CHANGE_NOTE_MAX:
        raise Refusal(f"Keep “what we'll change” under {CHANGE_NOTE_MAX} characters.")
    return cause, note


# --- repeat customers -------------------------------------------------------------------------

def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _number(case_id: str) -> int:
    digits = "".join(ch for ch in case_id if ch.isdigit())
    return int(digits) if digits else 0


def repeat_sentence(case: Case, earlier: list[Case]) -> str | None:
    """"3rd recovery for this guest in 90 days (R-1001, R-1017)", or None for a first."""
    earlier = [c for c in earlier if (c.opened_at, _number(c.id)) < (case.opened_at, _number(case.id))]
    if not earlier:
        return None
    ids = [c.id for c in earlier][-REPEATS_LISTED:]
    more = "…, " if len(earlier) > REPEATS_LISTED else ""
    return (f"{ordinal(len(earlier) + 1)} recovery for this guest in {REPEAT_WINDOW.days} days "
            f"({more}{', '.join(ids)}). Consider going further this time.")


async def repeat_customer(store, case: Case) -> str | None:
    """The sentence for a case whose customer had recoveries in the last 90 days (None otherwise)."""
    if not case.customer.strip():
        return None
    earlier = await store.customer_cases(workspace=case.workspace, customer=case.customer,
                                         since=case.opened_at - REPEAT_WINDOW)
    return repeat_sentence(case, earlier)


# --- recognition ------------------------------------------------------------------------------

def recognise(case: Case, *, manager: str) -> Case:
    """A manager recognises a closed case, once."""
    if not case.is_closed:
        raise StepNotOpen(f"{case.id} is still open; recognise it once it is closed.")
    if manager == case.owner:
        raise NotYourCase(f"{case.id} is your own case; another manager can recognise it. Nothing changed.")
    if manager in case.recognised_by:
        raise StepNotOpen(f"You already recognised {case.id}; nothing changed.")
    return replace(case, recognised_by=(*case.recognised_by, manager))


async def record_recognition(store, *, workspace: str, case_id: str, manager: str, name: str) -> Case:
    """Record the recognition (refusals change nothing) and keep the manager's name for showing it."""
    case = await store.change_case(workspace=workspace, case_id=case_id,
                                   change=lambda case: recognise(case, manager=manager))
    names = dict((await store.reference(workspace=workspace, key=NAMES_KEY)) or {})
    if name and names.get(manager) != name:
        await store.put_reference(workspace=workspace, key=NAMES_KEY, value={**names, manager: name})
    return case


async def recogniser_names(store, case: Case) -> list[str]:
    """The names of the managers who recognised the case, in the order they did."""
    names = (await store.reference(workspace=case.workspace, key=NAMES_KEY)) or {}
    return [names.get(manager) or "a manager" for manager in case.recognised_by]


def recognitions(cases: Iterable[Case]) -> dict[str, int]:
    """Recognitions per case owner (each manager's tap counts once), for the digest: pass the window's cases."""
    counts: Counter[str] = Counter()
    for case in cases:
        if case.recognised_by and case.owner:
            counts[case.owner] += len(case.recognised_by)
    return dict(counts)


async def admin_causes(store, *, workspace: str, text: str) -> str:
    """`admin causes …`: save the list; the sentence the admin reads."""
    causes = await set_root_causes(store, workspace=workspace, text=text)
    return f"Saved. Closing a case now asks what caused it: {', '.join(causes)}."
