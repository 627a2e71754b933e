"""Teams' half of the weekly digest and the export: `recover admin digest …`, `recover admin export …`, and
the digest the outbox owes a Teams recovery channel.

The digest is an Adaptive Card with its chart inline as a data: URI (drawn small: the whole activity must
stay under Teams' 28 KB), posted proactively through the recovery channel's stored ConversationReference.
Bot Framework can't be asked whether an earlier post arrived, so a digest in doubt is posted again (at
least once, as for summaries). The export is two download links (handlers/export.py), sent only in the
admin's 1:1 chat with Amends, since anyone in a channel could open them.
"""

import asyncio
import base64
import json
import logging

from botbuilder.core import TurnContext

from bot import charts, commands
from bot import digest as digests
from bot import export as exports
from bot.errors import Refusal
from bot.recovery import Recovery
from cards import digest as digest_cards
from cards import teams as cards
from handlers import export as export_links
from handlers.teams.publish import TeamsError, TeamsPublisher, _retry_for, channel_name
from handlers.teams.turns import card_activity, is_personal, say

log = logging.getLogger(__name__)

CHART_DPI = 60  # 480×192 px: about 11 KB, 15 KB as a data: URI
OUTBOX_TIMEOUT = 30.0


async def digest_card(publisher: TeamsPublisher, digest: digests.Digest) -> tuple[str, dict]:
    try:
        png = await asyncio.to_thread(charts.draw, digest, dpi=CHART_DPI)
        uri = "data:image/png;base64," + base64.b64encode(png).decode()
    except Exception:  # noqa: BLE001 — a chart that can't be drawn must not hold the digest back for good
        log.exception("the digest's chart could not be drawn; the card goes without it")
        uri = None
    text, card = digest_cards.teams_card(digest, tz=publisher.recovery.tz, chart_url=uri)
    if len(json.dumps(card)) > cards.ACTIVITY_MAX - 2048:  # a very long digest: the card without its chart
        text, card = digest_cards.teams_card(digest, tz=publisher.recovery.tz, chart_url=None)
    return text, card


async def send_digest(publisher: TeamsPublisher, digest: digests.Digest, *, key: str, in_doubt: bool) -> None:
    """Post the digest in the tenant's recovery channel (the outbox's Teams half)."""
    channel = await publisher.recovery_channel(workspace=digest.workspace)
    if channel is None:
        log.warning("%s: no Teams recovery channel is kept for %s; skipped", key, digest.workspace)
        return
    if in_doubt:
        log.warning("%s: an earlier attempt may have arrived; Bot Framework can't be asked, posting again", key)
    try:
        async with asyncio.timeout(OUTBOX_TIMEOUT):
            await publisher.post_proactively(channel, card_activity(*await digest_card(publisher, digest)))
    except TeamsError as error:
        retry = _retry_for(error)
        if retry is not None:
            raise retry from error
        log.error("%s refused by Teams for good: %s", key, error)


async def admin(turn: TurnContext, parsed, *, recovery: Recovery, publisher: TeamsPublisher, workspace: str) -> None:
    """`recover admin digest now | off | <day> <hour>` and `recover admin export [from] [to]` (admin checked)."""
    match parsed:
        case commands.SendDigest():
            channel = await publisher.recovery_channel(workspace=workspace)
            if channel is None:
                raise Refusal("No recovery channel is set, so there is nowhere to send the digest. Send "
                              "@Amends recover admin channel here in the channel where it should go.")
            digest = await digests.last_seven_days(recovery, workspace=workspace)
            try:
                await publisher.post_proactively(channel, card_activity(*await digest_card(publisher, digest)))
            except TeamsError as error:
                raise Refusal(f"Teams didn't take the digest ({error}). Check that Amends is still in that team, "
                              "and try again.") from None
            await say(turn, f"Sent the last seven days' digest to {channel_name(channel)}.")
        case commands.SetDigest(words=words):
            schedule = digests.parse_schedule(list(words))
            nxt = await digests.set_schedule(recovery, workspace=workspace, schedule=schedule)
            if not schedule.on:
                await say(turn, "Saved. The weekly digest is off; recover admin digest monday 9 turns it back on.")
            elif nxt is None:
                await say(turn, f"Saved: {schedule.describe()}. It starts once a recovery channel is set "
                                "(@Amends recover admin channel here, in that channel).")
            else:
                local = nxt.astimezone(recovery.tz)
                await say(turn, f"Saved: the digest goes to the recovery channel {schedule.describe()} "
                                f"({recovery.tz.key}); the next one {local:%a} {local.day} {local:%b} "
                                f"at {local:%H:%M}.")
        case commands.Export(dates=dates):
            if not is_personal(turn.activity):
                raise Refusal("Ask for the export in your 1:1 chat with me, so the download links reach you alone. "
                              "Nothing was exported.")
            wanted = exports.parse_range(list(dates), today=recovery.today(), tz=recovery.tz)
            request = export_links.REQUEST.get()
            links = request.app.get(export_links.LINKS) if request is not None else None
            if links is None:
                raise Refusal("Exports can't be downloaded from this bot right now. Nothing was exported.")
            urls = {file: export_links.link(request, links, workspace=workspace, first=wanted.first, last=wanted.last,
                                            file=file) for file in export_links.FILES}
            await turn.send_activity(card_activity(*export_card(wanted, urls)))


def export_card(wanted: exports.Range, urls: dict[str, str]) -> tuple[str, dict]:
    text = f"Amends export, {wanted.first.isoformat()} to {wanted.last.isoformat()}"
    minutes = int(export_links.LIFETIME.total_seconds() // 60)
    body = [cards._words(text, weight="Bolder", size="Medium"),
            cards._words(f"Two CSV files (UTF-8): the cases opened and the ledger entries given in those days. "
                         f"The links work for {minutes} minutes; keep the files as safe as the customers' data.")]
    actions = [{"type": "Action.OpenUrl", "title": "Download cases (CSV)", "url": urls["cases"]},
               {"type": "Action.OpenUrl", "title": "Download ledger (CSV)", "url": urls["ledger"]}]
    return cards._notify(text), cards._card(body, fallback=text, actions=actions)
