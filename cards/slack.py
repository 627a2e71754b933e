"""Block Kit for every message and modal Amends sends in Slack.

Each builder returns what Slack needs (fallback `text` plus `blocks`, or a view) from domain
values alone. User text is escaped and clipped here, once, so nothing a person types can ping
a channel, forge a link or push a block past Slack's limits.
"""

import json
from datetime import date, timedelta, timezone

from bot.cases import Case
from bot.catalogue import as_items
from bot.topups import REASON_MAX, settled_without_waiting
from bot.checklist import CHECKLIST, GUIDANCE, Step
from bot.roles import Allowance, Role, describe_role
from cards.ids import Action, Field, Form, button_value
from cards.text import clip, escape, safe
from cards.words import case_age as words_case_age
from cards.words import STEP_NAMES, day, duration, given, progress, recovered_in, top_up_status
from bot.money import format_money
from bot.learning import CHANGE_NOTE_MAX

SECTION_MAX = 3000
FIELD_MAX = 2000
BUTTON_MAX = 75
HEADER_MAX = 150
TITLE_MAX = 24
TEXT_INPUT_MAX = 3000



def _plain(text: str, limit: int = HEADER_MAX) -> dict:
    return {"type": "plain_text", "text": clip(text, limit), "emoji": True}


def _section(markdown: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(markdown, SECTION_MAX)}}


def _context(*markdown: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(m, SECTION_MAX)} for m in markdown]}


def _button(text: str, action: Action, value: str, *, style: str | None = None) -> dict:
    button = {"type": "button", "text": _plain(text, BUTTON_MAX), "action_id": action.value, "value": value}
    if style:
        button["style"] = style
    return button


# --- the case card and its thread ------------------------------------------------------------

def case_card(case: Case, *, now=None) -> tuple[str, list[dict]]:
    """The headline post: `R-1001 · cold soup, table 4… · Amy · open`, updated in place as steps are done.
    With `now` (the time it is drawn), an open case also says how long it has been open."""
    status = "closed" if case.is_closed else "open"
    owner = case.owner_name or "waiting for someone to take it"
    headline = f"*{case.id}* · {safe(case.what_happened, 60)} · {safe(owner, 80)} · {status}"
    blocks = [_section(headline)]
    details = f"*What happened:* {safe(case.what_happened, 2000)}"
    if case.customer:
        details += f"\n*Customer:* {safe(case.customer, 300)}"
    if case.source:
        details += f"\n*Reported in:* <{case.source}|the original message>"
    blocks.append(_section(details))
    blocks.append(_context(progress(case), *([case_age(case, now=now)] if now and not case.is_closed else [])))
    if case.is_closed:
        follow = day(case.follow_up_on) if case.follow_up_on else "none"
        blocks.append(_context(f"Given: {escape(given(case))} · Time to recover: "
                               f"{recovered_in(case)} · Follow-up: {follow}"))
    elif not case.owner:  # opened from a low survey score: the first to tap owns it
        blocks.append({"type": "actions", "elements": [
            _button("Take it", Action.TAKE, button_value(case.id), style="primary")]})
        blocks.append(_context("Whoever takes it owns the recovery; the checklist then follows in this thread."))
    else:
        blocks.append(_context("The checklist is in this thread. Only the case owner can tick it off."))
    text = f"{case.id} · {clip(case.what_happened, 60)} · {owner} · {status}"
    return escape(text), blocks


