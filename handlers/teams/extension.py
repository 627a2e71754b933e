""""Recover from this" on a Teams message: the message extension's action command (manifest.json).

A guest's complaint forwarded into a channel, a review pasted by a manager: from the message's "…"
menu, Teams sends `composeExtension/fetchTask` with the message (value.messagePayload); we answer
with a dialog, the new-case form prefilled with the message's text. Its submit comes back as
`composeExtension/submitAction`: the case opens for whoever sent it, its card is posted in the
conversation the message is in (in a channel, the message's thread) with a link back to the
message, the checklist follows, and the dialog closes. A refusal keeps the dialog open, with what
was typed and the reason above it.
"""

import hashlib
import html
import logging
import re
import secrets
from http import HTTPStatus

from botbuilder.core import InvokeResponse, TurnContext

from bot.cases import MessageRef
from bot.checklist import Step
from bot.errors import Refusal, sentence_for
from bot.recovery import CUSTOMER_MAX, WHAT_HAPPENED_MAX, Recovery
from cards import teams as cards
from cards.ids import Field
from handlers.teams.publish import TeamsError, TeamsPublisher
from handlers.teams.turns import card_activity, name_of, person_of, workspace_of

log = logging.getLogger(__name__)

FETCH_TASK = "composeExtension/fetchTask"
SUBMIT_ACTION = "composeExtension/submitAction"
COMMAND_ID = "recoverFromMessage"  # manifest.json composeExtensions[0].commands[0].id
TITLE = "Recover from this"
SOURCE = "source"  # the dialog's data key for the link back to the message
FORM = "form"  # the dialog's data key for its one-time id

_MENTION = re.compile(r"<at\b[^>]*>(.*?)</at>", re.IGNORECASE | re.DOTALL)
_BREAK = re.compile(r"<br\s*/?>|</p>|</div>|</li>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")


def message_text(payload: dict) -> str:
    """A message's body as a person reads it: Teams sends HTML, with each mention as <at id="0">Name</at>."""
    body = payload.get("body") or {}
    content = str(body.get("content") or "")
    if str(body.get("contentType") or "html").lower() == "html":
        content = _MENTION.sub(lambda found: "@" + found.group(1), content)
        content = _TAG.sub("", _BREAK.sub("\n", content))
        content = html.unescape(content)
    lines = [" ".join(line.split()) for line in content.splitlines()]
    return "\n".join(line for line in lines if line).strip()


def _task(card: dict) -> InvokeResponse:
    """A dialog (task module) holding the form."""
    return InvokeResponse(status=HTTPStatus.OK, body={"task": {"type": "continue", "value": {
        "title": TITLE, "height": "medium", "width": "medium",
        "card": {"contentType": cards.CARD_TYPE, "content": card}}}})


def _popup(sentence: str) -> InvokeResponse:
    """A dialog that only says something (the form can't help)."""
    return InvokeResponse(status=HTTPStatus.OK, body={"task": {"type": "message", "value": sentence}})


def _close() -> InvokeResponse:
    """No response body: Teams closes the dialog (the case card is already in the conversation)."""
    return InvokeResponse(status=HTTPStatus.OK, body={})


def _form(*, what: str, source: str, problem: str = "", customer: str = "", shown_for: str = "") -> InvokeResponse:
    """The form, with a one-time id: each showing of it opens at most one case. `shown_for`, the id of the
    invoke it answers, makes it the same form when Teams delivers that invoke again."""
    form = hashlib.sha256(shown_for.encode()).hexdigest()[:24] if shown_for else secrets.token_hex(12)
    return _task(cards.from_message_form(what=what, source=source, what_max=WHAT_HAPPENED_MAX,
                                         customer_max=CUSTOMER_MAX, problem=problem, customer=customer, form=form))


class RecoverFromMessage:
    def __init__(self, *, recovery: Recovery, publisher: TeamsPublisher):
        self.recovery = recovery
        self.publisher = publisher

    async def on_invoke(self, turn: TurnContext) -> InvokeResponse:
        value = turn.activity.value if isinstance(turn.activity.value, dict) else {}
        if value.get("commandId") != COMMAND_ID:
            return _popup("This Amends command is out of date; update the app and try again.")
        try:
            if turn.activity.name == FETCH_TASK:
                return self.on_fetch_task(value, shown_for=turn.activity.id or "")
            return await self.on_submit_action(turn, value)
        except Exception as error:  # a dialog can only show a dialog: the sentence goes in one
            return _popup(sentence_for(error, log=log))

    def answer_again(self, turn: TurnContext) -> InvokeResponse:
        """For an invoke Teams delivered again (it missed our first answer): the form again, or, for a submit
        already handled, the dialog closed (the case is open, its card posted)."""
        value = turn.activity.value if isinstance(turn.activity.value, dict) else {}
        return self.on_fetch_task(value, shown_for=turn.activity.id or "") if turn.activity.name == FETCH_TASK \
            else _close()

    @staticmethod
    def on_fetch_task(value: dict, *, shown_for: str = "") -> InvokeResponse:
        """The form, prefilled with the message and carrying the link back to it."""
        payload = value.get("messagePayload") if isinstance(value.get("messagePayload"), dict) else {}
        return _form(what=message_text(payload), source=str(payload.get("linkToMessage") or ""), shown_for=shown_for)

    async def on_submit_action(self, turn: TurnContext, value: dict) -> InvokeResponse:
        data = value.get("data") if isinstance(value.get("data"), dict) else {}
        what = str(data.get(Field.WHAT.value) or "").strip()
        customer = str(data.get(Field.CUSTOMER.value) or "").strip()
        source = str(data.get(SOURCE) or "")
        if not what:
            return _form(what="", source=source, customer=customer, shown_for=turn.activity.id or "",
                         problem="Say what happened, e.g. cold soup, waited 40 min.")
        activity = turn.activity
        form = str(data.get(FORM) or "")
        if form and not await self.recovery.first_time(f"teams-dialog:{form}"):  # a double tap: one case
            return _close()
        try:  # the domain checks lengths and the link (a link it doesn't trust is dropped, not shown)
            case = await self.recovery.open_case(workspace=workspace_of(activity), owner=person_of(activity),
                                                 owner_name=name_of(activity), what_happened=what,
                                                 customer=customer, source=source)
        except Refusal as refusal:
            return _form(what=what, source=source, customer=customer, shown_for=turn.activity.id or "",
                         problem=refusal.sentence)
        try:
            await self.publish(turn, case)
        except TeamsError as error:
            log.warning("case %s from a message: its card was not posted: %s", case.id, error)
            return _popup(f"{case.id} is saved, but I can't post its card in this conversation: add Amends "
                          "here first.")
        return _close()

    async def publish(self, turn: TurnContext, case) -> None:
        """The case card as a new message where the message is (its thread, in a channel), then the first step."""
        activity = TurnContext.apply_conversation_reference(card_activity(*cards.case_card(case)),
                                                            TurnContext.get_conversation_reference(turn.activity))
        activity.reply_to_id = None  # not a reply to the invoke: a message of its own
        [posted] = await turn.adapter.send_activities(turn, [activity])
        conversation = turn.activity.conversation.id
        case = await self.recovery.remember_post(workspace=case.workspace, case_id=case.id,
                                                 card=MessageRef(channel=conversation, id=posted.id))
        await self.publisher.post_step(turn, case, Step.APOLOGISE)
