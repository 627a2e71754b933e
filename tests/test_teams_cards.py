"""Every Adaptive Card Amends sends in Teams, in every state, is valid 1.5 and fits in an activity.

The builders are pure, so they are checked here directly with worst-case input (the longest
text, all of it emoji, which botbuilder's ASCII-escaped JSON makes 12 bytes a character), against
the same checks the fake connector applies to what the running bot sends.
"""

import json
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from bot.cases import Case, Compensation, StepDone
from bot.catalogue import DEFAULT_CATALOGUE
from bot.checklist import CHECKLIST, Step
from bot.recovery import CUSTOMER_MAX, NOTE_MAX, WHAT_HAPPENED_MAX
from bot.roles import Allowance, Budget, Role, default_role
from bot.periods import Period
from cards import teams as cards
from cards.ids import Action, Form
from handlers.teams.checklist import ChecklistHandlers
from handlers.teams.commands import usage
from handlers.teams.turns import card_activity
from tests.doubles.bf_connector import activity_problems, card_problems

OPENED = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
TODAY = date(2026, 11, 25)
WORST = "😡" * 5000  # longer than any limit, and the costliest character on the wire


def case_at(step: Step | None, *, text: str = "cold soup, table 4", note: str = "said sorry", customer: str = "table 4",
            name: str = "Amy Baker") -> Case:
    """A case with every step before `step` done (None: closed), notes on the first three."""
    steps = CHECKLIST if step is None else CHECKLIST[: CHECKLIST.index(step)]
    done = {s: StepDone(at=OPENED + timedelta(minutes=1), note=note if s in CHECKLIST[:3] else "") for s in steps}
    case = Case(workspace="T", id="R-1001", owner="aad-amy", owner_name=name, what_happened=text, customer=customer,
                opened_at=OPENED, done=done)
    if Step.COMPENSATE in done:
        case = replace(case, compensation=Compensation(kind="voucher", amount=Decimal("15"), currency="USD"))
    if step is None:
        case = replace(case, follow_up_on=TODAY + timedelta(days=1), closed_at=OPENED + timedelta(minutes=3))
    return case


ALLOWANCE = Allowance(role=default_role("T"), spent=Decimal("0"), currency="USD")
USED_UP = Allowance(role=default_role("T"), spent=Decimal("100"), currency="USD")
ROLES = [Role(workspace="T", name=f"role-{n}", limit=Decimal(25), budget=Budget(Decimal(100), Period.WEEK))
         for n in range(100)]


def every_card(**text) -> dict[str, tuple[str, dict]]:
    """Each builder in each state it can be in."""
    built = {}
    for current in [*CHECKLIST, None]:
        case = case_at(current, **text)
        built[f"case card at {current}"] = cards.case_card(case)
        for step in CHECKLIST:
            built[f"{step} at {current}"] = cards.step_card(case, step, note_max=NOTE_MAX, allowance=ALLOWANCE,
                                                            catalogue=DEFAULT_CATALOGUE, today=TODAY)
    closed = case_at(None, **text)
    built["compensate, budget used up"] = cards.step_card(case_at(Step.COMPENSATE, **text), Step.COMPENSATE,
                                                          note_max=NOTE_MAX, allowance=USED_UP, catalogue=DEFAULT_CATALOGUE)
    built["summary"] = cards.summary(closed)
    channel = text.get("name", "Riverside Bistro · Recoveries")
    built["closing, posted"] = cards.closing_card(closed, channel_name=channel)
    built["closing, refused"] = cards.closing_card(closed, channel_name=channel, summary_failed=True)
    built["closing, no channel"] = cards.closing_card(closed, channel_name=None)
    built["new case form"] = cards.new_case_form(owner="aad-amy", what_max=WHAT_HAPPENED_MAX, customer_max=CUSTOMER_MAX)
    built["help"] = cards.help_card(usage())
    built["list, empty"] = cards.case_list([])
    built["list, long"] = cards.case_list([replace(case_at(Step.FIX, **text), id=f"R-{n}") for n in range(60)])
    built["limits, no channel"] = cards.limits_card(ROLES[:3], currency="USD", channel_name=None)
    built["limits, many"] = cards.limits_card(ROLES, currency="USD", channel_name=channel)
    built["sentence"] = cards.sentence(text.get("text", "That step of R-1001 is already done; nothing changed."))
    built["welcome, channel"] = cards.welcome(in_channel=True)
    built["welcome, chat"] = cards.welcome(in_channel=False)
    built.update(top_up_cards(**text))
    return built