def step_message(case: Case, step: Step, *, allowance: Allowance | None = None,
                 causes: tuple[str, ...] = ()) -> tuple[str, list[dict]]:
    """One checklist step in the case thread: live with buttons while it is the current step, a tick after.
    The follow-up step closes the case, so it also asks what caused it (one of `causes`) and what will change."""
    guide = GUIDANCE[step]
    number = CHECKLIST.index(step) + 1
    title = f"{number}/{len(CHECKLIST)} · {guide.title}"
    if step in case.done:
        return _done_step(case, step, title)
    if step != case.current_step:
        return escape(title), [_section(f"◻️ *{escape(title)}* — not yet")]
    blocks = [_section(f"▶️ *{escape(title)}*\n{escape(guide.prompt)}")]
    if guide.tips:
        blocks.append(_section("\n".join(f"• {escape(tip)}" for tip in guide.tips)))
    value = button_value(case.id, step)
    if step == Step.COMPENSATE:
        if allowance is not None:
            blocks.append(_section(f"*{escape(allowance.describe())}*"))
        blocks.append({"type": "actions", "elements": [
            _button("Give something…", Action.GIVE, value, style="primary"),
            _button("Nothing needed", Action.NOTHING_NEEDED, value),
        ]})
    elif step == Step.FOLLOW_UP:
        blocks += closing_inputs(causes)
        blocks.append({"type": "actions", "elements": [
            _button("Tomorrow", Action.FOLLOW_UP_TOMORROW, value, style="primary"),
            _button("In a week", Action.FOLLOW_UP_NEXT_WEEK, value),
            _button("Pick a date…", Action.FOLLOW_UP_PICK, value),
            _button("No follow-up", Action.NO_FOLLOW_UP, value),
        ]})
    else:
        blocks.append({"type": "actions", "elements": [
            _button("Done", Action.STEP_DONE, value, style="primary"),
            _button("Done, with a note…", Action.STEP_NOTE, value),
        ]})
    return escape(f"{case.id} · {title}"), blocks


def _cause_select(causes: tuple[str, ...], picked: str = "") -> dict:
    options = [{"text": _plain(cause, 75), "value": cause[:150]} for cause in causes[:100]]
    element = {"type": "static_select", "action_id": Field.ROOT_CAUSE.value, "options": options,
               "placeholder": _plain("Pick one", 150)}
    chosen = next((o for o in options if o["value"] == picked), None)
    if chosen is not None:
        element["initial_option"] = chosen
    return {"type": "input", "block_id": Field.ROOT_CAUSE.value, "label": _plain("What caused it?", 2000),
            "element": element}


def closing_inputs(causes: tuple[str, ...], *, cause: str = "", change: str = "") -> list[dict]:
    """Closing asks why it happened (learn, don't punish) and, optionally, what will change."""
    if not causes:
        return []
    return [_cause_select(causes, cause),
            _text_input(Field.CHANGE_NOTE, "What we'll change (optional)", multiline=False,
                        max_length=CHANGE_NOTE_MAX, optional=True, placeholder="e.g. check soup temperature",
                        initial=change)]


def _learned(case: Case) -> str:
    """"Cause: food · We'll change: check soup temperature", or ""."""
    parts = [f"*Cause:* {escape(case.root_cause)}"] if case.root_cause else []
    if case.change_note:
        parts.append(f"*We'll change:* {safe(case.change_note, 600)}")
    return " · ".join(parts)


def _done_step(case: Case, step: Step, title: str) -> tuple[str, list[dict]]:
    line = f"✅ *{escape(title)}*"
    if step == Step.COMPENSATE:
        line += f" — {escape(given(case))}"
    elif step == Step.FOLLOW_UP:
        line += f" — {day(case.follow_up_on) if case.follow_up_on else 'no follow-up'}"
    blocks = [_section(line)]
    if step == Step.FOLLOW_UP and _learned(case):
        blocks.append(_context(_learned(case)))
    note = case.note(step)
    if note:
        blocks.append(_section(">" + safe(note, 2800).replace("\n", "\n>")))
    return escape(f"{case.id} · {title} · done"), blocks


def closing_message(case: Case, *, summary_channel: str | None, summary_failed: bool = False) -> tuple[str, list[dict]]:
    """The last thread message: closed, how fast, and where the summary went."""
    took = recovered_in(case)
    line = f"🎉 *{case.id} is closed.* Recovered in {took}."
    if summary_channel and not summary_failed:
        where = f"The summary is in <#{summary_channel}>."
    elif summary_channel:
        where = (f"I couldn't post the summary in <#{summary_channel}>, so it is below. "
                 "An admin can fix this by inviting me there (`/invite @Amends`).")
    else:
        where = ("No recovery channel is set, so the summary is below. An admin can set one with "
                 "`/recover admin channel #channel`; I've told the admins.")
    return escape(f"{case.id} is closed. Recovered in {took}."), [_section(f"{line}\n{where}")]


