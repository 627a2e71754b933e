"""Top-ups in Slack: a give form over the allowance with a reason becomes a request managers see in the
recovery channel, with Approve / Deny for managers only; the first decision updates the request in
place (its buttons go), and the case's owner hears it in their thread. bot/topups.py decides who may
do what; this is the glue.
"""

import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.cases import Case, MessageRef
from bot.checklist import Step
from bot.errors import Refusal
from bot.recovery import Recovery
from bot.topups import DENIED, AlreadyDecided, TopUps, settled_without_waiting
from cards import slack as cards
from cards.ids import Action, read_button_value
from handlers.slack.background import Background
from handlers.slack.people import is_slack_admin
from handlers.slack.publish import SlackPublisher, display_name, slack_error
from handlers.slack.replies import tell, user_of, workspace_of

log = logging.getLogger(__name__)


class TopUpHandlers:
    def __init__(self, *, recovery: Recovery, publisher: SlackPublisher, background: Background,
                 admins: frozenset[str], topups: TopUps | None = None):
        self.recovery = recovery
        self.publisher = publisher
        self.background = background
        self.admins = admins
        self.topups = topups or TopUps(recovery=recovery)

    def register(self, app: AsyncApp) -> None:
        app.action(Action.TOP_UP_APPROVE.value)(self.background.acked(self.on_approve))
        app.action(Action.TOP_UP_DENY.value)(self.background.acked(self.on_deny))

    # --- asking (from the give form, in its ack) ---------------------------------------------
    async def ask(self, *, workspace: str, case_id: str, actor: str, kind: str, amount_text: str,
                  reason: str) -> Case:
        return await self.topups.request(workspace=workspace, case_id=case_id, actor=actor, kind=kind,
                                         amount_text=amount_text, reason=reason)

    async def offer(self, *, workspace: str, case_id: str, actor: str, kind: str, amount_text: str) -> str:
        """What the give form says under "Over your limit?" when the amount is over the allowance (or why it
        can't ask: a request already waits, or was denied)."""
        why_not = self.topups.why_not_ask(await self.recovery.case(workspace=workspace, case_id=case_id))
        if why_not is not None:
            return why_not
        asking = await self.topups.asking(workspace=workspace, kind=kind, amount_text=amount_text)
        return f"{asking} instead? Say why here and send again."

    async def show_request(self, client: AsyncWebClient, case: Case) -> None:
        """Post the request where managers see it (the recovery channel; the case's thread without one, or
        when Slack refuses it there), remember where, and tell the owner in their thread."""
        kind = case.top_up.kind if case.top_up else ""
        text, blocks = cards.top_up_request(case, kind=kind, currency=self.recovery.currency)
        channel = await self.recovery.recovery_channel(workspace=case.workspace)
        posted = None
        if channel:
            try:
                posted = await client.chat_postMessage(channel=channel, text=text, blocks=blocks, unfurl_links=False)
            except SlackApiError as error:
                log.warning("top-up request for %s not posted in the recovery channel: %s", case.id,
                            slack_error(error))
        if posted is None:
            try:
                posted = await client.chat_postMessage(channel=case.card.channel, thread_ts=case.card.id, text=text,
                                                       blocks=blocks, unfurl_links=False)
            except SlackApiError as error:  # unposted, the request may be asked again (bot/topups.py)
                raise Refusal(f"I couldn't post your request for {case.id} where a manager would see it "
                              f"({slack_error(error)}), so nobody was asked. Tap Give on the compensate step "
                              "to ask again.") from None
        case = await self.topups.posted(workspace=case.workspace, case_id=case.id,
                                        post=MessageRef(channel=posted["channel"], id=posted["ts"]))
        await self._note(client, case)

    # --- deciding ----------------------------------------------------------------------------
    async def on_approve(self, *, body, client: AsyncWebClient, respond, context) -> None:
        await self._decide(body=body, client=client, respond=respond, context=context, approve=True)

    async def on_deny(self, *, body, client: AsyncWebClient, respond, context) -> None:
        await self._decide(body=body, client=client, respond=respond, context=context, approve=False)

    async def _decide(self, *, body, client: AsyncWebClient, respond, context, approve: bool) -> None:
        case_id, _ = read_button_value(body["actions"][0].get("value", ""))
        workspace = workspace_of(body, context)
        manager = user_of(body)
        try:
            is_admin = await is_slack_admin(client, user=manager, workspace=workspace, configured=self.admins,
                                            store=self.recovery.store)
            name = await display_name(client, manager, fallback=(body.get("user") or {}).get("name", ""))
            decide = self.topups.approve if approve else self.topups.deny
            decided = await decide(workspace=workspace, case_id=case_id, manager=manager, manager_name=name,
                                   is_admin=is_admin)
        except Refusal as refusal:
            await tell(body=body, respond=respond, client=client, text=refusal.sentence)
            if isinstance(refusal, AlreadyDecided):  # an old copy still showing buttons: show what happened
                await self.settled(client, await self.recovery.case(workspace=workspace, case_id=case_id))
            return
        case = decided[0] if approve else decided
        await self._update_request(client, case)
        await self._note(client, case)
        if approve:
            await self.publisher.advance(client, case, done=Step.COMPENSATE)

    async def settled(self, client: AsyncWebClient, case: Case) -> None:
        """The person settled the compensate step while their request waited: its Approve / Deny go, in place."""
        if settled_without_waiting(case):
            await self._update_request(client, case)

    async def _update_request(self, client: AsyncWebClient, case: Case) -> None:
        """The request as decided, in place: its buttons go, so nobody decides twice."""
        post = case.top_up.post
        if post is None:
            return
        kind = case.top_up.kind if case.top_up else ""
        text, blocks = cards.top_up_request(case, kind=kind, currency=self.recovery.currency)
        try:
            await client.chat_update(channel=post.channel, ts=post.id, text=text, blocks=blocks)
        except SlackApiError as error:  # the decision is recorded; a second click is refused by the domain
            log.warning("could not update the top-up request of %s: %s", case.id, slack_error(error))

    async def _note(self, client: AsyncWebClient, case: Case) -> None:
        """Tell the owner in their case's thread."""
        if case.card is None:
            return
        allowance = None
        if case.top_up.status == DENIED:
            allowance = await self.recovery.allowance(workspace=case.workspace, person=case.owner)
        text, blocks = cards.top_up_note(case, currency=self.recovery.currency, allowance=allowance)
        await client.chat_postMessage(channel=case.card.channel, thread_ts=case.card.id, text=text, blocks=blocks)
