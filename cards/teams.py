"""Adaptive Cards (1.5, what Teams renders for bots) for every message Amends sends in Teams.

Each builder returns the notification text and the card, from domain values alone. Two rules
keep what people type harmless and every activity deliverable:

- Words we write go in TextBlocks (which render Teams' markdown); anything a person typed
  (what happened, notes, names, channel names, refusals that quote input) goes in a
  RichTextBlock TextRun, which renders no markdown, so `[your bill](https://evil)` stays text
  and `<at>…</at>` never becomes a mention (our cards carry no mention entities at all).
- Teams refuses an activity over 28 KB, and botbuilder sends JSON with every non-ASCII
  character escaped (an emoji costs 12 bytes), so free text is clipped to a byte budget, not
  only to a number of characters.

Buttons are Action.Execute (Universal Actions) with an Action.Submit fallback for older
clients; both carry the same `verb` from cards.ids, so builders and handlers cannot drift.
"""

import json
from collections.abc import Sequence
from datetime import date, timedelta
from enum import StrEnum

from bot.cases import Case
from bot.checklist import CHECKLIST, GUIDANCE, Step
from bot.money import decimals
from bot.roles import Allowance, Role, describe_role
from cards.ids import Action, Field, Form, button_value
from cards.words import STEP_NAMES, day, duration, given, progress
from cards.text import clip

CARD_TYPE = "application/vnd.microsoft.card.adaptive"
VERSION = "1.5"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
ACTIVITY_MAX = 28 * 1024  # bytes of the whole activity as sent; Teams answers an error above it

LISTED_CASES_MAX = 40
LISTED_ROLES_MAX = 60
FOLLOW_UP_DAYS_MAX = 365


# --- text ------------------------------------------------------------------------------------

def wire_size(text: str) -> int:
    """Bytes the text takes in the JSON botbuilder sends (ASCII-escaped, without the quotes)."""
    return len(json.dumps(text)) - 2


def fit(text: str, *, chars: int, wire: int) -> str:
    """At most `chars` characters and `wire` bytes on the wire, ending in "…" when cut."""
    text = clip(text or "", chars)
    if wire_size(text) <= wire:
        return text
    budget, used, kept = wire - wire_size("…"), 0, []
    for char in text:
        used += wire_size(char)
        if used > budget:
            break
        kept.append(char)
    return "".join(kept).rstrip() + "…"


def _words(text: str, *, weight: str | None = None, size: str | None = None, subtle: bool = False,
           spacing: str | None = None) -> dict:
    """Our own words, never a person's: a TextBlock, which may render markdown."""
    block = {"type": "TextBlock", "text": text, "wrap": True}
    if weight:
        block["weight"] = weight
    if size:
        block["size"] = size
    if subtle:
        block["isSubtle"] = True
    if spacing:
        block["spacing"] = spacing
    return block


def _run(text: str, **style) -> dict:
    return {"type": "TextRun", "text": text, **style}


def _typed(text: str, *, label: str = "", chars: int, wire: int, subtle: bool = False) -> dict:
    """What a person typed, as plain text (a TextRun renders no markdown), after an optional bold label."""
    inlines = [_run(label, weight="Bolder")] if label else []
    inlines.append(_run(fit(text, chars=chars, wire=wire) or "—", **({"isSubtle": True} if subtle else {})))
    return {"type": "RichTextBlock", "inlines": inlines}


def _facts(*pairs: tuple[str, str]) -> dict:
    """Values we compute (money, durations, dates, catalogue kinds), not free text."""
    return {"type": "FactSet", "facts": [{"title": title, "value": value} for title, value in pairs]}


def _card(body: list[dict], *, fallback: str, actions: list[dict] | None = None) -> dict:
    card = {"type": "AdaptiveCard", "$schema": SCHEMA, "version": VERSION, "fallbackText": fallback,
            "msteams": {"width": "Full"}, "body": body}
    if actions:
        card["actions"] = actions
    return card


def _notify(text: str) -> str:
    """The activity's notification text: short and plain."""
    return clip(text, 200)


def execute(title: str, verb: StrEnum, data: dict, *, inputs: bool = True, positive: bool = False) -> dict:
    """An Action.Execute button whose fallback, for clients before Universal Actions, is the same
    Action.Submit. `inputs=False` neither sends nor validates the card's inputs (e.g. "Nothing needed")."""
    data = {"verb": verb.value, **data}
    submit = {"type": "Action.Submit", "title": title, "data": data}
    button = {"type": "Action.Execute", "title": title, "verb": verb.value, "data": data}
    for action in (submit, button):
        if not inputs:
            action["associatedInputs"] = "none"
        if positive:
            action["style"] = "positive"
    button["fallback"] = submit
    return button