def summary(case: Case) -> tuple[str, list[dict]]:
    """The closing post for managers: who, customer, what happened, said and done, given, how fast, follow-up."""
    took = recovered_in(case)  # a reopened case also says how long of it was spent recovering
    follow = day(case.follow_up_on) if case.follow_up_on else "none"
    fields = [
        f"*Who*\n<@{case.owner}>",
        f"*Customer*\n{safe(case.customer, 300) if case.customer else '—'}",
        f"*Given*\n{escape(given(case, with_code=True))}",
        f"*Time to recover*\n{took}",
        f"*Follow-up*\n{follow}",
    ]
    blocks = [
        {"type": "header", "text": _plain(f"Recovered: {case.id}")},
        _section(f"*What happened*\n{safe(case.what_happened, 2000)}"
                 + (f"\n<{case.source}|The original message>" if case.source else "")),
        {"type": "section", "fields": [{"type": "mrkdwn", "text": clip(f, FIELD_MAX)} for f in fields]},
    ]
    said = [(label, case.note(step)) for label, step in
            (("Said", Step.APOLOGISE), ("Learned", Step.EMPATHISE), ("Done", Step.FIX))]
    if any(note for _, note in said):
        blocks.append(_section("\n".join(f"*{label}:* {safe(note, 900)}" for label, note in said if note)))
    if _learned(case):
        blocks.append(_section(_learned(case)))
    if case.recognised_by:  # mentions: Slack shows each manager's name
        blocks.append(_context("🌟 Recognised by " + ", ".join(f"<@{m}>" for m in case.recognised_by[:20])))
    if case.is_closed:
        blocks.append({"type": "actions", "elements": [
            _button("Recognise", Action.RECOGNISE, button_value(case.id))]})
    text = f"Recovered {case.id}: {clip(case.what_happened, 80)} · given {given(case)} · {took}"  # escaped whole, below
    return escape(text), blocks


def repeat_note(sentence: str) -> tuple[str, list[dict]]:
    """In a new case's thread: the guest's earlier recoveries (bot/learning.repeat_sentence)."""
    return escape(sentence), [_context(f"🔁 {escape(sentence)}")]


def recognised_note(case: Case, *, by: str) -> tuple[str, list[dict]]:
    """The owner's DM when a manager recognises their recovery."""
    line = f"🌟 {by} recognised your recovery {case.id} ({clip(case.what_happened, 80)}). Thank you!"
    return escape(line), [_section(escape(line))]


# --- answers to commands ---------------------------------------------------------------------

def help_message(usage: str) -> tuple[str, list[dict]]:
    intro = ("*Amends* guides a service recovery: apologise → empathise → fix → compensate → follow up, "
             "and posts a summary for your managers. You decide what to give, within your limit.")
    return "Amends help", [_section(intro), _section(escape(usage))]


LISTED_CASES_MAX = 40


def case_list(cases: list[tuple[Case, str | None]]) -> tuple[str, list[dict]]:
    """Open cases with links to their threads (link may be None when the card was never posted)."""
    if not cases:
        return "You have no open cases.", [_section("You have no open cases. 🎉")]
    lines = []
    for case, link in cases[:LISTED_CASES_MAX]:
        step = STEP_NAMES[case.current_step] if case.current_step else "closing"
        name = f"<{link}|{case.id}>" if link else case.id
        lines.append(f"• {name} · {safe(case.what_happened, 60)} · next: {step}")
    return f"You have {len(cases)} open case(s).", [_section("*Your open cases*\n" + "\n".join(lines))]


def limits_message(roles: list[Role], *, currency: str, channel: str | None) -> tuple[str, list[dict]]:
    lines = [f"• {escape(describe_role(role, currency))}" for role in roles]
    where = f"<#{channel}>" if channel else "not set — `/recover admin channel #channel`"
    return "Roles and limits", [
        _section("*Roles, limits and budgets*\n" + "\n".join(lines)),
        _context(f"People without a role get *staff*. Recovery channel: {where}"),
    ]


