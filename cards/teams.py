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
from datetime import date, timedelta, timezone
from enum import StrEnum

from bot.cases import Case
from bot.checklist import CHECKLIST, GUIDANCE, Step
from bot.catalogue import as_items
from bot.money import decimals, format_money
from bot.topups import REASON_MAX as TOP_UP_REASON_MAX
from bot.topups import settled_without_waiting
from bot.roles import Allowance, Role, describe_role
from bot.learning import CHANGE_NOTE_MAX
from cards.ids import Action, Field, Form, button_value
from cards.words import case_age as words_case_age
from cards.words import STEP_NAMES, day, duration, given, progress, recovered_in, top_up_status
from cards.text import clip

CARD_TYPE = "application/vnd.microsoft.card.adaptive"
VERSION = "1.5"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
ACTIVITY_MAX = 28 * 1024  # bytes of the whole activity as sent; Teams answers an error above it

LISTED_CASES_MAX = 40
LISTED_ROLES_MAX = 60
FOLLOW_UP_DAYS_MAX = 365
QUICK_GIVE_MAX = 4  # one-tap catalogue items on the compensate card


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


def case_card(case: Case, *, now=None) -> tuple[str, dict]:
    """The headline card, updated in place as steps are done: `R-1001 · open`, whose, and what happened.
    With `now` (the time it is drawn), an open case also says how long it has been open."""
    status = "closed" if case.is_closed else "open"
    body = [
        _words(f"{case.id} · {status}", weight="Bolder", size="Medium"),
        _typed(case.owner_name or "waiting for someone to take it", label="Owner: ", chars=100, wire=600),
        _typed(case.what_happened, label="What happened: ", chars=2000, wire=12000),
    ]
    if case.customer:
        body.append(_typed(case.customer, label="Customer: ", chars=200, wire=1500))
    body.append(_words(progress(case), spacing="Medium"))
    if now is not None and not case.is_closed:
        body.append(_words(case_age(case, now=now), subtle=True, spacing="Small"))
    actions = []
    if case.is_closed:
        follow = day(case.follow_up_on) if case.follow_up_on else "none"
        body.append(_facts(("Given", given(case)), ("Time to recover", recovered_in(case)),
                           ("Follow-up", follow)))
    elif not case.owner:  # opened from a low survey score: the first to tap owns it
        body.append(_words("Whoever takes it owns the recovery; the checklist then follows this card.", subtle=True))
        actions.append(execute("Take it", Action.TAKE, {"value": button_value(case.id)}, inputs=False, positive=True))
    else:
        body.append(_words("The checklist follows this card. Only the case owner can tick it off.", subtle=True))
    if case.source:  # a link Teams or Slack gave us (checked by the domain): a button, never markdown
        actions.append({"type": "Action.OpenUrl", "title": "Original message", "url": case.source})
    text = _notify(f"{case.id} · {fit(case.what_happened, chars=60, wire=360)} · {status}")
    return text, _card(body, fallback=text, actions=actions)


def step_title(step: Step) -> str:
    """"1/5 · Apologise and own it"."""
    return f"{CHECKLIST.index(step) + 1}/{len(CHECKLIST)} · {GUIDANCE[step].title}"


def step_card(case: Case, step: Step, *, note_max: int, allowance: Allowance | None = None,
              catalogue: Sequence[str] = (), today: date | None = None,
              causes: Sequence[str] = ()) -> tuple[str, dict]:
    """One checklist step: live, with its inputs and buttons, while it is the current step; ticked once done.
    The compensate step needs the owner's allowance and the catalogue; follow-up needs today's date (and
    the workspace's root causes, asked for on closing)."""
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
        inputs, actions = _compensate(value, allowance, catalogue, case=case)
    elif step == Step.FOLLOW_UP:
        inputs, actions = _follow_up(value, today, causes)
    else:
        inputs = [{"type": "Input.Text", "id": Field.NOTE.value, "label": f"{guide.note_label} (optional)",
                   "isMultiline": True, "maxLength": note_max}]
        actions = [execute("Done", Action.STEP_DONE, value, positive=True)]
    text = _notify(f"{case.id} · {title}")
    return text, _card(body + inputs, fallback=text, actions=actions)


