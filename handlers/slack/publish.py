"""Everything Amends posts in Slack for a case: the card, one thread message per step, the summary.

Where each message went is stored on the case, so later clicks (even after a restart) update
the same messages in place instead of adding noise.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.cases import Case, MessageRef
from bot.checklist import Step
from bot.errors import Refusal
from bot.outbox import OutboxMessage, Retry, closed_key, owed
from bot.recovery import Recovery
from bot.learning import root_causes
from cards import slack as cards

log = logging.getLogger(__name__)

# Slack's answers when the bot may not post where the command was typed (a private channel it
# is not in, a DM between two people, an archived channel): the case then goes to a DM.
CANNOT_POST_HERE = {"channel_not_found", "not_in_channel", "is_archived", "restricted_action",
                    "cannot_reply_to_message", "ekm_access_denied"}


def slack_error(error: SlackApiError) -> str:
    return (error.response.get("error") if error.response is not None else None) or "unknown_error"


async def display_name(client: AsyncWebClient, user: str, *, fallback: str) -> str:
    """How colleagues see the person ("Amy", not the handle "amy.b"); the handle if Slack can't say."""
    try:
        info = (await client.users_info(user=user))["user"]
    except SlackApiError:
        return fallback or user
    profile = info.get("profile") or {}
    return profile.get("display_name") or info.get("real_name") or profile.get("real_name") or fallback or user


async def dm_channel(client: AsyncWebClient, user: str) -> str:
    """The bot's DM with a person (opened if need be)."""
    opened = await client.conversations_open(users=user)
    return opened["channel"]["id"]