def sentence(text: str) -> tuple[str, list[dict]]:
    """A one-line answer: escaped, since refusals may quote what the person typed."""
    return escape(text), [_section(escape(text))]


# --- modals ----------------------------------------------------------------------------------

def _modal(form: Form, title: str, blocks: list[dict], metadata: dict, submit: str) -> dict:
    return {
        "type": "modal",
        "callback_id": form.value,
        "title": _plain(title, TITLE_MAX),
        "submit": _plain(submit, TITLE_MAX),
        "close": _plain("Cancel", TITLE_MAX),
        "private_metadata": json.dumps(metadata),
        "blocks": blocks,
    }


def _text_input(field: Field, label: str, *, multiline: bool, max_length: int, optional: bool = False,
                placeholder: str = "", initial: str = "") -> dict:
    element = {"type": "plain_text_input", "action_id": field.value, "multiline": multiline,
               "max_length": max_length}
    if placeholder:
        element["placeholder"] = _plain(placeholder, 150)
    if initial:
        element["initial_value"] = clip(initial, max_length)
    return {"type": "input", "block_id": field.value, "label": _plain(label, 2000), "element": element,
            "optional": optional}


def new_case_form(*, channel: str, what_max: int, customer_max: int, what: str = "",
                  source: str | None = None) -> dict:
    """`/recover` alone, or "Recover from this" on a message (then prefilled, with a link back to it)."""
    blocks = []
    if source:
        blocks.append(_context(f"From <{source}|this message>"))
    blocks += [
        _text_input(Field.WHAT, "What happened?", multiline=True, max_length=what_max,
                    placeholder="cold soup, waited 40 min", initial=what),
        _text_input(Field.CUSTOMER, "Customer or table", multiline=False, max_length=customer_max,
                    optional=True, placeholder="table 4, room 212, order #5531"),
    ]
    metadata = {"channel": channel, **({"source": source} if source else {})}
    return _modal(Form.NEW_CASE, "New recovery", blocks, metadata, "Open case")


def note_form(case: Case, step: Step, *, note_max: int) -> dict:
    guide = GUIDANCE[step]
    return _modal(Form.STEP_NOTE, f"{case.id}: {STEP_NAMES[step]}", [
        _section(f"*{escape(guide.title)}* — {safe(case.what_happened, 200)}"),
        _text_input(Field.NOTE, guide.note_label or "Note", multiline=True, max_length=note_max),
    ], {"case": case.id, "step": step.value}, "Done")


def give_form(case: Case, *, allowance: Allowance, catalogue, chosen: str = "") -> dict:
    """Pick a catalogue item and an amount, prefilled with the item's own value (picking another item redraws
    the form: `chosen`; a % off asks for the bill), or, over the allowance, say why and a manager is asked.
    The allowance shown is the one at the moment the form opened."""
    items = as_items(catalogue)[:100]
    options = [{"text": _plain(item.label(allowance.currency), 75), "value": item.name[:150]} for item in items]
    index = next((n for n, item in enumerate(items) if item.name == chosen), 0)
    picked = items[index]
    defaults = any(item.default_amount is not None for item in items)
    label = (f"Bill ({allowance.currency}): {format(picked.percent.normalize(), 'f')}% of it is given"
             if picked.percent is not None else f"Value ({allowance.currency})")
    amount = _text_input(Field.AMOUNT, label, multiline=False, max_length=20, placeholder="e.g. 12.50",
                         optional=defaults, initial=_typed_amount(picked.default_amount))
    # A new action id per item: Slack keeps what was typed in an input whose ids don't change, so the
    # prefilled value of the item picked shows only under a fresh one (the form reads the block either way).
    amount["element"]["action_id"] = Field.AMOUNT.value if index == 0 else f"{Field.AMOUNT.value}-{index}"
    if defaults:
        amount["hint"] = _plain("Blank gives the item's own value.", 2000)
    return _modal(Form.GIVE, f"{case.id}: give", [
        _section(f"*{escape(allowance.describe())}*\nNo approval needed inside your limit."),
        {"type": "input", "block_id": Field.KIND.value, "label": _plain("What", 2000), "dispatch_action": True,
         "element": {"type": "static_select", "action_id": Field.KIND.value, "options": options,
                     "initial_option": options[index]}},
        amount,
        _text_input(Field.REASON, "Over your limit? Say why, and a manager is asked", multiline=True,
                    max_length=REASON_MAX, optional=True, placeholder="their anniversary dinner was ruined"),
    ], {"case": case.id}, "Record")