def top_up_cards(**text) -> dict[str, tuple[str, dict]]:
    """Top-ups (handlers/teams/topups.py) and the catalogue, in each state, with worst-case text."""
    from bot.cases import TopUp
    from bot.catalogue import CatalogueItem
    built = {}
    asked = replace(case_at(Step.COMPENSATE, **text), top_up=TopUp(
        amount=Decimal("40"), reason=text.get("text", "anniversary dinner"), requested_at=OPENED))
    for status in ("pending", "approved", "denied"):
        case = replace(asked, top_up=replace(asked.top_up, status=status, decided_by="aad-ben",
                                             decided_by_name=text.get("name", "Ben")))
        built[f"top-up request, {status}"] = cards.top_up_request(case, kind=text.get("name", "voucher"), currency="USD")
        built[f"top-up note, {status}"] = cards.top_up_note(case, currency="USD", allowance=ALLOWANCE)
        built[f"compensate, top-up {status}"] = cards.step_card(case, Step.COMPENSATE, note_max=NOTE_MAX,
                                                                allowance=ALLOWANCE, catalogue=DEFAULT_CATALOGUE)
    items = [CatalogueItem("Free dessert", Decimal("8"), "🍰"), CatalogueItem("20% off the bill", percent=Decimal(20)),
             *(CatalogueItem(f"item {n}", Decimal(n)) for n in range(1, 49))]
    built["catalogue"] = cards.catalogue_card(items, currency="USD")
    built["compensate, catalogue with values"] = cards.step_card(asked, Step.COMPENSATE, note_max=NOTE_MAX,
                                                                 allowance=ALLOWANCE, catalogue=items)
    return built


def on_the_wire(text: str, card: dict) -> int:
    """The activity's size as botbuilder sends it (msrest's JSON, non-ASCII escaped), with a Teams envelope."""
    activity = card_activity(text, card).serialize()
    activity.update(serviceUrl="https://smba.trafficmanager.net/emea/", channelId="msteams",
                    conversation={"id": "19:8d2f0a6c4b1e4f7a9c3d5e7f9a1b3c5d@thread.tacv2;messageid=1764072000456",
                                  "conversationType": "channel", "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47"},
                    **{"from": {"id": "28:9b0f1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d", "name": "Amends"}},
                    recipient={"id": "29:" + "x" * 80, "aadObjectId": "4f1c2a6e-7b1d-4c59-9a0e-1a2b3c4d5e01"},
                    replyToId="1764072000999")
    return len(json.dumps(activity).encode())


@pytest.mark.parametrize("name", list(every_card()))
def test_every_card_is_valid_adaptive_card_1_5(name):
    text, card = every_card()[name]
    assert card_problems(card) == []
    assert card["version"] == "1.5" and card["fallbackText"] == text and text


@pytest.mark.parametrize("name", list(every_card()))
def test_every_card_fits_in_a_teams_activity_with_the_worst_text(name):
    text, card = every_card(text=WORST, note=WORST, customer=WORST, name=WORST)[name]
    assert card_problems(card) == []
    size = on_the_wire(text, card)
    assert size <= cards.ACTIVITY_MAX, f"{size} bytes"
    assert activity_problems(json.loads(json.dumps(card_activity(text, card).serialize())), size) == []