class SlackPublisher:
    def __init__(self, *, recovery: Recovery, admins: frozenset[str]):
        self.recovery = recovery
        self.admins = admins

    async def publish_case(self, client: AsyncWebClient, case: Case, *, channel: str) -> tuple[Case, bool]:
        """Post the case card where the person is, or in a DM when the bot can't post there.
        Returns the case (with the card remembered) and whether it went to a DM instead."""
        text, blocks = cards.case_card(case)
        moved = False
        try:
            posted = await client.chat_postMessage(channel=channel, text=text, blocks=blocks, unfurl_links=False)
        except SlackApiError as error:
            if slack_error(error) not in CANNOT_POST_HERE or not case.owner:  # an unowned case has no DM to go to
                log.error("card of %s not posted: %s", case.id, slack_error(error))
                raise Refusal(f"{case.id} is saved, but Slack didn't take its card ({slack_error(error)}). "
                              "Try again in a moment; `/recover list` shows your open cases.") from error
            log.info("can't post %s in %s (%s); sending it to the owner's DM", case.id, channel, slack_error(error))
            posted = await client.chat_postMessage(channel=await dm_channel(client, case.owner), text=text,
                                                   blocks=blocks, unfurl_links=False)
            moved = True
        card = MessageRef(channel=posted["channel"], id=posted["ts"])
        from handlers.slack.learning import tell_repeat  # it imports this module
        await tell_repeat(self.recovery, client, case, card)  # a returning guest: said in the thread (never raises)
        if not case.owner:  # nobody's yet (a low survey score): the checklist starts when someone takes it
            return await self.recovery.remember_post(workspace=case.workspace, case_id=case.id, card=card), moved
        try:
            first = await self._post_step_message(client, replace(case, card=card), Step.APOLOGISE)
        except Exception:
            await self.recovery.remember_post(workspace=case.workspace, case_id=case.id, card=card)
            raise
        case = await self.recovery.remember_post(workspace=case.workspace, case_id=case.id, card=card,
                                                 step=Step.APOLOGISE, ref=first)  # one write for both
        return case, moved

    async def post_step(self, client: AsyncWebClient, case: Case, step: Step) -> Case:
        """Post a step's message in the case thread and remember it."""
        ref = await self._post_step_message(client, case, step)
        return await self.recovery.remember_post(workspace=case.workspace, case_id=case.id, step=step, ref=ref)

    async def _post_step_message(self, client: AsyncWebClient, case: Case, step: Step) -> MessageRef:
        allowance = None
        if step == Step.COMPENSATE:
            allowance = await self.recovery.allowance(workspace=case.workspace, person=case.owner)
        causes = await root_causes(self.recovery.store, workspace=case.workspace) if step == Step.FOLLOW_UP else ()
        text, blocks = cards.step_message(case, step, allowance=allowance, causes=causes)
        posted = await client.chat_postMessage(channel=case.card.channel, thread_ts=case.card.id, text=text,
                                               blocks=blocks, unfurl_links=False)
        return MessageRef(channel=posted["channel"], id=posted["ts"])

    async def advance(self, client: AsyncWebClient, case: Case, *, done: Step) -> Case:
        """After a step is recorded: the next step (or the close) first, since that is what the person
        needs; then tick the done step's message and refresh the card, which only tidy the thread."""
        if case.current_step is not None:
            case = await self.post_step(client, case, case.current_step)
        else:
            case = await self.close(client, case)
        ref = case.step_posts.get(done)
        if ref is not None:
            text, blocks = cards.step_message(case, done)
            await self._tidy(client.chat_update(channel=ref.channel, ts=ref.id, text=text, blocks=blocks))
        if not case.is_closed:  # the closed card is owed through the outbox (close)
            await self.refresh_card(client, case)
        return case

    async def resume(self, client: AsyncWebClient, case: Case) -> Case:
        """Post the current step again if its message never made it to Slack, so no case is stuck."""
        if case.is_closed or case.card is None or case.current_step in case.step_posts:
            return case
        return await self.post_step(client, case, case.current_step)

    async def refresh_card(self, client: AsyncWebClient, case: Case) -> None:
        """The card as the case is now; a failure is only logged (the case is recorded either way)."""
        await self._tidy(self.refresh_card_strictly(client, case))

    async def refresh_card_strictly(self, client: AsyncWebClient, case: Case) -> None:
        """The card as the case is now; a failure is raised (the outbox retries it)."""
        if case.card is not None:
            text, blocks = cards.case_card(case, now=self.recovery.clock.now())  # "open 25 min", as drawn
            await client.chat_update(channel=case.card.channel, ts=case.card.id, text=text, blocks=blocks)

    @staticmethod
    async def _tidy(update) -> None:
        """An in-place update is cosmetic: the case is already recorded, so a failure is logged, not raised."""
        try:
            await update
        except SlackApiError as error:
            log.warning("could not update a message in place: %s", slack_error(error))

    async def close(self, client: AsyncWebClient, case: Case) -> Case:
        """Owe the summary to the recovery channel and the closed card (the outbox sends them, in that
        order, whatever Slack is doing); without a channel, keep the summary in the thread and tell the admins."""
        channel = await self.recovery.recovery_channel(workspace=case.workspace)
        owed = [*([summary_message(case, channel=channel)] if channel else []), card_message(case)]
        await self.recovery.outbox.owe(owed, settles=closed_key(case.workspace, case.id))  # the close's marker
        if channel:
            note_text, note_blocks = cards.closing_message(case, summary_channel=channel)
            await client.chat_postMessage(channel=case.card.channel, thread_ts=case.card.id, text=note_text,
                                          blocks=note_blocks)
        else:
            await self.summary_in_thread(client, case, channel=None)
        return case

    async def summary_in_thread(self, client: AsyncWebClient, case: Case, *, channel: str | None) -> None:
        """No recovery channel, or one Slack refuses: the closing note and the summary go in the case's
        thread, so nothing is lost, and the admins are told how to fix it."""
        note_text, note_blocks = cards.closing_message(case, summary_channel=channel, summary_failed=bool(channel))
        await client.chat_postMessage(channel=case.card.channel, thread_ts=case.card.id, text=note_text,
                                      blocks=note_blocks)
        text, blocks = cards.summary(case)
        await client.chat_postMessage(channel=case.card.channel, thread_ts=case.card.id, text=text,
                                      blocks=blocks, unfurl_links=False)
        await self.tell_admins(client, channel=channel)

    async def tell_admins(self, client: AsyncWebClient, *, channel: str | None) -> None:
        if channel:
            message = (f"A recovery summary couldn't be posted in <#{channel}>: invite me there "
                       "(`/invite @Amends`) or choose another channel with `/recover admin channel #channel`.")
        else:
            message = ("A recovery just closed, but no recovery channel is set, so managers didn't see its summary. "
                       "Set one with `/recover admin channel #channel`.")
        for admin in sorted(self.admins):
            try:
                await client.chat_postMessage(channel=await dm_channel(client, admin), text=message)
            except SlackApiError as error:
                log.warning("could not tell admin %s: %s", admin, slack_error(error))