def _typed_amount(amount) -> str:
    """An amount as a person would type it: "8", "8.50"."""
    if amount is None:
        return ""
    return str(amount.to_integral_value()) if amount == amount.to_integral_value() else str(amount)


def follow_up_form(case: Case, *, initial: date, causes: tuple[str, ...] = (), cause: str = "",
                   change: str = "") -> dict:
    """Pick the follow-up date; the cause and change picked in the thread come along (and can still change)."""
    return _modal(Form.FOLLOW_UP, f"{case.id}: follow up", [
        {"type": "input", "block_id": Field.DATE.value, "label": _plain("Follow up on", 2000),
         "element": {"type": "datepicker", "action_id": Field.DATE.value, "initial_date": initial.isoformat()}},
        *closing_inputs(causes, cause=cause, change=change),
    ], {"case": case.id}, "Close case")


def default_follow_up(today: date) -> date:
    return today + timedelta(days=1)


# --- the compensation catalogue and top-ups (bot/catalogue.py, bot/topups.py) ----------------

def catalogue_message(items, *, currency: str) -> tuple[str, list[dict]]:
    """`/recover admin catalogue`: what people can pick when they give, in order."""
    lines = [f"• {escape(item.label(currency))}" for item in as_items(items)]
    sections = ["*Compensation catalogue*"]  # as many sections as the items need: one holds 3000 characters
    for line in lines:
        if len(sections[-1]) + 1 + len(line) > SECTION_MAX:
            sections.append(line)
        else:
            sections[-1] += "\n" + line
    return "Compensation catalogue", [
        *(_section(text) for text in sections),
        _context("Add: `/recover admin catalogue add Free dessert 8 🍰` (or `add 20% off the bill 20%`; quote a "
                 "name that ends in a number). Remove: `/recover admin catalogue remove Free dessert`."),
    ]


def top_up_request(case: Case, *, kind: str, currency: str) -> tuple[str, list[dict]]:
    """The request managers see in the recovery channel: Approve / Deny while it waits, the decision after."""
    top_up = case.top_up
    money = format_money(top_up.amount, currency)
    blocks = [
        _section(f"💬 *<@{case.owner}> asks for {money}* ({escape(kind)}) on *{case.id}* · "
                 f"{safe(case.what_happened, 200)}"),
        _section(f"*Why:* {safe(top_up.reason, 1000)}"),
    ]
    if settled_without_waiting(case):  # given within the allowance meanwhile: nothing left to decide
        blocks.append(_context(f"☑️ <@{case.owner}> settled it without waiting: {escape(given(case))}. "
                               "Nothing to decide."))
    elif top_up.status == "pending":
        blocks.append({"type": "actions", "elements": [
            _button(f"Approve {money}", Action.TOP_UP_APPROVE, button_value(case.id, Step.COMPENSATE), style="primary"),
            _button("Deny", Action.TOP_UP_DENY, button_value(case.id, Step.COMPENSATE), style="danger"),
        ]})
        blocks.append(_context("Managers only. A one-off raise for this case; the role's limits don't change."))
    else:
        mark = "✅" if top_up.status == "approved" else "✋"
        blocks.append(_context(f"{mark} {top_up.status.capitalize()} by <@{top_up.decided_by}>"))
    return escape(top_up_status(case, currency)), blocks