def test_the_checks_catch_what_teams_would_reject():
    text, card = cards.case_card(case_at(Step.APOLOGISE))
    broken = json.loads(json.dumps(card))
    broken["body"][0].pop("text")
    assert any("schema" in p for p in card_problems(broken))
    assert any("version" in p for p in card_problems({**card, "version": "1.6"}))
    assert any("schema" in p for p in card_problems({**card, "colour": "red"}))
    _, step = cards.step_card(case_at(Step.APOLOGISE), Step.APOLOGISE, note_max=NOTE_MAX)
    unsafe = json.loads(json.dumps(step))
    del unsafe["actions"][0]["fallback"]
    assert any("fallback" in p for p in card_problems(unsafe))
    both = {**card_activity(text, card).serialize(), "text": "hello"}
    assert any("splits them" in p for p in activity_problems(both, 100))
    assert any("over Teams'" in p for p in activity_problems(card_activity(text, card).serialize(), 30_000))


def test_every_button_has_a_handler_and_a_verb_from_the_ids_module():
    verbs = set()
    for _, card in every_card().values():
        for action in card.get("actions", []):
            assert action["type"] == "Action.Execute" and action["fallback"]["type"] == "Action.Submit"
            verbs.add(action["verb"])
    known = {a.value for a in Action} | {Form.NEW_CASE.value}
    assert verbs <= known
    checklist = ChecklistHandlers(recovery=None, publisher=None)
    from handlers.teams.topups import TopUpHandlers
    TopUpHandlers(recovery=None, publisher=None, admins=None).register(checklist)  # adds the top-up verbs
    from handlers.teams.learning import attach as attach_learning
    attach_learning(recovery=None, publisher=None, checklist=checklist)  # Recognise on the summary
    handled = set(checklist._verbs) | set(checklist.answers) | {Form.NEW_CASE.value}
    assert verbs == handled  # nothing drawn is unhandled, nothing handled is never drawn


def test_inputs_are_checked_in_the_card_before_teams_sends_them():
    _, step = cards.step_card(case_at(Step.EMPATHISE), Step.EMPATHISE, note_max=NOTE_MAX)
    [note] = [e for e in step["body"] if e["type"] == "Input.Text"]
    assert note["maxLength"] == NOTE_MAX and not note.get("isRequired")
    _, form = cards.new_case_form(owner="aad-amy", what_max=WHAT_HAPPENED_MAX, customer_max=CUSTOMER_MAX)
    what, customer = [e for e in form["body"] if e["type"] == "Input.Text"]
    assert what["isRequired"] and what["maxLength"] == WHAT_HAPPENED_MAX and what["errorMessage"]
    assert customer["maxLength"] == CUSTOMER_MAX and not customer.get("isRequired")
    _, jpy = cards.step_card(case_at(Step.COMPENSATE), Step.COMPENSATE, note_max=NOTE_MAX, catalogue=DEFAULT_CATALOGUE,
                             allowance=Allowance(role=replace(default_role("T"), limit=Decimal(3000), budget=None), spent=Decimal(0),
                                                 currency="JPY"))
    [amount] = [e for e in jpy["body"] if e.get("id") == "amount"]
    assert (amount["min"], amount.get("max"), amount["label"]) == (1, None, "Value (JPY)")  # over it: ask a manager


def test_fit_clips_to_characters_and_to_bytes_on_the_wire():
    assert cards.fit("cold soup", chars=20, wire=100) == "cold soup"
    assert cards.fit("a" * 50, chars=10, wire=100) == "a" * 9 + "…"
    clipped = cards.fit("😡" * 100, chars=100, wire=120)
    assert clipped.endswith("…") and cards.wire_size(clipped) <= 120 and len(clipped) == 10


def test_the_schema_copy_is_the_published_adaptive_cards_1_5_schema():
    """tests/schemas holds a copy (a fresh clone may have no ../shared); it must stay byte for byte upstream's
    microsoft/AdaptiveCards schemas/1.5.0/adaptive-card.json (SHA-256 as listed in shared/schemas/README.md)."""
    import hashlib
    from pathlib import Path

    copy = Path(__file__).resolve().parent / "schemas" / "adaptive-card-1.5.0.json"
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == (
        "32c91fb285180a266a55b3475dd0396e63fe079311714d3a14963b41f5e17920")
