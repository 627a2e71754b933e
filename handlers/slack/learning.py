"""Slack glue for learning, not punishing: a returning guest pointed out in the case's thread, and
managers' *Recognise* on a summary (updated in place; the owner hears it in a DM).

Root causes are asked for by the follow-up step itself (handlers/slack/checklist.py).
"""

import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import learning
from bot.cases import Case, MessageRef
from bot.errors import Refusal
from bot.managers import Managers
from bot.recovery import Recovery
from cards import slack as cards
from cards.ids import Action, read_button_value
from handlers.slack.background import Background
from handlers.slack.people import is_slack_admin
from handlers.slack.replies import tell, user_of, workspace_of

log = logging.getLogger(__name__)

NOT_A_MANAGER = "Only managers can recognise a recovery; nothing changed."


async def tell_repeat(recovery: Recovery, client: AsyncWebClient, case: Case, card: MessageRef) -> None:
    """In the new case's thread: this guest had recoveries in the last 90 days, so go further. A failure is
    only logged: the case and its checklist matter more than the note."""
    try:
        sentence = await learning.repeat_customer(recovery.store, case)
        if sentence:
            text, blocks = cards.repeat_note(sentence)
            await client.chat_postMessage(channel=card.channel, thread_ts=card.id, text=text, blocks=blocks)
    except Exception:  # noqa: BLE001 — cosmetic, and the checklist must still follow
        log.warning("returning guest of %s not pointed out", case.id, exc_info=True)


class LearningHandlers:
    def __init__(self, *, recovery: Recovery, admins: frozenset[str], background: Background):
        self.recovery = recovery
        self.admins = admins
        self.background = background
        self.managers = Managers(recovery=recovery)

    def register(self, app: AsyncApp) -> None:
        app.action(Action.RECOGNISE.value)(self.background.acked(self.on_recognise))

    async def on_recognise(self, *, body, client: AsyncWebClient, respond, context) -> None:
        """A manager taps Recognise on a summary: recorded once, the summary shows it, the owner is told."""
        from handlers.slack.publish import display_name, dm_channel  # publish imports this module

        case_id, _ = read_button_value(body["actions"][0].get("value", ""))
        workspace = workspace_of(body, context)
        actor = user_of(body)
        admin = await is_slack_admin(client, user=actor, workspace=workspace, configured=self.admins,
                                     store=self.recovery.store)
        if not await self.managers.is_manager(workspace=workspace, person=actor, is_admin=admin):
            await tell(body=body, respond=respond, client=client, text=NOT_A_MANAGER)
            return
        name = await display_name(client, actor, fallback=(body.get("user") or {}).get("name", ""))
        try:
            case = await learning.record_recognition(self.recovery.store, workspace=workspace, case_id=case_id,
                                                     manager=actor, name=name)
        except Refusal as refusal:
            await tell(body=body, respond=respond, client=client, text=refusal.sentence)
            return
        container = body.get("container") or {}
        channel, ts = container.get("channel_id"), container.get("message_ts")
        if channel and ts:
            text, blocks = cards.summary(case)
            try:
                await client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
            except SlackApiError as error:
                log.warning("summary of %s not updated after a recognition: %s", case.id, error.response.get("error"))
        if case.owner:
            text, blocks = cards.recognised_note(case, by=name)
            try:
                await client.chat_postMessage(channel=await dm_channel(client, case.owner), text=text, blocks=blocks)
            except SlackApiError as error:
                log.warning("owner of %s not told of a recognition: %s", case.id, error.response.get("error"))