def _compensate(value: dict, allowance: Allowance | None, catalogue, *,
                case: Case | None = None) -> tuple[list[dict], list[dict]]:
    """Pick a catalogue item and an amount (blank: the item's own value; a % off: the bill), checked in the card
    and again by the bot; over the allowance, say why and ask a manager (so the card sets no maximum)."""
    items = as_items(catalogue)
    if allowance is None or not items:
        raise ValueError("the compensate step needs the owner's allowance and the catalogue")
    body = [_words(allowance.describe(), weight="Bolder"),
            _words("No approval needed inside your limit.", subtle=True, spacing="Small")]
    if case is not None and case.top_up is not None:
        body.append(_typed(top_up_status(case, allowance.currency), chars=300, wire=2000, subtle=True))
    # Items with their own value, within what may be given: one tap gives it (a card can't prefill an input
    # from the item picked, so these stand in for it).
    quick = [item for item in items if item.default_amount is not None and item.default_amount <= allowance.most]
    if quick:
        body.append({"type": "ActionSet", "actions": [
            execute(item.label(allowance.currency), Action.GIVE,
                    {**value, Field.KIND.value: item.name, Field.AMOUNT.value: str(item.default_amount)}, inputs=False)
            for item in quick[:QUICK_GIVE_MAX]]})
    defaults = any(item.default_amount is not None for item in items)
    hint = ("Leave the value blank to give the item's own value. " if defaults else "") + (
        "For a % off, type the bill." if any(item.percent is not None for item in items) else "")
    body += [
        {"type": "Input.ChoiceSet", "id": Field.KIND.value, "label": "What", "style": "compact",
         "isRequired": True, "errorMessage": "Pick what you are giving.",
         "choices": [{"title": item.label(allowance.currency), "value": item.name} for item in items],
         "value": items[0].name},
        {"type": "Input.Number", "id": Field.AMOUNT.value, "label": f"Value ({allowance.currency})" if not any(
            item.percent is not None for item in items) else f"Value, or the bill for a % off ({allowance.currency})",
         "placeholder": "e.g. 12.50", "min": 1 / 10 ** decimals(allowance.currency), "isRequired": not defaults,
         # Shown when the amount is empty or below the smallest unit (there is no maximum: more can be asked for).
         "errorMessage": f"Type an amount: up to {allowance.money(allowance.most)} yourself, more by asking a manager."},
        *([_words(hint.strip(), subtle=True, spacing="Small")] if hint else []),
        {"type": "Input.Text", "id": Field.REASON.value, "label": "Over your limit? Say why, and ask a manager",
         "isMultiline": True, "maxLength": TOP_UP_REASON_MAX, "placeholder": "their anniversary dinner was ruined"},
    ]
    actions = []
    if allowance.most > 0:  # with nothing left to give, only asking or "Nothing needed" makes sense
        actions.append(execute("Give", Action.GIVE, value, positive=True))
    actions.append(execute("Ask a manager", Action.TOP_UP_ASK, value))
    actions.append(execute("Nothing needed", Action.NOTHING_NEEDED, value, inputs=False))
    return body, actions