def top_up_note(case: Case, *, currency: str, allowance: Allowance | None = None) -> tuple[str, list[dict]]:
    """What the case's owner reads in their thread: asked, approved, or denied (and what they can do now)."""
    top_up = case.top_up
    money = format_money(top_up.amount, currency)
    if top_up.status == "pending":
        line = f"⏳ You asked a manager for {money}. Their answer will be here; you can still give within your limit."
    elif top_up.status == "approved":
        line = f"✅ {top_up.decided_by_name} approved {money}: it is recorded as given on {case.id}."
    else:
        line = (f"✋ {top_up.decided_by_name} said no to {money}. Give within your allowance, or choose "
                "“Nothing needed”, on the compensate step above.")
        if allowance is not None:
            line += f" ({allowance.describe()}.)"
    if top_up.status == "pending":
        return escape(line), [_section(escape(line))]
    return escape(line), [_section(f"<@{case.owner}> {escape(line)}")]  # decided: the owner is notified


# --- follow-up reminders and idle nudges (bot/followups.py) -------------------------------------

def _follow_up_with(case: Case, limit: int = 200) -> str:
    """"Follow up with table 4 (R-1042)"; without a customer reference (none named, or erased by retention)
    "Follow up with the customer of R-1042" (what happened is said with it). Plain text: escape it to show it."""
    if case.customer:
        return f"Follow up with {clip(case.customer, limit)} ({case.id})"
    return f"Follow up with the customer of {case.id}"


def _erased_note(case: Case) -> list[dict]:
    """Retention erased the customer reference: say so, or the owner can't tell whom to call."""
    if case.erased_at is None:
        return []
    from cards.words import ERASED_NOTE
    return [_context(escape(ERASED_NOTE))]


def reminder_message(case: Case, *, due) -> tuple[str, list[dict]]:
    """The owner's DM on the follow-up day: "Follow up with table 4 (R-1042)", and how it went."""
    from bot.followups import reminder_value  # what the buttons carry, read back by the same module
    value = reminder_value(case.id, due)
    blocks = [
        _section(f"⏰ *{escape(_follow_up_with(case, 300))}*"),
        _context(f"What happened: {safe(case.what_happened, 500)} · Given: {escape(given(case))}"),
        *_erased_note(case),
        {"type": "actions", "elements": [
            _button("Done — they're happy", Action.REMINDER_DONE, value, style="primary"),
            _button("Still unhappy — reopen", Action.REMINDER_REOPEN, value, style="danger"),
            _button("Snooze a day", Action.REMINDER_SNOOZE, value),
        ]},
    ]
    about = "" if case.customer or case.erased_at else f": {clip(case.what_happened, 120)}"
    return escape(_follow_up_with(case) + about), blocks


def reminder_answered(case: Case, answer: str) -> tuple[str, list[dict]]:
    """The reminder DM once answered (in place, without its buttons): `answer` says what happened."""
    line = f"{escape(_follow_up_with(case, 300))}: {escape(answer)}"
    return escape(f"{_follow_up_with(case)}: {answer}"), [_section(line)]


def nudge_message(case: Case, *, now) -> tuple[str, list[dict]]:
    """"R-1042 has been open 15 min — next: fix", to the owner, once."""
    step = STEP_NAMES[case.current_step].lower() if case.current_step else "close it"
    since = case.reopenings[-1].at if case.reopenings else case.opened_at  # reopened: since then
    again = " again for" if case.reopenings else ""
    line = f"{case.id} has been open{again} {duration((now - since).total_seconds())} — next: {step}"
    return escape(line), [_section(f"⏳ *{escape(line)}*"),
                          _context(f"What happened: {safe(case.what_happened, 500)} · The checklist is in its thread.")]


def reopened_notice(case: Case) -> tuple[str, list[dict]]:
    """Told in the case's channel: the follow-up found the customer still unhappy."""
    line = (f"{case.id} is reopened: {case.owner_name} followed up and the customer is still unhappy. "
            "The fix step is back in its thread.")
    return escape(line), [_section(f"↩️ {safe(line, 1000)}")]


def _clock_time(at) -> str:
    """A moment as each reader's own clock shows it ("14:30"), "14:30 UTC" where Slack can't localise."""
    return f"<!date^{int(at.timestamp())}^{{time}}|{at.astimezone(timezone.utc):%H:%M} UTC>"


def case_age(case: Case, *, now) -> str:
    return words_case_age(case, now=now, clock=_clock_time)