# --- the outbox's Slack messages --------------------------------------------------------------
SUMMARY, CARD = "slack.summary", "slack.card"
# Outbox sends fail fast and are retried by the outbox, which records every attempt; slack_sdk's own
# retry handlers would resend behind its back (a dropped connection after Slack took the post).
OUTBOX_TIMEOUT = 10.0
# Slack's errors that say "not now" rather than "never": retried with backoff.
TRANSIENT = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout",
             "timeout", "team_added_to_org", "unknown_error"}
METADATA_EVENT = "amends_outbox"  # message metadata that names the outbox message a post came from


def summary_message(case: Case, *, channel: str) -> OutboxMessage:
    return owed(key=f"{SUMMARY}:{case.workspace}:{case.id}", workspace=case.workspace, case_id=case.id,
                kind=SUMMARY, body={"channel": channel})


def card_message(case: Case) -> OutboxMessage:
    return owed(key=f"{CARD}:{case.workspace}:{case.id}:closed", workspace=case.workspace, case_id=case.id,
                kind=CARD, body={})


def outbox_client(client: AsyncWebClient) -> AsyncWebClient:
    """The same client without retry handlers: one HTTP request per recorded attempt."""
    return AsyncWebClient(token=client.token, base_url=client.base_url, session=client.session,
                          timeout=int(OUTBOX_TIMEOUT))


def _retry_for(error: Exception) -> Retry | None:
    """What a failed Web API call means for the outbox: a Retry, or None for a refusal that will not change."""
    if isinstance(error, SlackApiError):
        response = error.response
        status = getattr(response, "status_code", 200)
        if status == 429:
            after = (response.headers or {}).get("Retry-After") or (response.headers or {}).get("retry-after")
            try:
                seconds = float(after) if after is not None else None
            except ValueError:
                seconds = None
            return Retry("ratelimited (429)", after=seconds)
        if status >= 500:
            return Retry(f"HTTP {status}", in_doubt=True)  # Slack may have posted before failing
        if slack_error(error) in TRANSIENT:
            return Retry(slack_error(error), in_doubt=slack_error(error) != "ratelimited")
        return None
    return Retry(f"{type(error).__name__}: {error}", in_doubt=True)  # a timeout, a dropped connection


History = Callable[..., Awaitable[list[dict]]]
Clients = Callable[[str], Awaitable[AsyncWebClient | None]]  # workspace → a client with its bot token


