"""Everything Amends posts in Teams for a case: the card, one card per step, the summary.

The case card answers the message that opened the case, and each step follows it in the same
conversation (in a channel that is the message's reply chain). Where each card went is stored
on the case, so a tap on a card posted before a restart still updates the right message in
place. The summary goes to the recovery channel proactively, through the ConversationReference
stored when an admin chose it, so it needs no live turn in that channel.
"""

import asyncio
import logging

from botbuilder.core import BotAdapter, TurnContext
from botbuilder.schema import Activity, ConversationAccount, ConversationReference
from msrest.exceptions import ClientRequestError, HttpOperationError

from bot.admins import Admins
from bot.cases import Case, MessageRef
from bot.checklist import Step
from bot.outbox import OutboxMessage, Retry, closed_key, owed
from bot.recovery import NOTE_MAX, Recovery
from bot.roles import Allowance
from bot.learning import repeat_customer, root_causes
from cards import teams as cards
from handlers.teams.turns import card_activity, in_teams_words, workspace_of

log = logging.getLogger(__name__)

RECOVERY_CHANNEL = "recovery_channel"  # the store key of the channel's ConversationReference
TeamsError = (HttpOperationError, ClientRequestError)


def person_key(person: str) -> str:
    """The store key of a person's 1:1 chat with Amends, for telling admins things."""
    return f"person:{person}"


