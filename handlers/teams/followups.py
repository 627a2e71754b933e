"""Teams' side of follow-through (bot/followups.py): the follow-up reminder and the idle nudge as proactive
messages in the owner's 1:1 chat with Amends, and the reminder's three buttons.

The chat is the ConversationReference kept under "person:<id>" whenever the person talks to Amends in
private or installs it (handlers/teams/publish.py remember_person). Someone who never did can't be
reached: that is logged, and nothing is retried. A tap answers with the reminder updated (for the
tapper at once, and in place for the chat); someone else's tap, or a second tap, gets a sentence.
"""

import asyncio
import logging

from botbuilder.core import TurnContext
from botbuilder.schema import ConversationReference

from bot.cases import MessageRef
from bot.checklist import Step
from bot.errors import Refusal, StepNotOpen
from bot.followups import REMINDER, FollowUps, FollowUpSender, read_reminder_value
from bot.recovery import Recovery
from cards import teams as cards
from cards.ids import Action
from cards.words import day
from handlers.teams.checklist import ChecklistHandlers, Outcome, Tap
from handlers.teams.publish import (OUTBOX_TIMEOUT, TeamsError, TeamsPublisher, _addressed, _retry_for,
                                    person_key)
from handlers.teams.turns import card_activity

log = logging.getLogger(__name__)


class TeamsFollowUps:
    def __init__(self, *, recovery: Recovery, publisher: TeamsPublisher, timeout: float = OUTBOX_TIMEOUT):
        self.recovery = recovery
        self.follow_ups = FollowUps(recovery)
        self.publisher = publisher
        self.timeout = timeout

    # --- reaching the owner (called by the outbox's FollowUpSender) -----------------------------
    async def remind(self, case, *, due) -> None:
        await self._tell(case, *cards.reminder_card(case, due=due))

    async def nudge(self, case, *, now) -> None:
        chat = await self._tell(case, *cards.nudge_card(case, now=now))
        if chat is not None:
            await self._redraw(case, chat, now=now)

    async def _redraw(self, case, chat: dict, *, now) -> None:
        """The case card, last drawn when the case last moved, is redrawn with its age as it is idle now (over
        the owner's chat's service, `chat`; the card's own conversation). Cosmetic: a failure is only logged."""
        if case.card is None:
            return

        async def redraw(turn: TurnContext) -> None:
            await self.publisher._update(turn, case.card, *cards.case_card(case, now=now))
        try:
            async with asyncio.timeout(self.timeout):
                await self.publisher.adapter.continue_conversation(ConversationReference().deserialize(chat), redraw,
                                                                   bot_app_id=self.publisher.app_id)
        except Exception as error:  # noqa: BLE001 — cosmetic (raising would send the nudge again)
            log.warning("%s: card not redrawn with its age: %s", case.id, error)

    async def _tell(self, case, text: str, card: dict) -> dict | None:
        """The owner's chat (its stored reference) when they were told; None when they can't be reached or Teams
        refused it for good."""
        stored = await self.recovery.store.reference(workspace=case.workspace, key=person_key(case.owner))
        if stored is None:
            log.warning("%s: %s can't be reached, they have never chatted with Amends in private", case.id, case.owner)
            return None
        try:
            async with asyncio.timeout(self.timeout):
                await self.publisher.post_proactively(ConversationReference().deserialize(stored),
                                                      card_activity(text, card))
        except TeamsError as error:
            retry = _retry_for(error)
            if retry is not None:
                raise retry from error
            log.error("%s: Teams refused the message to %s for good: %s", case.id, case.owner, error)
            return None
        return stored

    # --- the reminder's buttons ------------------------------------------------------------------
    async def tap(self, tap: Tap) -> Outcome:
        case_id, due = read_reminder_value(str(tap.data.get("value") or ""))
        who = {"workspace": tap.workspace, "case_id": case_id, "actor": tap.actor}
        try:
            if tap.verb == Action.REMINDER_DONE:
                case = await self.follow_ups.done(**who, due=due)
                answer = "Done, they're happy. Thank you for following through."
            elif tap.verb == Action.REMINDER_REOPEN:
                case = await self.follow_ups.reopen(**who, due=due)
                await self._reopened(tap.turn, case)
                answer = "Reopened. The fix step is back below the case card."
            else:
                until = (await self.follow_ups.snooze(**who, due=due)).astimezone(self.recovery.tz)
                case = await self.recovery.case(workspace=tap.workspace, case_id=case_id)
                answer = f"Snoozed. I'll remind you again {day(until.date())} at {until:%H:%M}."
        except Refusal as refusal:
            if tap.verb == Action.REMINDER_REOPEN and isinstance(refusal, StepNotOpen):
                await self._heal(tap.turn, **who)
            return Outcome(sentence=refusal.sentence)
        text, card = cards.reminder_answered(case, answer)
        reminder_id = tap.turn.activity.reply_to_id
        if reminder_id:  # in place, for the Action.Submit fallback (Action.Execute's answer shows it at once)
            await self.publisher._tidy(self.publisher._update(
                tap.turn, MessageRef(channel=tap.turn.activity.conversation.id, id=reminder_id), text, card))
        return Outcome(card=card)

    async def _heal(self, turn: TurnContext, *, workspace: str, case_id: str, actor: str) -> None:
        """Reopened already, but its step never reached Teams (refused, a crash): the owner's second tap posts
        it, so "its checklist is below the case card" is true. A failure again is only logged."""
        case = await self.recovery.case(workspace=workspace, case_id=case_id)
        if case.owner != actor or case.is_closed or case.card is None or case.current_step in case.step_posts:
            return
        try:
            case = await self.publisher.resume(turn, case)
            await self.publisher.refresh_card(turn, case)
        except TeamsError as error:
            log.warning("%s: its step could not be posted again: %s", case.id, error)

    async def _reopened(self, turn: TurnContext, case) -> None:
        """The fix step again under the case card, the card open again, and its conversation told."""
        if case.card is None:
            return
        case = await self.publisher.post_step(turn, case, Step.FIX)
        await self.publisher.refresh_card(turn, case)
        notice = _addressed(turn, card_activity(*cards.reopened_card(case)), case.card.channel)
        try:
            await turn.adapter.send_activities(turn, [notice])
        except TeamsError as error:
            log.warning("could not tell %s's conversation it was reopened: %s", case.id, error)


def attach(*, recovery: Recovery, publisher: TeamsPublisher, checklist: ChecklistHandlers) -> TeamsFollowUps:
    """Let the outbox reach people in Teams, and the checklist's taps reach the reminder's buttons."""
    follow_ups = TeamsFollowUps(recovery=recovery, publisher=publisher)
    sender = recovery.outbox.senders.get(REMINDER)
    if isinstance(sender, FollowUpSender):
        sender.platforms["teams"] = follow_ups
    for verb in (Action.REMINDER_DONE, Action.REMINDER_REOPEN, Action.REMINDER_SNOOZE):
        checklist.answers[verb.value] = follow_ups.tap
    return follow_ups