def case_card(case: Case) -> tuple[str, dict]:
    """The headline card, updated in place as steps are done: `R-1001 · open`, whose, and what happened."""
    status = "closed" if case.is_closed else "open"
    body = [
        _words(f"{case.id} · {status}", weight="Bolder", size="Medium"),
        _typed(case.owner_name, label="Owner: ", chars=100, wire=600),
        _typed(case.what_happened, label="What happened: ", chars=2000, wire=12000),
    ]
    if case.customer:
        body.append(_typed(case.customer, label="Customer: ", chars=200, wire=1500))
    body.append(_words(progress(case), spacing="Medium"))
    if case.is_closed:
        follow = day(case.follow_up_on) if case.follow_up_on else "none"
        body.append(_facts(("Given", given(case)), ("Time to recover", duration(case.time_to_recover.total_seconds())),
                           ("Follow-up", follow)))
    else:
        body.append(_words("The checklist follows this card. Only the case owner can tick it off.", subtle=True))
    text = _notify(f"{case.id} · {fit(case.what_happened, chars=60, wire=360)} · {status}")
    return text, _card(body, fallback=text)


def step_title(step: Step) -> str:
    """"1/5 · Apologise and own it"."""
    return f"{CHECKLIST.index(step) + 1}/{len(CHECKLIST)} · {GUIDANCE[step].title}"


def step_card(case: Case, step: Step, *, note_max: int, allowance: Allowance | None = None,
              catalogue: Sequence[str] = (), today: date | None = None) -> tuple[str, dict]:
    """One checklist step: live, with its inputs and buttons, while it is the current step; ticked once done.
    The compensate step needs the owner's allowance and the catalogue; follow-up needs today's date."""
    title = step_title(step)
    if step in case.done:
        return _done_step(case, step, title)
    if step != case.current_step:
        text = _notify(f"{case.id} · {title} · not yet")
        return text, _card([_words(f"◻️ {case.id} · {title} — not yet", weight="Bolder")], fallback=text)
    guide = GUIDANCE[step]
    body = [_words(f"▶️ {case.id} · {title}", weight="Bolder", size="Medium"), _words(guide.prompt)]
    body += [_words(f"• {tip}", subtle=True, spacing="Small") for tip in guide.tips]
    value = {"value": button_value(case.id, step)}
    if step == Step.COMPENSATE:
        inputs, actions = _compensate(value, allowance, catalogue)
    elif step == Step.FOLLOW_UP:
        inputs, actions = _follow_up(value, today)
    else:
        inputs = [{"type": "Input.Text", "id": Field.NOTE.value, "label": f"{guide.note_label} (optional)",
                   "isMultiline": True, "maxLength": note_max}]
        actions = [execute("Done", Action.STEP_DONE, value, positive=True)]
    text = _notify(f"{case.id} · {title}")
    return text, _card(body + inputs, fallback=text, actions=actions)


def _compensate(value: dict, allowance: Allowance | None,
                catalogue: Sequence[str]) -> tuple[list[dict], list[dict]]:
    """Pick a kind and an amount: checked in the card (required, at most what may be given), and again by the bot."""
    if allowance is None or not catalogue:
        raise ValueError("the compensate step needs the owner's allowance and the catalogue")
    body = [_words(allowance.describe(), weight="Bolder"),
            _words("No approval needed inside your limit.", subtle=True, spacing="Small")]
    actions = []
    if allowance.most > 0:  # with nothing left to give, only "Nothing needed" makes sense
        body += [
            {"type": "Input.ChoiceSet", "id": Field.KIND.value, "label": "What", "style": "compact",
             "isRequired": True, "errorMessage": "Pick what you are giving.",
             "choices": [{"title": kind, "value": kind} for kind in catalogue], "value": catalogue[0]},
            {"type": "Input.Number", "id": Field.AMOUNT.value, "label": f"Value ({allowance.currency})",
             "placeholder": "e.g. 12.50", "min": 1 / 10 ** decimals(allowance.currency),
             "max": float(allowance.most), "isRequired": True,
             "errorMessage": f"Type an amount up to {allowance.money(allowance.most)}."},
        ]
        actions.append(execute("Give", Action.GIVE, value, positive=True))
    actions.append(execute("Nothing needed", Action.NOTHING_NEEDED, value, inputs=False))
    return body, actions