class TeamsPublisher:
    def __init__(self, *, recovery: Recovery, admins: Admins, adapter: BotAdapter, app_id: str):
        self.recovery = recovery
        self.admins = admins
        self.adapter = adapter
        self.app_id = app_id
        recovery.outbox.register(SUMMARY, TeamsSummarySender(self))

    # --- the thread --------------------------------------------------------------------------
    async def publish_case(self, turn: TurnContext, case: Case, *, replacing: str | None = None) -> Case:
        """Post the case card (or turn the new-case form `replacing` into it) and the first step."""
        text, card = cards.case_card(case)
        conversation = turn.activity.conversation.id
        if replacing:
            await self._update(turn, MessageRef(channel=conversation, id=replacing), text, card)
            posted_id = replacing
        else:
            posted_id = (await turn.send_activity(card_activity(text, card))).id
        case = await self.recovery.remember_post(workspace=case.workspace, case_id=case.id,
                                                 card=MessageRef(channel=conversation, id=posted_id))
        return await self.post_step(turn, case, Step.APOLOGISE)

    async def tell_repeat(self, turn: TurnContext, case: Case) -> None:
        """Under a new case's card: this guest had recoveries in the last 90 days (bot/learning.py). A failure
        is only logged: the checklist must still follow."""
        try:
            sentence = await repeat_customer(self.recovery.store, case)
            if sentence and case.card is not None:
                reply = _addressed(turn, card_activity(*cards.repeat_card(case, sentence)), case.card.channel)
                reply.reply_to_id = case.card.id
                await turn.adapter.send_activities(turn, [reply])
        except Exception:  # noqa: BLE001 — cosmetic
            log.warning("returning guest of %s not pointed out", case.id, exc_info=True)

    def step_card(self, case: Case, step: Step, *, allowance: Allowance | None = None,
                  catalogue=None, causes=()) -> tuple[str, dict]:
        """The step's card as it should look now (the catalogue and today's date come from the domain)."""
        return cards.step_card(case, step, note_max=NOTE_MAX, allowance=allowance,
                               catalogue=self.recovery.catalogue if catalogue is None else catalogue,
                               today=self.recovery.today(), causes=causes)

    async def live_step_card(self, case: Case, step: Step) -> tuple[str, dict]:
        """The step's card with what the compensate step needs: the owner's allowance and the workspace's catalogue."""
        if step == Step.FOLLOW_UP and step not in case.done:  # closing asks for a root cause (bot/learning.py)
            return self.step_card(case, step, causes=await root_causes(self.recovery.store, workspace=case.workspace))
        if step != Step.COMPENSATE or step in case.done:
            return self.step_card(case, step)
        return self.step_card(case, step, allowance=await self.recovery.allowance(workspace=case.workspace,
                                                                                  person=case.owner),
                              catalogue=await self.recovery.kinds(workspace=case.workspace))

    async def post_step(self, turn: TurnContext, case: Case, step: Step) -> Case:
        """Post a step's card in reply to the case card and remember where it went."""
        if step == Step.APOLOGISE and step not in case.step_posts:  # every way a case starts comes through here
            await self.tell_repeat(turn, case)  # a returning guest: said under the card, first
        reply = _addressed(turn, card_activity(*await self.live_step_card(case, step)), case.card.channel)
        reply.reply_to_id = case.card.id  # under the case card: its reply chain in a channel, right after it in a chat
        [posted] = await turn.adapter.send_activities(turn, [reply])
        return await self.recovery.remember_post(workspace=case.workspace, case_id=case.id, step=step,
                                                 ref=MessageRef(channel=case.card.channel, id=posted.id))

    async def advance(self, turn: TurnContext, case: Case, *, done: Step) -> tuple[Case, dict]:
        """After a step is recorded: the next step (or the close) first, since that is what the person needs;
        then the done step's card and the case card, updated in place. Returns the done step's card."""
        if case.current_step is not None:
            case = await self.post_step(turn, case, case.current_step)
        else:
            case = await self.close(turn, case)
        text, card = self.step_card(case, done)
        ref = case.step_posts.get(done)
        if ref is not None:
            await self._tidy(self._update(turn, ref, text, card))
        await self.refresh_card(turn, case)
        return case, card

    async def resume(self, turn: TurnContext, case: Case) -> Case:
        """Post the current step again if its card never made it to Teams, so no case is stuck."""
        if case.is_closed or case.card is None or case.current_step in case.step_posts:
            return case
        return await self.post_step(turn, case, case.current_step)

    async def refresh_card(self, turn: TurnContext, case: Case) -> None:
        """Show the case's progress on its headline card."""
        if case.card is not None:
            await self._tidy(self._update(turn, case.card, *cards.case_card(case, now=self.recovery.clock.now())))

    async def _update(self, turn: TurnContext, ref: MessageRef, text: str, card: dict) -> None:
        """Replace a message we posted, in the conversation it was posted in (update_activity → PUT)."""
        activity = _addressed(turn, card_activity(text, card), ref.channel)
        activity.id = ref.id
        await turn.adapter.update_activity(turn, activity)

    @staticmethod
    async def _tidy(update) -> None:
        """An in-place update is cosmetic: the case is already recorded, so a failure is logged, not raised."""
        try:
            await update
        except TeamsError as error:
            log.warning("could not update a message in place: %s", error)

    # --- the close and the recovery channel --------------------------------------------------
    async def recovery_channel(self, *, workspace: str) -> ConversationReference | None:
        stored = await self.recovery.store.reference(workspace=workspace, key=RECOVERY_CHANNEL)
        return ConversationReference().deserialize(stored) if stored else None

    async def set_recovery_channel(self, *, workspace: str, reference: ConversationReference) -> None:
        """Keep the channel's address for proactive posts, and tell the domain a channel is set."""
        await self.recovery.store.put_reference(workspace=workspace, key=RECOVERY_CHANNEL, value=reference.serialize())
        await self.recovery.set_recovery_channel(workspace=workspace, channel=reference.conversation.id)

    async def close(self, turn: TurnContext, case: Case) -> Case:
        """Owe the summary to the recovery channel and make its first attempt at once (the outbox retries it
        if Teams can't take it now); without a channel, or when Teams refuses it for good, keep it in the
        case's thread and tell the admins."""
        channel = await self.recovery_channel(workspace=case.workspace)
        marker = closed_key(case.workspace, case.id)  # recorded with the close; settled here
        if channel is None:
            await self.recovery.outbox.owe([], settles=marker)
            await turn.send_activity(card_activity(*cards.closing_card(case, channel_name=None)))
            await turn.send_activity(card_activity(*cards.summary(case)))
            await self.tell_admins(workspace=case.workspace, failed_in=None)
            return case
        thread = TurnContext.get_conversation_reference(turn.activity)
        thread.activity_id = None
        done = await self.recovery.outbox.owe_and_try(summary_message(case, thread=thread), settles=marker)
        case = await self.recovery.case(workspace=case.workspace, case_id=case.id)
        if done and case.summary is None:
            return case  # refused for good: the sender kept it in this thread and told the admins
        await turn.send_activity(card_activity(*cards.closing_card(case, channel_name=channel_name(channel))))
        return case

    async def post_proactively(self, reference: ConversationReference, activity: Activity) -> str:
        """Start a new post in the referenced conversation, outside any turn there; returns its activity id."""
        outcome: dict = {}

        async def send(turn: TurnContext) -> None:
            out = TurnContext.apply_conversation_reference(activity, reference)
            out.reply_to_id = None  # a new post, not a reply to the continuation event botbuilder made up
            try:
                [posted] = await turn.adapter.send_activities(turn, [out])
                outcome["id"] = posted.id
            except Exception as error:  # noqa: BLE001 — carried out of botbuilder's pipeline, raised below
                outcome["error"] = error

        await self.adapter.continue_conversation(reference, send, bot_app_id=self.app_id)
        if "error" in outcome:
            raise outcome["error"]
        return outcome["id"]

    async def remember_person(self, turn: TurnContext, *, person: str) -> None:
        """Keep the person's 1:1 chat with Amends, so Amends can tell them things later (admins)."""
        reference = TurnContext.get_conversation_reference(turn.activity)
        reference.activity_id = None
        workspace = workspace_of(turn.activity)
        value = reference.serialize()
        if await self.recovery.store.reference(workspace=workspace, key=person_key(person)) != value:
            await self.recovery.store.put_reference(workspace=workspace, key=person_key(person), value=value)

    async def tell_admins(self, *, workspace: str, failed_in: str | None) -> None:
        """Each admin who has a 1:1 chat with Amends hears why a summary stayed in its thread."""
        if failed_in is not None:
            text = (f"A recovery summary couldn't be posted in {failed_in}: add Amends to that team again, or send "
                    "@Amends recover admin channel here in another channel.")
        else:
            text = ("A recovery just closed, but no recovery channel is set, so managers didn't see its summary. "
                    "Send @Amends recover admin channel here in the channel where summaries should go.")
        for admin in await self.admins.everyone(workspace=workspace):
            stored = await self.recovery.store.reference(workspace=workspace, key=person_key(admin))
            if stored is None:
                log.info("admin %s can't be told: they have never chatted with Amends", admin)
                continue
            try:
                await self.post_proactively(ConversationReference().deserialize(stored),
                                            card_activity(*cards.sentence(in_teams_words(text))))
            except TeamsError as error:
                log.warning("could not tell admin %s: %s", admin, error)


