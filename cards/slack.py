"""Block Kit for every message and modal Amends sends in Slack.

Each builder returns what Slack needs (fallback `text` plus `blocks`, or a view) from domain
values alone. User text is escaped and clipped here, once, so nothing a person types can ping
a channel, forge a link or push a block past Slack's limits.
"""

import json
from datetime import date, timedelta

from bot.cases import Case
from bot.checklist import CHECKLIST, GUIDANCE, Step
from bot.roles import Allowance, Role, describe_role
from cards.ids import Action, Field, Form, button_value
from cards.text import clip, escape, safe
from cards.words import STEP_NAMES, day, duration, given, progress

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

def case_card(case: Case) -> tuple[str, list[dict]]:
    """The headline post: `R-1001 · cold soup, table 4… · Amy · open`, updated in place as steps are done."""
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
    blocks.append(_context(progress(case)))
    if case.is_closed:
        follow = day(case.follow_up_on) if case.follow_up_on else "none"
        blocks.append(_context(f"Given: {escape(given(case))} · Time to recover: "
                               f"{duration(case.time_to_recover.total_seconds())} · Follow-up: {follow}"))
    elif not case.owner:  # opened from a low survey score: the first to tap owns it
        blocks.append({"type": "actions", "elements": [
            _button("Take it", Action.TAKE, button_value(case.id), style="primary")]})
        blocks.append(_context("Whoever takes it owns the recovery; the checklist then follows in this thread."))
    else:
        blocks.append(_context("The checklist is in this thread. Only the case owner can tick it off."))
    text = f"{case.id} · {clip(case.what_happened, 60)} · {owner} · {status}"
    return escape(text), blocks


def step_message(case: Case, step: Step, *, allowance: Allowance | None = None) -> tuple[str, list[dict]]:
    """One checklist step in the case thread: live with buttons while it is the current step, a tick after."""
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


def _done_step(case: Case, step: Step, title: str) -> tuple[str, list[dict]]:
    line = f"✅ *{escape(title)}*"
    if step == Step.COMPENSATE:
        line += f" — {escape(given(case))}"
    elif step == Step.FOLLOW_UP:
        line += f" — {day(case.follow_up_on) if case.follow_up_on else 'no follow-up'}"
    blocks = [_section(line)]
    note = case.note(step)
    if note:
        blocks.append(_section(">" + safe(note, 2800).replace("\n", "\n>")))
    return escape(f"{case.id} · {title} · done"), blocks


def closing_message(case: Case, *, summary_channel: str | None, summary_failed: bool = False) -> tuple[str, list[dict]]:
    """The last thread message: closed, how fast, and where the summary went."""
    took = duration(case.time_to_recover.total_seconds())
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
    took = duration(case.time_to_recover.total_seconds()) if case.is_closed else "—"
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
    text = f"Recovered {case.id}: {clip(case.what_happened, 80)} · given {given(case)} · {took}"  # escaped whole, below
    return escape(text), blocks


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


def give_form(case: Case, *, allowance: Allowance, catalogue: tuple[str, ...]) -> dict:
    """Pick a kind and an amount; the allowance shown is the one at the moment the form opened."""
    options = [{"text": _plain(kind, 75), "value": kind[:150]} for kind in catalogue[:100]]
    return _modal(Form.GIVE, f"{case.id}: give", [
        _section(f"*{escape(allowance.describe())}*\nNo approval needed inside your limit."),
        {"type": "input", "block_id": Field.KIND.value, "label": _plain("What", 2000),
         "element": {"type": "static_select", "action_id": Field.KIND.value, "options": options,
                     "initial_option": options[0]}},
        _text_input(Field.AMOUNT, f"Value ({allowance.currency})", multiline=False, max_length=20,
                    placeholder="e.g. 12.50"),
    ], {"case": case.id}, "Record")


def follow_up_form(case: Case, *, initial: date) -> dict:
    return _modal(Form.FOLLOW_UP, f"{case.id}: follow up", [
        {"type": "input", "block_id": Field.DATE.value, "label": _plain("Follow up on", 2000),
         "element": {"type": "datepicker", "action_id": Field.DATE.value, "initial_date": initial.isoformat()}},
    ], {"case": case.id}, "Close case")


def default_follow_up(today: date) -> date:
    return today + timedelta(days=1)
