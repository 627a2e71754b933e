"""The weekly digest's sender, wired for both platforms without loading either before it is needed.

The app registers one DigestSender (bot/digest.py) for the outbox's "digest" kind at start: its Teams half
is here (it loads the Teams glue only when a Teams tenant's digest is due, as Deferred does for summaries);
Slack's half is added when Slack starts (handlers/slack/digest.py).
"""

import logging

from bot import digest as digests
from bot.recovery import Recovery
from handlers.platforms import is_teams_conversation

log = logging.getLogger(__name__)


def on_teams(channel: str) -> bool:
    return is_teams_conversation(channel)


def teams_platform(recovery: Recovery, load):
    """`load()` gives the Teams glue (handlers.teams.Teams), building it on first use."""
    async def send(digest: digests.Digest, *, key: str, in_doubt: bool) -> bool | None:
        channel = await recovery.recovery_channel(workspace=digest.workspace)
        if not channel or not on_teams(channel):
            return None
        from handlers.teams.digest import send_digest
        await send_digest(load().bot.publisher, digest, key=key, in_doubt=in_doubt)
        return True
    return send


def register(recovery: Recovery, *, teams) -> digests.DigestSender:
    sender = digests.DigestSender(recovery=recovery, platforms=[teams_platform(recovery, teams)])
    recovery.outbox.register(digests.KIND, sender)
    return sender
