"""Slack's side of follow-through (bot/followups.py): the follow-up reminder and the idle nudge as DMs
to the case's owner, and the reminder's three buttons.

SlackReach is what the outbox's FollowUpSender calls to reach a person in Slack (with the workspace's
own token, outside any request); ReminderButtons are the Bolt listeners. A button answer updates the
DM in place; someone else's tap, or a second tap, is told a sentence and changes nothing.
"""

import asyncio
import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.checklist import Step
from bot.errors import Refusal, StepNotOpen
from bot.followups import FollowUps, read_reminder_value
from bot.recovery import Recovery
from cards import slack as cards
from cards.ids import Action
from cards.words import day
from handlers.slack.background import Background
from handlers.slack.publish import (OUTBOX_TIMEOUT, Clients, SlackPublisher, _retry_for, dm_channel, outbox_client,
                                    slack_error)
from handlers.slack.replies import tell, user_of, workspace_of

log = logging.getLogger(__name__)


class SlackReach:
    """Says a reminder or a nudge to the case's owner in a DM (the outbox retries what fails for now)."""

    def __init__(self, *, clients: Clients, timeout: float = OUTBOX_TIMEOUT):
        self.clients = clients
        self.timeout = timeout

    async def remind(self, case, *, due) -> None:
        await self._dm(case, *cards.reminder_message(case, due=due))

    async def nudge(self, case, *, now) -> None:
        await self._dm(case, *cards.nudge_message(case, now=now))
        await self._redraw(case, now=now)

    async def _redraw(self, case, *, now) -> None:
        """The case card, last drawn when the case last moved, is redrawn with its age as it is idle now.
        Cosmetic: a failure is only logged (raising would send the nudge again)."""
        if case.card is None:
            return
        try:
            app_client = await self.clients(case.workspace)
            if app_client is None:
                return
            text, blocks = cards.case_card(case, now=now)
            async with asyncio.timeout(self.timeout):
                await outbox_client(app_client).chat_update(channel=case.card.channel, ts=case.card.id, text=text,
                                                            blocks=blocks)
        except Exception as error:  # noqa: BLE001 — cosmetic, see above
            log.warning("%s: card not redrawn with its age: %s", case.id, error)

    async def _dm(self, case, text: str, blocks: list[dict]) -> None:
        app_client = await self.clients(case.workspace)
        if app_client is None:
            log.error("%s: no DM sent, Amends is no longer installed in %s", case.id, case.workspace)
            return
        client = outbox_client(app_client)
        try:
            async with asyncio.timeout(self.timeout):
                await client.chat_postMessage(channel=await dm_channel(client, case.owner), text=text, blocks=blocks)
        except Exception as error:
            retry = _retry_for(error)
            if retry is not None:
                raise retry from error
            log.error("%s: Slack refused the DM to %s for good: %s", case.id, case.owner, slack_error(error))



class ReminderButtons:
    """*Done — they're happy*, *Still unhappy — reopen*, *Snooze a day* on a reminder DM."""

    def __init__(self, *, recovery: Recovery, publisher: SlackPublisher, background: Background):
        self.recovery = recovery
        self.follow_ups = FollowUps(recovery)
        self.publisher = publisher
        self.background = background

    def register(self, app: AsyncApp) -> None:
        for action in (Action.REMINDER_DONE, Action.REMINDER_REOPEN, Action.REMINDER_SNOOZE):
            app.action(action.value)(self.background.acked(self.on_answer))

    async def on_answer(self, *, body, client: AsyncWebClient, respond, context) -> None:
        action = body["actions"][0]
        case_id, due = read_reminder_value(action.get("value", ""))
        workspace, actor = workspace_of(body, context), user_of(body)
        try:
            match action.get("action_id"):
                case Action.REMINDER_DONE:
                    case = await self.follow_ups.done(workspace=workspace, case_id=case_id, actor=actor, due=due)
                    answer = "done, they're happy. Thank you for following through."
                case Action.REMINDER_REOPEN:
                    case = await self.follow_ups.reopen(workspace=workspace, case_id=case_id, actor=actor, due=due)
                    await self._reopened(client, case)
                    answer = "reopened. The fix step is back in the case thread."
                case _:
                    until = await self.follow_ups.snooze(workspace=workspace, case_id=case_id, actor=actor, due=due)
                    case = await self.recovery.case(workspace=workspace, case_id=case_id)
                    local = until.astimezone(self.recovery.tz)
                    answer = f"snoozed. I'll remind you again {day(local.date())} at {local:%H:%M}."
        except Refusal as refusal:
            await tell(body=body, respond=respond, client=client, text=refusal.sentence)
            if action.get("action_id") == Action.REMINDER_REOPEN and isinstance(refusal, StepNotOpen):
                await self._heal(client, workspace=workspace, case_id=case_id, actor=actor)
            return
        container = body.get("container") or {}
        if container.get("channel_id") and container.get("message_ts"):
            text, blocks = cards.reminder_answered(case, answer)
            await self.publisher._tidy(client.chat_update(channel=container["channel_id"], ts=container["message_ts"],
                                                          text=text, blocks=blocks))

    async def _heal(self, client: AsyncWebClient, *, workspace: str, case_id: str, actor: str) -> None:
        """Reopened already, but its step never reached Slack (refused, a crash): the owner's second tap posts it,
        so "its checklist is in the case thread" is true."""
        case = await self.recovery.case(workspace=workspace, case_id=case_id)
        if case.owner == actor and not case.is_closed and case.current_step not in case.step_posts:
            case = await self.publisher.resume(client, case)
            await self.publisher.refresh_card(client, case)

    async def _reopened(self, client: AsyncWebClient, case) -> None:
        """The fix step again in the case's thread, the card open again, and the channel told."""
        if case.card is None:
            return
        case = await self.publisher.post_step(client, case, Step.FIX)
        await self.publisher.refresh_card(client, case)
        text, blocks = cards.reopened_notice(case)
        await client.chat_postMessage(channel=case.card.channel, text=text, blocks=blocks)