def _follow_up(value: dict, today: date | None, causes: Sequence[str] = ()) -> tuple[list[dict], list[dict]]:
    """Closing: what caused it and what will change (sent with every button), then when to follow up."""
    if today is None:
        raise ValueError("the follow-up step needs today's date")
    body = []
    if causes:
        body += [
            {"type": "Input.ChoiceSet", "id": Field.ROOT_CAUSE.value, "label": "What caused it?", "style": "compact",
             "isRequired": True, "errorMessage": "Pick what caused it first.", "placeholder": "Pick one",
             "choices": [{"title": cause, "value": cause} for cause in causes]},
            {"type": "Input.Text", "id": Field.CHANGE_NOTE.value, "label": "What we'll change (optional)",
             "maxLength": CHANGE_NOTE_MAX, "placeholder": "e.g. check soup temperature"},
        ]
    body.append({"type": "Input.Date", "id": Field.DATE.value, "label": "Or pick a date",
                 "value": default_follow_up(today).isoformat(), "min": today.isoformat(),
                 "max": (today + timedelta(days=FOLLOW_UP_DAYS_MAX)).isoformat(), "isRequired": True,
                 "errorMessage": "Pick today or a later date, within a year."})
    ask = bool(causes)  # the cause goes with every button, so each one validates the inputs
    actions = [
        execute("Tomorrow", Action.FOLLOW_UP_TOMORROW, value, inputs=ask, positive=True),
        execute("In a week", Action.FOLLOW_UP_NEXT_WEEK, value, inputs=ask),
        execute("On that date", Action.FOLLOW_UP_PICK, value),
        execute("No follow-up", Action.NO_FOLLOW_UP, value, inputs=ask),
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
        body.append(_facts(("Follow-up", day(case.follow_up_on) if case.follow_up_on else "no follow-up"),
                           *([("Cause", case.root_cause)] if case.root_cause else [])))
        if case.change_note:
            body.append(_typed(case.change_note, label="We'll change: ", chars=CHANGE_NOTE_MAX, wire=3000))
    note = case.note(step)
    if note:
        body.append(_typed(note, chars=2000, wire=12000, subtle=True))
    text = _notify(f"{case.id} · {title} · done")
    return text, _card(body, fallback=text)


def closing_card(case: Case, *, channel_name: str | None, summary_failed: bool = False) -> tuple[str, dict]:
    """The last message in the case's thread: closed, how fast, and where the summary went."""
    took = recovered_in(case)
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


def summary(case: Case, *, recognised: Sequence[str] = ()) -> tuple[str, dict]:
    """The closing post for managers: who, customer, what happened, said and done, given, how fast, follow-up,
    why it happened; and *Recognise* for managers (`recognised`: the names of those who did)."""
    took = recovered_in(case)  # a reopened case also says how long of it was spent recovering
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
    if case.root_cause:
        body.append(_facts(("Cause", case.root_cause)))
    if case.change_note:  # budgets: the whole summary stays under ACTIVITY_MAX with the worst text
        body.append(_typed(case.change_note, label="We'll change: ", chars=CHANGE_NOTE_MAX, wire=1500))
    if recognised:
        body.append(_typed(", ".join(recognised[:20]), label="🌟 Recognised by ", chars=600, wire=1200))
    elif case.recognised_by:
        body.append(_words(f"🌟 Recognised by {len(case.recognised_by)} manager(s)", subtle=True))
    actions = ([execute("Recognise", Action.RECOGNISE, {"value": button_value(case.id)}, inputs=False)]
               if case.is_closed else [])
    text = _notify(f"Recovered {case.id}: {fit(case.what_happened, chars=80, wire=480)} · given {given(case)} · {took}")
    return text, _card(body, fallback=text, actions=actions)


def repeat_card(case: Case, sentence: str) -> tuple[str, dict]:
    """Under a new case's card: the guest's earlier recoveries (bot/learning.repeat_sentence)."""
    text = _notify(f"{case.id} · {sentence}")
    return text, _card([_words(f"🔁 {sentence}", weight="Bolder")], fallback=text)


def recognised_note(case: Case, *, by: str) -> tuple[str, dict]:
    """The owner's 1:1 message when a manager recognises their recovery."""
    text = _notify(f"{by} recognised your recovery {case.id}")
    return text, _card([_words(f"🌟 {case.id}", weight="Bolder"),
                        _typed(f"{by} recognised your recovery of “{fit(case.what_happened, chars=80, wire=480)}”. "
                               "Thank you!", chars=400, wire=3000)], fallback=text)


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


# --- "Recover from this" (the message extension's dialog) ------------------------------------

def from_message_form(*, what: str, source: str, what_max: int, customer_max: int,
                      problem: str = "", customer: str = "", form: str = "") -> dict:
    """The dialog a message's "Recover from this" opens: what happened, prefilled with the message, and for whom.
    A dialog's buttons are Action.Submit (Teams sends them as composeExtension/submitAction); `source` rides in
    its data, and so does `form` (this dialog's one-time id: a double tap opens one case). `problem` is why the
    last try was refused, shown above the form with what was typed (`what`, `customer`) kept."""
    body = [_words("New recovery from a message", weight="Bolder", size="Medium")]
    if problem:
        body.append(_typed(problem, chars=500, wire=3000))
    body += [
        {"type": "Input.Text", "id": Field.WHAT.value, "label": "What happened?", "isMultiline": True,
         "maxLength": what_max, "value": fit(what, chars=what_max, wire=12000), "isRequired": True,
         "errorMessage": "Say what happened, e.g. cold soup, waited 40 min."},
        {"type": "Input.Text", "id": Field.CUSTOMER.value, "label": "Customer or table (optional)",
         "maxLength": customer_max, "placeholder": "table 4, room 212, order #5531",
         **({"value": fit(customer, chars=customer_max, wire=3000)} if customer else {})},
    ]
    if source:
        body.append(_words("The case will link back to the message.", subtle=True))
    return _card(body, fallback="New recovery from a message",
                 actions=[{"type": "Action.Submit", "title": "Open case", "style": "positive",
                           "data": {**({"source": source} if source else {}), **({"form": form} if form else {})}}])


# --- follow-up reminders and idle nudges (bot/followups.py) -------------------------------------

def _follow_up_with(case: Case) -> dict:
    """"Follow up with table 4"; without a customer reference (none named, or erased by retention) "the
    customer of R-1042" (what happened is said with it). The customer is typed text: a TextRun."""
    if case.customer:
        return _typed(case.customer, label="Follow up with ", chars=300, wire=1500)
    return _words(f"Follow up with the customer of {case.id}")


def _follow_up_line(case: Case) -> str:
    """The notification: "Follow up with table 4 (R-1042)" or "Follow up with the customer of R-1042: cold soup"."""
    if case.customer:
        return f"Follow up with {fit(case.customer, chars=120, wire=720)} ({case.id})"
    if case.erased_at is not None:
        return f"Follow up with the customer of {case.id}"
    return f"Follow up with the customer of {case.id}: {fit(case.what_happened, chars=120, wire=720)}"


def _erased_note(case: Case) -> list[dict]:
    """Retention erased the customer reference: say so, or the owner can't tell whom to call."""
    if case.erased_at is None:
        return []
    from cards.words import ERASED_NOTE  # one sentence for both platforms
    return [_words(ERASED_NOTE, subtle=True)]


def reminder_card(case: Case, *, due) -> tuple[str, dict]:
    """The owner's proactive message on the follow-up day, with how it went as three buttons."""
    from bot.followups import reminder_value  # what the buttons carry, read back by the same module
    data = {"value": reminder_value(case.id, due)}
    body = [
        _words(f"⏰ Follow up ({case.id})", weight="Bolder", size="Medium"),
        _follow_up_with(case),
        _typed(case.what_happened, label="What happened: ", chars=500, wire=3000, subtle=True),
        *_erased_note(case),
        _facts(("Given", given(case))),
    ]
    actions = [
        execute("Done — they're happy", Action.REMINDER_DONE, data, inputs=False, positive=True),
        execute("Still unhappy — reopen", Action.REMINDER_REOPEN, data, inputs=False),
        execute("Snooze a day", Action.REMINDER_SNOOZE, data, inputs=False),
    ]
    text = _notify(_follow_up_line(case))
    return text, _card(body, fallback=text, actions=actions)


def reminder_answered(case: Case, answer: str) -> tuple[str, dict]:
    """The reminder once answered, without its buttons: `answer` says what happened."""
    body = [_words(f"Follow up ({case.id})", weight="Bolder", size="Medium"),
            _follow_up_with(case),
            _words(answer)]
    text = _notify(f"{case.id}: {answer}")
    return text, _card(body, fallback=text)


def nudge_card(case: Case, *, now) -> tuple[str, dict]:
    """"R-1042 has been open 15 min — next: fix", to the owner, once."""
    step = STEP_NAMES[case.current_step].lower() if case.current_step else "close it"
    since = case.reopenings[-1].at if case.reopenings else case.opened_at  # reopened: since then
    again = " again for" if case.reopenings else ""
    line = f"{case.id} has been open{again} {duration((now - since).total_seconds())} — next: {step}"
    body = [_words(f"⏳ {line}", weight="Bolder"),
            _typed(case.what_happened, label="What happened: ", chars=500, wire=3000, subtle=True)]
    return _notify(line), _card(body, fallback=_notify(line))


def reopened_card(case: Case) -> tuple[str, dict]:
    """Told in the case's conversation: the follow-up found the customer still unhappy."""
    body = [_words(f"↩️ {case.id} is reopened", weight="Bolder"),
            _typed(case.owner_name, label="Followed up by ", chars=100, wire=600),
            _words("The customer is still unhappy. The fix step is back below the case card.")]
    text = _notify(f"{case.id} is reopened: the customer is still unhappy.")
    return text, _card(body, fallback=text)


def _clock_time(at) -> str:
    """A moment as each reader's own clock shows it: Adaptive Cards' TIME() function (RFC 3339, in UTC)."""
    return f"{{{{TIME({at.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%SZ})}}}}"


def case_age(case: Case, *, now) -> str:
    return words_case_age(case, now=now, clock=_clock_time)


# --- the compensation catalogue and top-ups (bot/catalogue.py, bot/topups.py) ----------------

def catalogue_card(items, *, currency: str) -> tuple[str, dict]:
    """`recover admin catalogue`: what people can pick when they give, in order."""
    body = [_words("Compensation catalogue", weight="Bolder", size="Medium")]
    body += [_typed(item.label(currency), chars=120, wire=800) for item in as_items(items)]
    body.append(_words("Add: recover admin catalogue add Free dessert 8 (or add 20% off the bill 20%; quote a name "
                       "that ends in a number). Remove: recover admin catalogue remove Free dessert.",
                       subtle=True, spacing="Medium"))
    return "Compensation catalogue", _card(body, fallback="Compensation catalogue")


def top_up_request(case: Case, *, kind: str, currency: str) -> tuple[str, dict]:
    """The request managers see in the recovery channel: Approve / Deny while it waits, the decision after."""
    top_up = case.top_up
    money = format_money(top_up.amount, currency)
    body = [
        _words(f"💬 Top-up request on {case.id}: {money}", weight="Bolder", size="Medium"),
        _typed(case.owner_name, label="Who: ", chars=100, wire=600),
        _typed(kind, label="What: ", chars=100, wire=600),
        _typed(case.what_happened, label="What happened: ", chars=300, wire=2000),
        _typed(top_up.reason, label="Why: ", chars=600, wire=4000),
    ]
    actions = []
    value = {"value": button_value(case.id, Step.COMPENSATE)}
    if settled_without_waiting(case):  # given within the allowance meanwhile: nothing left to decide
        body.append(_typed(f"{case.owner_name} settled it without waiting: {given(case)}. Nothing to decide.",
                           label="☑️ ", chars=300, wire=2000))
    elif top_up.status == "pending":
        body.append(_words("Managers only. A one-off raise for this case; the role's limits don't change.",
                           subtle=True))
        actions = [execute(f"Approve {money}", Action.TOP_UP_APPROVE, value, inputs=False, positive=True),
                   execute("Deny", Action.TOP_UP_DENY, value, inputs=False)]
    else:
        mark = "✅" if top_up.status == "approved" else "✋"
        body.append(_typed(top_up.decided_by_name or top_up.decided_by,
                           label=f"{mark} {top_up.status.capitalize()} by ", chars=100, wire=600))
    text = _notify(top_up_status(case, currency))
    return text, _card(body, fallback=text, actions=actions)


def top_up_note(case: Case, *, currency: str, allowance: Allowance | None = None) -> tuple[str, dict]:
    """What the case's owner reads in their thread: asked, approved, or denied (and what they can do now)."""
    top_up = case.top_up
    money = format_money(top_up.amount, currency)
    if top_up.status == "pending":
        body = [_words(f"⏳ You asked a manager for {money} on {case.id}. Their answer will be here; you can still "
                       "give within your limit.")]
    elif top_up.status == "approved":
        body = [_typed(top_up.decided_by_name, label="✅ Approved by ", chars=100, wire=600),
                _words(f"{money} is recorded as given on {case.id}.")]
    else:
        body = [_typed(top_up.decided_by_name, label="✋ Not approved by ", chars=100, wire=600),
                _words(f"{money} on {case.id} was not approved. Give within your allowance, or choose “Nothing "
                       "needed”, on the compensate card." + (f" ({allowance.describe()}.)" if allowance else ""))]
    text = _notify(top_up_status(case, currency))
    return text, _card(body, fallback=text)
