"""Who someone is in a Slack workspace, for the checks admin and manager actions need."""

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import BadCommand
from bot.store import Store

NOT_ADMIN = ("Only Amends admins can do that: workspace admins and owners, and the people in AMENDS_ADMINS. "
             "Ask one of them.")


async def is_slack_admin(client: AsyncWebClient, *, user: str, workspace: str, configured: frozenset[str],
                         store: Store) -> bool:
    """Admins are the workspace's admins and owners, the people in AMENDS_ADMINS, and those an admin granted it to."""
    if user in configured or user in await store.granted_admins(workspace=workspace):
        return True
    try:
        info = (await client.users_info(user=user))["user"]
    except SlackApiError:
        return False
    return bool(info.get("is_admin") or info.get("is_owner") or info.get("is_primary_owner"))


async def assignable_person(client: AsyncWebClient, user: str) -> dict:
    """The person a role is being given to, as Slack knows them (the command and the Home form ask the same)."""
    try:
        found = (await client.users_info(user=user))["user"]
    except SlackApiError:
        raise BadCommand("I can't find that person in this workspace.") from None
    if found.get("deleted") or found.get("is_bot"):
        raise BadCommand("That account can't have a role: it is deactivated or a bot.")
    return found