class SlackOutboxSender:
    """Delivers the Slack messages the outbox holds: the summary (never reposted once its ts is stored; an
    attempt in doubt is looked up in the channel's history first when `history` is given) and the closed card
    (chat.update: the same update twice changes nothing)."""

    def __init__(self, *, clients: Clients, publisher: SlackPublisher, history: History | None = None,
                 timeout: float = OUTBOX_TIMEOUT):
        self.clients = clients
        # slack_sdk applies its timeout only to sessions it makes itself, not to the app's shared one.
        self.timeout = timeout
        # Reads a channel's messages since `oldest` with their metadata (conversations.history); None while
        # the app is not granted channels:history / groups:history: an attempt in doubt is then posted again.
        self.history = history
        self.publisher = publisher
        self.recovery = publisher.recovery

    async def deliver(self, message: OutboxMessage, *, in_doubt: bool) -> None:
        case = await self.recovery.case(workspace=message.workspace, case_id=message.case_id)
        app_client = await self.clients(message.workspace)
        if app_client is None:
            log.error("%s dropped: Amends is no longer installed in %s", message.key, message.workspace)
            return
        client = outbox_client(app_client)
        try:
            async with asyncio.timeout(self.timeout):
                if message.kind == SUMMARY:
                    await self._summary(client, message, case, in_doubt=in_doubt)
                else:
                    await self.publisher.refresh_card_strictly(client, case)
        except Exception as error:
            retry = _retry_for(error)
            if retry is not None:
                raise retry from error
            log.error("%s refused by Slack for good: %s", message.key, slack_error(error))
            if message.kind == SUMMARY:
                await self._keep_in_thread(client, case, channel=message.body["channel"])

    async def _summary(self, client: AsyncWebClient, message: OutboxMessage, case: Case, *, in_doubt: bool) -> None:
        if case.summary is not None:
            return  # posted and stored; only "sent" was not recorded
        channel = message.body["channel"]
        if in_doubt:
            found = await self._find(client, message, channel=channel)
            if found is not None:
                log.info("%s: an earlier attempt did arrive (%s); not posting it again", message.key, found.id)
                await self.recovery.remember_post(workspace=case.workspace, case_id=case.id, summary=found)
                return
        text, blocks = cards.summary(case)
        posted = await client.chat_postMessage(
            channel=channel, text=text, blocks=blocks, unfurl_links=False,
            metadata={"event_type": METADATA_EVENT, "event_payload": {"key": message.key}})
        # Stored before the outbox marks it sent: a crash between the two finds it here.
        await self.recovery.remember_post(workspace=case.workspace, case_id=case.id,
                                          summary=MessageRef(channel=posted["channel"], id=posted["ts"]))

    async def _find(self, client: AsyncWebClient, message: OutboxMessage, *, channel: str) -> MessageRef | None:
        """The post an earlier attempt made, found in the channel's recent history by its metadata; None
        when there is none, or when history can't be read (then the message is posted again)."""
        if self.history is None:
            log.warning("%s: an earlier attempt may have arrived, and reading the channel's history is not "
                        "granted (channels:history); posting it again", message.key)
            return None
        oldest = message.tried_at.timestamp() - 60 if message.tried_at else 0
        try:
            posts = await self.history(client, channel=channel, oldest=oldest)
        except SlackApiError as error:
            retry = _retry_for(error)
            if retry is not None:
                raise Retry(f"checking history: {retry.reason}", after=retry.after, in_doubt=True) from error
            log.warning("%s: can't check whether an earlier attempt arrived (%s); posting it again",
                        message.key, slack_error(error))
            return None
        for posted in posts:
            payload = (posted.get("metadata") or {}).get("event_payload") or {}
            if payload.get("key") == message.key:
                return MessageRef(channel=channel, id=posted["ts"])
        return None

    async def _keep_in_thread(self, client: AsyncWebClient, case: Case, *, channel: str) -> None:
        """Slack won't take the summary in the recovery channel: put it in the case's thread, tell the admins."""
        try:
            await self.publisher.summary_in_thread(client, case, channel=channel)
        except SlackApiError as error:
            log.error("summary of %s could not be kept in its thread either: %s", case.id, slack_error(error))


async def read_history(client: AsyncWebClient, *, channel: str, oldest: float) -> list[dict]:
    """A channel's messages since `oldest`, with their metadata: how a send in doubt finds its earlier post
    (conversations.history; the reason the app asks for channels:history and groups:history)."""
    answer = await client.conversations_history(channel=channel, oldest=f"{oldest:.6f}", limit=200,
                                                include_all_metadata=True)
    return answer["messages"]


def register_outbox_senders(*, outbox, clients: Clients, recovery: Recovery,
                            admins: frozenset[str]) -> SlackOutboxSender:
    """Let the outbox send Slack's kinds of message, each with its workspace's token (`clients`)."""
    sender = SlackOutboxSender(clients=clients, publisher=SlackPublisher(recovery=recovery, admins=admins),
                               history=read_history)
    outbox.register(SUMMARY, sender)
    outbox.register(CARD, sender)
    return sender