def _addressed(turn: TurnContext, activity: Activity, conversation: str) -> Activity:
    """The activity, from the bot, addressed to a stored conversation over this turn's channel and service."""
    activity = TurnContext.apply_conversation_reference(activity, TurnContext.get_conversation_reference(turn.activity))
    activity.conversation = ConversationAccount(id=conversation, tenant_id=workspace_of(turn.activity) or None)
    activity.reply_to_id = None
    return activity


def channel_name(reference: ConversationReference) -> str:
    """How people know the recovery channel: its name when Teams sent one."""
    return (reference.conversation.name if reference.conversation and reference.conversation.name
            else "the recovery channel")


# --- the outbox's Teams messages --------------------------------------------------------------
SUMMARY = "teams.summary"
OUTBOX_TIMEOUT = 15.0
# Bot Framework's answers that mean "not now" (its docs: retry 412, 429, 502, 504 with backoff), plus 500/503.
RETRY_STATUSES = {412, 429, 500, 502, 503, 504}


def summary_message(case: Case, *, thread: ConversationReference) -> OutboxMessage:
    """The summary owed to the recovery channel; `thread` is where it goes if Teams refuses it for good."""
    return owed(key=f"{SUMMARY}:{case.workspace}:{case.id}", workspace=case.workspace, case_id=case.id, kind=SUMMARY,
                body={"thread": thread.serialize()})


def _retry_for(error: Exception) -> Retry | None:
    if isinstance(error, ClientRequestError):
        return Retry(f"{type(error).__name__}: {error}", in_doubt=True)  # it may have left before the failure
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    if status is None:
        return Retry(f"{type(error).__name__}: {error}", in_doubt=True)
    if status not in RETRY_STATUSES:
        return None
    after = None
    try:
        after = float((response.headers or {}).get("Retry-After"))
    except (TypeError, ValueError):
        pass
    return Retry(f"HTTP {status}", after=after, in_doubt=status >= 500)


class TeamsSummarySender:
    """Delivers the summaries the outbox holds to each tenant's recovery channel, proactively.

    Bot Framework can't be asked whether a post arrived, so an attempt in doubt (a timeout or a 5xx
    after the request left, a crash mid-send) is posted again: at least once, in doubt."""

    def __init__(self, publisher: TeamsPublisher, *, timeout: float = OUTBOX_TIMEOUT):
        self.publisher = publisher
        self.recovery = publisher.recovery
        self.timeout = timeout

    async def deliver(self, message: OutboxMessage, *, in_doubt: bool) -> None:
        case = await self.recovery.case(workspace=message.workspace, case_id=message.case_id)
        if case.summary is not None:
            return  # posted and stored; only "sent" was not recorded
        channel = await self.publisher.recovery_channel(workspace=message.workspace)
        if channel is None:
            await self._keep_in_thread(message, case, failed_in=None)
            return
        if in_doubt:
            log.warning("%s: an earlier attempt may have arrived; Bot Framework can't be asked, posting again",
                        message.key)
        try:
            async with asyncio.timeout(self.timeout):
                posted_id = await self.publisher.post_proactively(channel, card_activity(*cards.summary(case)))
        except TeamsError as error:
            retry = _retry_for(error)
            if retry is not None:
                raise retry from error
            log.warning("summary of %s not posted in the recovery channel: %s", case.id, error)
            await self._keep_in_thread(message, case, failed_in=channel_name(channel))
            return
        # Stored before the outbox marks it sent: a crash between the two finds it here.
        await self.recovery.remember_post(workspace=case.workspace, case_id=case.id,
                                          summary=MessageRef(channel=channel.conversation.id, id=posted_id))

    async def _keep_in_thread(self, message: OutboxMessage, case: Case, *, failed_in: str | None) -> None:
        if message.body.get("thread"):  # not when owed for a close marker: the thread was never known
            thread = ConversationReference().deserialize(message.body["thread"])
            try:
                await self.publisher.post_proactively(thread, card_activity(*cards.closing_card(
                    case, channel_name=failed_in, summary_failed=failed_in is not None)))
                await self.publisher.post_proactively(thread, card_activity(*cards.summary(case)))
            except TeamsError as error:
                log.error("summary of %s could not be kept in its thread either: %s", case.id, error)
        await self.publisher.tell_admins(workspace=case.workspace, failed_in=failed_in)
