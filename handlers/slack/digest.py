"""Slack's half of the weekly digest and the export: `/recover admin digest …`, `/recover admin export …`,
and the digest the outbox owes a Slack recovery channel.

The digest is one post (Block Kit) with its chart uploaded into the post's thread (files.uploadV2:
files.getUploadURLExternal → the upload → files.completeUploadExternal; the `files:write` scope). The
post carries message metadata naming its outbox message, so an attempt in doubt is looked up in the
channel's history first and never posted twice. The export is two CSV files in the admin's DM.
"""

import asyncio
import logging
from datetime import datetime, timezone

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import charts, commands
from bot import digest as digests
from bot import export as exports
from bot.errors import Refusal
from bot.recovery import Recovery
from cards import digest as cards
from handlers.digest import on_teams
from handlers.slack.publish import (METADATA_EVENT, Clients, _retry_for, dm_channel, outbox_client, read_history,
                                    slack_error)

log = logging.getLogger(__name__)

CHART_NAME = "amends-digest.png"


async def post_digest(client: AsyncWebClient, recovery: Recovery, digest: digests.Digest, *, channel: str, key: str,
                      in_doubt: bool = False, problems: list[str] | None = None) -> str:
    """Post the digest and upload its chart into the post's thread; returns the post's ts. Once the post is
    in, a chart that fails to upload is logged (and added to `problems`), never retried: a retry would post
    the digest a second time."""
    if in_doubt:
        # Its earlier post can't predate its slot (an hour's margin for clocks); however long the bot was down.
        oldest = min(digest.until.timestamp(), datetime.now(timezone.utc).timestamp()) - 3600
        try:
            earlier = await read_history(client, channel=channel, oldest=oldest)
        except SlackApiError as error:  # not granted, or gone: posting again is the documented at-least-once
            if _retry_for(error) is not None:
                raise
            log.warning("%s: can't check whether an earlier attempt arrived (%s); posting it again", key,
                        slack_error(error))
            earlier = []
        for posted in earlier:
            if ((posted.get("metadata") or {}).get("event_payload") or {}).get("key") == key:
                log.info("%s: an earlier attempt did arrive (%s); not posting it again (nor its chart)", key,
                         posted["ts"])
                return posted["ts"]
    text, blocks = cards.slack(digest, tz=recovery.tz)
    posted = await client.chat_postMessage(channel=channel, text=text, blocks=blocks, unfurl_links=False,
                                           metadata={"event_type": METADATA_EVENT, "event_payload": {"key": key}})
    try:
        png = await asyncio.to_thread(charts.draw, digest)
        await client.files_upload_v2(channel=channel, thread_ts=posted["ts"], file=png, filename=CHART_NAME,
                                     title="Spend vs budget by role, recoveries per day",
                                     alt_txt="Bar charts: spend against budget by role, and recoveries per day")
    except Exception as error:  # noqa: BLE001 — the digest itself arrived; only its chart is missing
        reason = slack_error(error) if isinstance(error, SlackApiError) else f"{type(error).__name__}: {error}"
        log.warning("%s: the digest is posted (%s) but its chart could not be uploaded: %s", key, posted["ts"], reason)
        if problems is not None:
            problems.append(reason)
    return posted["ts"]


def platform(*, clients: Clients, recovery: Recovery):
    """The digest sender's Slack half: claims workspaces whose recovery channel is a Slack channel."""
    async def send(digest: digests.Digest, *, key: str, in_doubt: bool) -> bool | None:
        channel = await recovery.recovery_channel(workspace=digest.workspace)
        if not channel or on_teams(channel):
            return None
        app_client = await clients(digest.workspace)
        if app_client is None:
            log.error("%s dropped: Amends is no longer installed in %s", key, digest.workspace)
            return True
        try:
            await post_digest(outbox_client(app_client), recovery, digest, channel=channel, key=key, in_doubt=in_doubt)
        except Exception as error:
            retry = _retry_for(error)
            if retry is not None:
                raise retry from error
            log.error("%s refused by Slack for good: %s", key, slack_error(error))
        return True
    return send


def register(sender: digests.DigestSender, *, clients: Clients, recovery: Recovery) -> None:
    sender.add(platform(clients=clients, recovery=recovery))


async def admin(parsed, *, client: AsyncWebClient, recovery: Recovery, workspace: str, user: str, say) -> None:
    """`admin digest now | off | <day> <hour>` and `admin export [from] [to]` (the caller checked the admin)."""
    match parsed:
        case commands.SendDigest():
            channel = await recovery.recovery_channel(workspace=workspace)
            if not channel:
                raise Refusal("No recovery channel is set, so there is nowhere to send the digest. "
                              "Set one with `/recover admin channel #channel`.")
            now = recovery.clock.now()
            digest = await digests.last_seven_days(recovery, workspace=workspace)
            problems: list[str] = []
            try:
                await post_digest(client, recovery, digest, channel=channel,
                                  key=f"digest-now:{workspace}:{now.isoformat()}", problems=problems)
            except SlackApiError as error:
                raise Refusal(f"Slack didn't take the digest ({slack_error(error)}). Check that I'm in <#{channel}> "
                              "(`/invite @Amends`) and try again.") from None
            if problems:
                await say(f"Sent the last seven days' digest to <#{channel}>, but without its chart: Slack didn't "
                          f"take the image ({problems[0]}). If it says missing_scope, reinstall Amends so it may "
                          "upload files (files:write).")
            else:
                await say(f"Sent the last seven days' digest to <#{channel}>.")
        case commands.SetDigest(words=words):
            schedule = digests.parse_schedule(list(words))
            nxt = await digests.set_schedule(recovery, workspace=workspace, schedule=schedule)
            if not schedule.on:
                await say("Saved. The weekly digest is off; `/recover admin digest monday 9` turns it back on.")
            elif nxt is None:
                await say(f"Saved: {schedule.describe()}. It starts once a recovery channel is set "
                          "(`/recover admin channel #channel`).")
            else:
                local = nxt.astimezone(recovery.tz)
                await say(f"Saved: the digest goes to the recovery channel {schedule.describe()} "
                          f"({recovery.tz.key}); the next one {local:%a} {local.day} {local:%b} at {local:%H:%M}.")
        case commands.Export(dates=dates):
            wanted = exports.parse_range(list(dates), today=recovery.today(), tz=recovery.tz)
            made = await exports.export(recovery.store, workspace=workspace, range=wanted)
            try:
                dm = await dm_channel(client, user)
                await client.files_upload_v2(
                    channel=dm,
                    file_uploads=[{"file": data, "filename": name, "title": name} for name, data in made.files],
                    initial_comment=f"Amends export, {wanted.first.isoformat()} to {wanted.last.isoformat()}: "
                                    f"{made.case_count} case(s), {made.entry_count} ledger entr"
                                    f"{'y' if made.entry_count == 1 else 'ies'}.")
            except SlackApiError as error:
                raise Refusal(f"Slack didn't take the export files ({slack_error(error)}). If it says missing_scope, "
                              "reinstall Amends so it may upload files (files:write).") from None
            await say(f"Sent to our DM: {made.case_count} case(s) and {made.entry_count} ledger "
                      f"entr{'y' if made.entry_count == 1 else 'ies'}, {wanted.first.isoformat()} to "
                      f"{wanted.last.isoformat()}.")

