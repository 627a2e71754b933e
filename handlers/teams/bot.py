"""The Teams bot: botbuilder's ActivityHandler, routing each kind of activity to its handler.

message           → `recover …` (RecoverCommand), or a card's Action.Submit fallback (value set)
invoke            → a card's Action.Execute (`adaptiveCard/action`); "Recover from this" on a message
                    (`composeExtension/fetchTask` and `composeExtension/submitAction`)
conversationUpdate → Amends was added: a welcome, and (1:1) the chat kept for later messages
A delivery Teams resends (same activity id in the same conversation) is handled once.
"""

import logging
from http import HTTPStatus

from botbuilder.core import ActivityHandler, InvokeResponse, TurnContext
from botbuilder.schema import ActivityTypes, ChannelAccount

from bot.errors import sentence_for
from bot.recovery import Recovery
from cards import teams as cards
from cards.ids import Action
from handlers.teams.checklist import ChecklistHandlers
from handlers.teams.commands import RecoverCommand
from handlers.teams.csat import TakeIt
from handlers.teams.extension import FETCH_TASK, SUBMIT_ACTION, RecoverFromMessage
from handlers.teams.publish import TeamsPublisher
from handlers.teams.turns import answer_invoke, card_activity, invoke_message, is_personal, person_of, say

log = logging.getLogger(__name__)

CARD_ACTION = "adaptiveCard/action"


def delivery_key(turn: TurnContext) -> str | None:
    """The same for a resent delivery, different for a new one (a double tap is two activities: the
    case's state, not this key, makes the second a no-op)."""
    activity = turn.activity
    if activity.type not in (ActivityTypes.message, ActivityTypes.invoke) or not activity.id:
        return None
    return f"teams:{activity.conversation.id}:{activity.id}"


def executed_verb(turn: TurnContext) -> str:
    """The verb of an Action.Execute invoke ("" when there is none)."""
    value = turn.activity.value if isinstance(turn.activity.value, dict) else {}
    action = value.get("action") if isinstance(value.get("action"), dict) else {}
    return str(action.get("verb") or "")


class AmendsBot(ActivityHandler):
    def __init__(self, *, recovery: Recovery, publisher: TeamsPublisher, command: RecoverCommand,
                 checklist: ChecklistHandlers, take: TakeIt | None = None,
                 extension: RecoverFromMessage | None = None):
        self.recovery = recovery
        self.publisher = publisher
        self.command = command
        self.checklist = checklist
        self.take = take or TakeIt(recovery=recovery, publisher=publisher)
        self.extension = extension or RecoverFromMessage(recovery=recovery, publisher=publisher)

    async def on_turn(self, turn: TurnContext) -> None:
        key = delivery_key(turn)
        if key is not None and not await self.recovery.first_time(key):
            log.info("ignoring a repeated delivery: %s", key)
            if turn.activity.name in (FETCH_TASK, SUBMIT_ACTION):  # a dialog needs a dialog's answer
                await answer_invoke(turn, self.extension.answer_again(turn))
            elif turn.activity.type == ActivityTypes.invoke:
                await answer_invoke(turn, invoke_message("Got it already; nothing changed."))
            return
        await super().on_turn(turn)

    async def on_message_activity(self, turn: TurnContext) -> None:
        value = turn.activity.value
        if isinstance(value, dict) and value.get("verb") == Action.TAKE:
            await self.take.on_submit(turn)
        elif isinstance(value, dict) and value.get("verb"):
            await self.checklist.on_submit(turn)
        else:
            await self.command.on_message(turn)

    async def on_invoke_activity(self, turn: TurnContext) -> InvokeResponse:
        if turn.activity.name == CARD_ACTION and executed_verb(turn) == Action.TAKE:
            return await self.take.on_execute(turn)
        if turn.activity.name == CARD_ACTION:
            return await self.checklist.on_execute(turn)
        if turn.activity.name in (FETCH_TASK, SUBMIT_ACTION):
            return await self.extension.on_invoke(turn)
        return InvokeResponse(status=HTTPStatus.NOT_IMPLEMENTED)

    async def on_members_added_activity(self, members_added: list[ChannelAccount], turn: TurnContext) -> None:
        if not any(member.id == turn.activity.recipient.id for member in members_added):
            return  # someone joined a team Amends is in: nothing to say
        personal = is_personal(turn.activity)
        if personal:
            await self.publisher.remember_person(turn, person=person_of(turn.activity))
        await turn.send_activity(card_activity(*cards.welcome(in_channel=not personal)))

    async def on_error(self, turn: TurnContext, error: Exception) -> None:
        """The one error handler: a refusal is told as is; anything else gets a reference that is also in the log."""
        text = sentence_for(error, log=log)
        try:
            if turn.activity.type == ActivityTypes.invoke:
                await answer_invoke(turn, invoke_message(text))
            elif turn.activity.type == ActivityTypes.message:
                await say(turn, text)
        except Exception:  # the person can't be reached; the log has it
            log.exception("could not tell the person about an error")