def _follow_up(value: dict, today: date | None) -> tuple[list[dict], list[dict]]:
    if today is None:
        raise ValueError("the follow-up step needs today's date")
    body = [{"type": "Input.Date", "id": Field.DATE.value, "label": "Or pick a date",
             "value": default_follow_up(today).isoformat(), "min": today.isoformat(),
             "max": (today + timedelta(days=FOLLOW_UP_DAYS_MAX)).isoformat(), "isRequired": True,
             "errorMessage": "Pick today or a later date, within a year."}]
    actions = [
        execute("Tomorrow", Action.FOLLOW_UP_TOMORROW, value, inputs=False, positive=True),
        execute("In a week", Action.FOLLOW_UP_NEXT_WEEK, value, inputs=False),
        execute("On that date", Action.FOLLOW_UP_PICK, value),
        execute("No follow-up", Action.NO_FOLLOW_UP, value, inputs=False),
    ]
    return body, actions


def default_follow_up(today: date) -> date:
    return today + timedelta(days=1)


def _done_step(case: Case, step: Step, title: str) -> tuple[str, dict]:
    line = f"✅ {case.id} · {title}"
    body = [_words(line, weight="Bolder")]
    if step == Step.COMPENSATE:
        body.append(_facts(("Given", given(case))))
    elif step == Step.FOLLOW_UP:
        body.append(_facts(("Follow-up", day(case.follow_up_on) if case.follow_up_on else "no follow-up")))
    note = case.note(step)
    if note:
        body.append(_typed(note, chars=2000, wire=12000, subtle=True))
    text = _notify(f"{case.id} · {title} · done")
    return text, _card(body, fallback=text)


def closing_card(case: Case, *, channel_name: str | None, summary_failed: bool = False) -> tuple[str, dict]:
    """The last message in the case's thread: closed, how fast, and where the summary went."""
    took = duration(case.time_to_recover.total_seconds())
    body = [_words(f"🎉 {case.id} is closed. Recovered in {took}.", weight="Bolder")]
    if channel_name is not None and not summary_failed:
        body.append(_typed(channel_name, label="The summary is in ", chars=100, wire=600))
    elif channel_name is not None:
        body.append(_typed(channel_name, label="I couldn't post the summary in ", chars=100, wire=600))
        body.append(_words("So it is below. An admin can fix this by adding Amends to that team again, or by "
                           "sending @Amends recover admin channel here in another channel."))
    else:
        body.append(_words("No recovery channel is set, so the summary is below. An admin can set one by sending "
                           "@Amends recover admin channel here in that channel; I've told the admins."))
    text = _notify(f"{case.id} is closed. Recovered in {took}.")
    return text, _card(body, fallback=text)


def summary(case: Case) -> tuple[str, dict]:
    """The closing post for managers: who, customer, what happened, said and done, given, how fast, follow-up."""
    took = duration(case.time_to_recover.total_seconds()) if case.is_closed else "—"
    follow = day(case.follow_up_on) if case.follow_up_on else "none"
    body = [
        _words(f"Recovered: {case.id}", weight="Bolder", size="Large"),
        _typed(case.owner_name, label="Who: ", chars=100, wire=600),
        _typed(case.customer, label="Customer: ", chars=300, wire=1500),
        _typed(case.what_happened, label="What happened: ", chars=2000, wire=8000),
        _facts(("Given", given(case, with_code=True)), ("Time to recover", took), ("Follow-up", follow)),
    ]
    for label, step in (("Said: ", Step.APOLOGISE), ("Learned: ", Step.EMPATHISE), ("Done: ", Step.FIX)):
        if case.note(step):
            body.append(_typed(case.note(step), label=label, chars=900, wire=3000))
    text = _notify(f"Recovered {case.id}: {fit(case.what_happened, chars=80, wire=480)} · given {given(case)} · {took}")
    return text, _card(body, fallback=text)


# --- answers to commands ---------------------------------------------------------------------

