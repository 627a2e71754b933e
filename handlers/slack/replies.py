"""Telling one person something: privately, where they are, without a stack trace."""

from slack_sdk.web.async_client import AsyncWebClient

from cards import slack as cards
from handlers.slack.publish import dm_channel


def workspace_of(body: dict, context) -> str:
    """The workspace a request came from (Bolt's context knows it; an event or a view carries team_id/team)."""
    return context.team_id or body.get("team_id") or (body.get("team") or {}).get("id", "")


def user_of(body: dict) -> str:
    """The person who typed or clicked (commands carry user_id; interactivity a user object)."""
    return body.get("user_id") or (body.get("user") or {}).get("id", "")


async def tell(*, body: dict, respond, client: AsyncWebClient, text: str) -> None:
    """An ephemeral sentence via the response_url when Slack gave one; otherwise a DM from the bot."""
    fallback, blocks = cards.sentence(text)
    if body.get("response_url"):
        await respond(text=fallback, blocks=blocks, response_type="ephemeral", replace_original=False)
    else:
        await client.chat_postMessage(channel=await dm_channel(client, user_of(body)), text=fallback, blocks=blocks)
