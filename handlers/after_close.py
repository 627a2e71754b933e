"""What a closed case owes channels, per platform, for a close marker the glue never settled
(bot/outbox.py AfterClose: a crash between recording the close and owing its messages).

Each function answers None when the case is not its platform's. The case's own card says which:
Teams conversation ids always hold a ":" ("19:…@thread.tacv2", "a:…"), Slack channel ids never do.
Nothing here loads botbuilder: the Teams summary is owed by kind and key, and sent by the Teams glue.
"""

from bot.outbox import OutboxMessage, owed
from bot.recovery import Recovery
from handlers.slack.publish import card_message, summary_message
from handlers.platforms import is_teams_conversation

TEAMS_SUMMARY = "teams.summary"  # handlers/teams/publish.py SUMMARY (a test checks they agree)
TEAMS_RECOVERY_CHANNEL = "recovery_channel"  # handlers/teams/publish.py RECOVERY_CHANNEL


def on_teams(case) -> bool:
    """Whether the case lives in Teams (its card was posted in a Teams conversation)."""
    return case.card is not None and is_teams_conversation(case.card.channel)


def teams(recovery: Recovery):
    async def after_close(case) -> list[OutboxMessage] | None:
        if not on_teams(case):
            return None
        if case.summary is not None:
            return []
        if await recovery.store.reference(workspace=case.workspace, key=TEAMS_RECOVERY_CHANNEL) is None:
            return []  # no recovery channel to post it in (the glue tells the admins when it can)
        return [owed(key=f"{TEAMS_SUMMARY}:{case.workspace}:{case.id}", workspace=case.workspace,
                     case_id=case.id, kind=TEAMS_SUMMARY, body={})]
    return after_close


def slack(recovery: Recovery):
    async def after_close(case) -> list[OutboxMessage] | None:
        if on_teams(case):
            return None
        channel = await recovery.recovery_channel(workspace=case.workspace)
        summary = [summary_message(case, channel=channel)] if channel and case.summary is None else []
        return [*summary, *([card_message(case)] if case.card is not None else [])]
    return after_close
