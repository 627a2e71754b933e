"""`/recover …`: open a case, list mine, help, and the admin commands."""

import asyncio
import re

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import catalogue, commands, csat, followups
from bot import learning, retention
from bot.home import managing_sentence
from bot.errors import BadCommand, NotAdmin, Refusal
from bot.recovery import CUSTOMER_MAX, WHAT_HAPPENED_MAX, Recovery
from bot.roles import describe_role
from cards import slack as cards
from cards.ids import Shortcut
from cards.text import humanize_slack_markup
from handlers.slack.publish import SlackPublisher, display_name, slack_error
from handlers.slack.background import Background
from handlers.slack.people import NOT_ADMIN, assignable_person, is_slack_admin
from handlers.slack.replies import tell

COMMAND = "/recover"
USER_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
CHANNEL_MENTION = re.compile(r"^<#([CGD][A-Z0-9]+)(?:\|[^>]*)?>$")


class RecoverCommand:
    def __init__(self, *, recovery: Recovery, publisher: SlackPublisher, admins: frozenset[str],
                 background: Background):
        self.recovery = recovery
        self.background = background
        self.publisher = publisher
        self.admins = admins

    def register(self, app: AsyncApp) -> None:
        app.command(COMMAND)(self.background.acked(self.on_command))
        app.shortcut(Shortcut.RECOVER_FROM_MESSAGE.value)(self.background.acked(self.on_message_shortcut))

    async def on_message_shortcut(self, *, body, client: AsyncWebClient, respond, context) -> None:
        """"Recover from this" on a message (a complaint forwarded into a channel, a pasted review): the
        new-case form, prefilled with the message's text and a link back to it."""
        message = body.get("message") or {}
        channel = (body.get("channel") or {}).get("id") or body["user"]["id"]
        try:
            link = (await client.chat_getPermalink(channel=channel, message_ts=body.get("message_ts")
                                                   or message.get("ts", "")))["permalink"]
        except SlackApiError:
            link = None  # the form still opens, just without the link
        await client.views_open(trigger_id=body["trigger_id"], view=cards.new_case_form(
            channel=channel, what_max=WHAT_HAPPENED_MAX, customer_max=CUSTOMER_MAX,
            what=humanize_slack_markup(message.get("text", "")).strip(), source=link))

    async def on_command(self, *, body, client: AsyncWebClient, respond, context) -> None:
        workspace, user = context.team_id or body.get("team_id", ""), body["user_id"]

        async def say(text: str, blocks: list[dict] | None = None) -> None:
            if blocks is None:
                await tell(body=body, respond=respond, client=client, text=text)
            else:
                await respond(text=text, blocks=blocks, response_type="ephemeral")

        try:
            parsed = commands.parse(body.get("text", ""), prefix=COMMAND)
            match parsed:
                case commands.AskForDetails():
                    await client.views_open(trigger_id=body["trigger_id"], view=cards.new_case_form(
                        channel=body["channel_id"], what_max=WHAT_HAPPENED_MAX, customer_max=CUSTOMER_MAX))
                case commands.OpenCase(what_happened=what):
                    name = await display_name(client, user, fallback=body.get("user_name", ""))
                    case = await self.recovery.open_case(workspace=workspace, owner=user, owner_name=name,
                                                         what_happened=humanize_slack_markup(what))
                    case, moved = await self.publisher.publish_case(client, case, channel=body["channel_id"])
                    if moved:
                        await say(f"I can't post in this conversation, so {case.id} is in your DM with me. "
                                  "To keep cases in a channel, invite me there with /invite @Amends.")
                case commands.ListMine():
                    await say(*cards.case_list(await self._links(client, workspace, user)))
                case commands.Help():
                    await say(*cards.help_message(commands.help_text(prefix=COMMAND)))
                case commands.ShowHome():
                    await say("Your Amends Home is a tab: open Amends under Apps in the sidebar, then Home. "
                              "It shows your open cases and what you can give (managers: the team's too).")
                case commands.SendDigest() | commands.SetDigest() | commands.Export():
                    await self._check_admin(client, user, workspace)
                    from handlers.slack import digest  # the digest and export glue (matplotlib loads only to draw)
                    await digest.admin(parsed, client=client, recovery=self.recovery, workspace=workspace, user=user,
                                       say=say)
                case _:
                    await self._check_admin(client, user, workspace)
                    await self._admin(parsed, client=client, workspace=workspace, say=say)
        except Refusal as refusal:
            await say(refusal.sentence)

    async def _links(self, client: AsyncWebClient, workspace: str, user: str):
        """Each open case with a link to its card (fetched concurrently; None when Slack can't say)."""
        async def link(case):
            if case.card is None:
                return None
            try:
                return (await client.chat_getPermalink(channel=case.card.channel, message_ts=case.card.id))["permalink"]
            except SlackApiError:
                return None
        cases = (await self.recovery.open_cases(workspace=workspace, owner=user))[:cards.LISTED_CASES_MAX]
        return list(zip(cases, await asyncio.gather(*(link(case) for case in cases))))

    async def _check_admin(self, client: AsyncWebClient, user: str, workspace: str) -> None:
        if not await is_slack_admin(client, user=user, workspace=workspace, configured=self.admins,
                                    store=self.recovery.store):
            raise NotAdmin(NOT_ADMIN)

    async def _admin(self, parsed, *, client: AsyncWebClient, workspace: str, say) -> None:
        match parsed:
            case commands.ShowLimits():
                roles = await self.recovery.roles(workspace=workspace)
                channel = await self.recovery.recovery_channel(workspace=workspace)
                await say(*cards.limits_message(roles, currency=self.recovery.currency, channel=channel))
            case commands.SetLimit(role=role, limit=limit, budget=budget):
                updated = await self.recovery.set_limit(workspace=workspace, role=role, limit=limit, budget=budget)
                await say(f"Saved. {describe_role(updated, self.recovery.currency)}.")
            case commands.AssignRole(person=person, role=role):
                user = await self._resolve_user(client, person)
                found = await self.recovery.assign_role(workspace=workspace, person=user["id"], role=role)
                await say(f"{user.get('real_name') or user.get('name') or user['id']} is now {found.name}.")
            case commands.ShowCatalogue():
                await say(*cards.catalogue_message(await self.recovery.kinds(workspace=workspace),
                                                   currency=self.recovery.currency))
            case commands.AddCatalogueItem(name=name, value=value, emoji=emoji):  # Slack sends "Fish &amp; chips"
                await say(await catalogue.add_typed(self.recovery, workspace=workspace,
                                                    name=humanize_slack_markup(name), value=value, emoji=emoji))
            case commands.RemoveCatalogueItem(name=name):
                await say(await catalogue.remove_typed(self.recovery, workspace=workspace,
                                                       name=humanize_slack_markup(name)))
            case commands.SetReminderHour(hour=hour):
                await say(await followups.saying_reminder_hour(self.recovery.store, workspace=workspace, text=hour,
                                                               tz=self.recovery.tz, now=self.recovery.clock.now()))
            case commands.SetIdleMinutes(minutes=minutes):
                await say(await followups.saying_idle_minutes(self.recovery.store, workspace=workspace, text=minutes))
            case commands.SetManaging(role=role, managing=managing):
                await say(await managing_sentence(self.recovery, workspace=workspace, role=role, managing=managing))
            case commands.SetRootCauses(causes=causes):
                await say(await learning.admin_causes(self.recovery.store, workspace=workspace, text=causes))
            case commands.SetRetention(days=days):
                await say(await retention.admin_retention(self.recovery, workspace=workspace, text=days))
            case commands.SetLocation(location=location, channel=channel):
                channel_id = self._resolve_channel(channel)
                name = await csat.set_location(self.recovery, workspace=workspace, name=location, channel=channel_id,
                                               check=lambda: self._can_post(client, channel_id, location))
                await say(f"Saved. A low survey score from “{name}” now opens a case in that channel.")
            case commands.SetChannel(channel=channel):
                channel_id = self._resolve_channel(channel)
                await self._post_or_refuse(client, channel_id, "Amends will post recovery summaries here.")
                await self.recovery.set_recovery_channel(workspace=workspace, channel=channel_id)
                await say("Saved. Recovery summaries will go to that channel.")

    async def _post_or_refuse(self, client: AsyncWebClient, channel: str, text: str) -> None:
        """Prove the bot can post in a channel (by posting there) before anything is saved."""
        try:
            await client.chat_postMessage(channel=channel, text=text)
        except SlackApiError as error:
            raise Refusal(f"I can't post in that channel ({slack_error(error)}). Invite me there first "
                          "with /invite @Amends, then run this again.") from None

    async def _can_post(self, client: AsyncWebClient, channel: str, location: str) -> None:
        await self._post_or_refuse(client, channel, f"Amends will open a case here for each low survey score "
                                                    f"from “{location}”.")

    async def _resolve_user(self, client: AsyncWebClient, mention: str) -> dict:
        found = USER_MENTION.match(mention)
        if not found:
            raise BadCommand(f"{mention!r} isn't a person. Mention them with @, e.g. "
                             f"`{COMMAND} admin role @amy server`.")
        return await assignable_person(client, found.group(1))

    @staticmethod
    def _resolve_channel(mention: str) -> str:
        found = CHANNEL_MENTION.match(mention)
        if not found:
            raise BadCommand(f"{mention!r} isn't a channel. Pick it with #, e.g. "
                             f"`{COMMAND} admin channel #recoveries`.")
        return found.group(1)