def new_case_form(*, owner: str, what_max: int, customer_max: int) -> tuple[str, dict]:
    """`recover` alone: ask what happened and for whom. Only `owner` (who asked) may submit it."""
    text = "New recovery: what happened?"
    body = [
        _words("New recovery", weight="Bolder", size="Medium"),
        {"type": "Input.Text", "id": Field.WHAT.value, "label": "What happened?", "isMultiline": True,
         "maxLength": what_max, "placeholder": "cold soup, waited 40 min", "isRequired": True,
         "errorMessage": "Say what happened, e.g. cold soup, waited 40 min."},
        {"type": "Input.Text", "id": Field.CUSTOMER.value, "label": "Customer or table (optional)",
         "maxLength": customer_max, "placeholder": "table 4, room 212, order #5531"},
    ]
    return text, _card(body, fallback=text, actions=[execute("Open case", Form.NEW_CASE, {"owner": owner},
                                                             positive=True)])


def help_card(usage: Sequence[tuple[str, str]]) -> tuple[str, dict]:
    """Usage lines (command, what it does), generated by the glue from the command registry."""
    body = [
        _words("Amends", weight="Bolder", size="Medium"),
        _words("Amends guides a service recovery: apologise → empathise → fix → compensate → follow up, and "
               "posts a summary for your managers. You decide what to give, within your limit."),
        _words("In a channel, mention me first: @Amends recover …", subtle=True),
    ]
    for command, what in usage:
        body.append({"type": "RichTextBlock", "inlines": [_run(command, fontType="Monospace", weight="Bolder"),
                                                          _run(f" — {what}")]})
    return "Amends help", _card(body, fallback="Amends help")


def case_list(cases: Sequence[Case]) -> tuple[str, dict]:
    """The person's open cases, each with the step it waits on."""
    if not cases:
        return "You have no open cases.", _card([_words("You have no open cases. 🎉")], fallback="You have no open cases.")
    body = [_words("Your open cases", weight="Bolder", size="Medium")]
    for case in cases[:LISTED_CASES_MAX]:
        step = STEP_NAMES[case.current_step] if case.current_step else "closing"
        body.append({"type": "RichTextBlock", "inlines": [
            _run(case.id, weight="Bolder"), _run(" · "), _run(fit(case.what_happened, chars=60, wire=360)),
            _run(f" · next: {step}", isSubtle=True)]})
    if len(cases) > LISTED_CASES_MAX:
        body.append(_words(f"…and {len(cases) - LISTED_CASES_MAX} more.", subtle=True))
    text = f"You have {len(cases)} open case(s)."
    return text, _card(body, fallback=text)


def limits_card(roles: Sequence[Role], *, currency: str, channel_name: str | None) -> tuple[str, dict]:
    body = [_words("Roles, limits and budgets", weight="Bolder", size="Medium")]
    body += [_typed(describe_role(role, currency), chars=200, wire=1200) for role in roles[:LISTED_ROLES_MAX]]
    if len(roles) > LISTED_ROLES_MAX:
        body.append(_words(f"…and {len(roles) - LISTED_ROLES_MAX} more.", subtle=True))
    body.append(_words("People without a role get staff.", subtle=True, spacing="Medium"))
    if channel_name is None:
        body.append(_words("Recovery channel: not set. Send @Amends recover admin channel here in that channel.",
                           subtle=True))
    else:
        body.append(_typed(channel_name, label="Recovery channel: ", chars=100, wire=600))
    return "Roles and limits", _card(body, fallback="Roles and limits")


def sentence(text: str) -> tuple[str, dict]:
    """A one-line answer, as plain text: refusals may quote what the person typed."""
    plain = fit(text, chars=3000, wire=12000)
    return _notify(plain), _card([_typed(plain, chars=3000, wire=12000)], fallback=_notify(plain))


def welcome(*, in_channel: bool) -> tuple[str, dict]:
    """Said once when Amends is added: how to start, and (in a team) how to choose the recovery channel."""
    how = "@Amends recover" if in_channel else "recover"
    body = [
        _words("Hi, I'm Amends.", weight="Bolder", size="Medium"),
        _words(f"When a customer has a bad experience, type {how} and what happened, e.g. "
               f"{how} cold soup, table 4. I'll walk you through apologise → empathise → fix → compensate → "
               "follow up, and post a summary for your managers."),
    ]
    if in_channel:
        body.append(_words("Admins: send @Amends recover admin channel here in the channel where summaries "
                           "should go.", subtle=True))
    return "Hi, I'm Amends.", _card(body, fallback="Hi, I'm Amends.")
