"""Everything Amends posts in Slack for a case: the card, one thread message per step, the summary.

Where each message went is stored on the case, so later clicks (even after a restart) update
the same messages in place instead of adding noise.
"""

import logging
from dataclasses import replace

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.cases import Case, MessageRef
from bot.checklist import Step
from bot.errors import Refusal
from bot.recovery import Recovery
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
            if slack_error(error) not in CANNOT_POST_HERE:
                log.error("card of %s not posted: %s", case.id, slack_error(error))
                raise Refusal(f"{case.id} is saved, but Slack didn't take its card ({slack_error(error)}). "
                              "Try again in a moment; `/recover list` shows your open cases.") from error
            log.info("can't post %s in %s (%s); sending it to the owner's DM", case.id, channel, slack_error(error))
            posted = await client.chat_postMessage(channel=await dm_channel(client, case.owner), text=text,
                                                   blocks=blocks, unfurl_links=False)
            moved = True
        card = MessageRef(channel=posted["channel"], id=posted["ts"])
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
        text, blocks = cards.step_message(case, step, allowance=allowance)
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
        await self.refresh_card(client, case)
        return case

    async def resume(self, client: AsyncWebClient, case: Case) -> Case:
        """Post the current step again if its message never made it to Slack, so no case is stuck."""
        if case.is_closed or case.card is None or case.current_step in case.step_posts:
            return case
        return await self.post_step(client, case, case.current_step)

    async def refresh_card(self, client: AsyncWebClient, case: Case) -> None:
        if case.card is not None:
            text, blocks = cards.case_card(case)
            await self._tidy(client.chat_update(channel=case.card.channel, ts=case.card.id, text=text, blocks=blocks))

    @staticmethod
    async def _tidy(update) -> None:
        """An in-place update is cosmetic: the case is already recorded, so a failure is logged, not raised."""
        try:
            await update
        except SlackApiError as error:
            log.warning("could not update a message in place: %s", slack_error(error))

    async def close(self, client: AsyncWebClient, case: Case) -> Case:
        """Post the summary to the recovery channel; without one, keep it in the thread and tell the admins."""
        channel = await self.recovery.recovery_channel(workspace=case.workspace)
        text, blocks = cards.summary(case)
        failed = False
        if channel:
            try:
                posted = await client.chat_postMessage(channel=channel, text=text, blocks=blocks, unfurl_links=False)
                case = await self.recovery.remember_post(workspace=case.workspace, case_id=case.id,
                                                         summary=MessageRef(channel=posted["channel"], id=posted["ts"]))
            except SlackApiError as error:
                if slack_error(error) not in CANNOT_POST_HERE:
                    raise
                log.warning("summary of %s not posted in %s: %s", case.id, channel, slack_error(error))
                failed = True
        note_text, note_blocks = cards.closing_message(case, summary_channel=channel, summary_failed=failed)
        await client.chat_postMessage(channel=case.card.channel, thread_ts=case.card.id, text=note_text,
                                      blocks=note_blocks)
        if not channel or failed:
            await client.chat_postMessage(channel=case.card.channel, thread_ts=case.card.id, text=text,
                                          blocks=blocks, unfurl_links=False)
            await self.tell_admins(client, channel=channel)
        return case

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
