"""Which platform a stored conversation id belongs to, for code that serves both (the outbox's senders, CSAT)."""


def is_teams_conversation(channel: str) -> bool:
    """Teams conversation ids always hold a ":" ("19:…@thread.tacv2", "a:1…"); Slack channel ids never do."""
    return ":" in channel
