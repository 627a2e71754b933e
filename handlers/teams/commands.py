"""`recover …` typed to Amends in Teams: open a case, list mine, help, and the admin commands.

The command words are parsed by bot.commands, the same registry Slack routes with, after
Teams' markup is taken off: the mention of Amends itself (TurnContext.remove_recipient_mention)
and each mention of someone else, which becomes one word (`@Ben_Smith`) so that names with spaces
don't split the command. One command exists only here, until Slack grows it too:
`recover admin grant @person` makes someone an admin.
"""

import re
from dataclasses import dataclass

from botbuilder.core import TurnContext
from botbuilder.core.teams import TeamsInfo
from botbuilder.schema import Activity, ChannelAccount, ConversationAccount

from bot import catalogue, commands, followups
from bot import learning, retention
from bot.admins import Admins
from bot.commands import Spec
from bot.errors import BadCommand, NotAdmin, Refusal
from bot.home import build_home, managing_sentence
from bot.recovery import CUSTOMER_MAX, WHAT_HAPPENED_MAX, Recovery
from bot.roles import describe_role
from cards import teams as cards
from cards.teams_home import home_card
from handlers.teams.csat import set_location_here
from handlers.teams.publish import TeamsError, TeamsPublisher, channel_name
from handlers.teams.turns import card_activity, is_personal, name_of, person_of, say, workspace_of

PREFIX = "recover"
_PREFIX = re.compile(r"^\s*/?recover\b", re.IGNORECASE)
BOT_ID = re.compile(r"^28:")  # Teams ids of bots; people are 29:…


@dataclass(frozen=True)
class GrantAdmin:
    """`recover admin grant <@person>`: make someone an Amends admin in this tenant."""

    person: str  # a mention, resolved by the glue


GRANT = Spec(("admin", "grant"), "admin grant <@person>", "make someone an Amends admin here", True,
             lambda args: GrantAdmin(args[0]))
# How Teams spells a command whose Slack usage names a Slack object.
TEAMS_USAGE = {("admin", "channel"): "admin channel here",
               ("admin", "location"): "admin location <name> here"}


def usage(*, admin_only: bool = False) -> list[tuple[str, str]]:
    """Help, generated from the registry that parse() routes with (plus the Teams-only grant)."""
    lines = [] if admin_only else [(f"{PREFIX} <what happened>", f"open a case, e.g. {PREFIX} cold soup, table 4"),
                                   (PREFIX, "open a case with a form")]
    for spec in (*commands.COMMANDS, GRANT):
        if spec.admin or not admin_only:
            lines.append((f"{PREFIX} {TEAMS_USAGE.get(spec.words, spec.usage)}",
                          spec.summary + (" (admins)" if spec.admin and not admin_only else "")))
    return lines


def _teams_usage(sentence: str) -> str:
    """A usage line the registry wrote for Slack, as Teams types it."""
    for spec in commands.COMMANDS:
        if spec.words in TEAMS_USAGE:
            sentence = sentence.replace(spec.usage, TEAMS_USAGE[spec.words])
    return sentence


def parse(text: str) -> commands.Command | GrantAdmin:
    """bot.commands.parse, with `admin grant` added and usage spelled the Teams way."""
    words = text.split()
    if len(words) >= 2 and [w.lower() for w in words[:2]] == list(GRANT.words):
        if len(words) != 3:
            raise BadCommand(f"That command needs one person. Usage: `{PREFIX} {GRANT.usage}`")
        return GRANT.build(words[2:])
    try:
        return commands.parse(text, prefix=PREFIX)
    except BadCommand as refusal:
        if refusal.sentence.startswith("Admin commands:"):  # an unknown admin command: list ours, grant included
            raise BadCommand("Admin commands:\n" + "\n".join(f"`{command}` — {what}"
                                                              for command, what in usage(admin_only=True))) from None
        raise BadCommand(_teams_usage(refusal.sentence)) from None


def read_command(activity: Activity) -> tuple[str | None, dict[str, dict]]:
    """The text after `recover` (None when the message is not a command) and the people it mentions,
    by the one-word token that stands for each in the text."""
    text = TurnContext.remove_recipient_mention(activity) or ""
    mentioned: dict[str, dict] = {}
    for mention in TurnContext.get_mentions(activity):
        props = mention.additional_properties or {}
        who, markup = props.get("mentioned") or {}, props.get("text") or ""
        if not markup or not who.get("id") or who["id"] == activity.recipient.id:
            continue
        token = "@" + "_".join((who.get("name") or "someone").split())
        text = text.replace(markup, token)
        mentioned[token] = who
    text = re.sub(r"<at>\s*</at>", "", text).strip()  # what remove_recipient_mention leaves of the bot's mention
    found = _PREFIX.match(text)
    if not found:
        return None, mentioned
    return text[found.end():].strip(), mentioned


def as_words(text: str, mentioned: dict[str, dict]) -> str:
    """What was typed, with each mention as the name people saw (`@Ben Smith`), for storing as free text."""
    for token, who in mentioned.items():
        text = text.replace(token, "@" + (who.get("name") or "someone"))
    return text


class RecoverCommand:
    def __init__(self, *, recovery: Recovery, admins: Admins, publisher: TeamsPublisher):
        self.recovery = recovery
        self.admins = admins
        self.publisher = publisher

    async def on_message(self, turn: TurnContext) -> None:
        activity = turn.activity
        workspace, person = workspace_of(activity), person_of(activity)
        if is_personal(activity):
            await self.publisher.remember_person(turn, person=person)
        text, mentioned = read_command(activity)
        if text is None:
            typed = PREFIX if is_personal(activity) else f"@Amends {PREFIX}"
            await say(turn, f"Type {typed} and what happened, e.g. {typed} cold soup, table 4 — or {typed} help.")
            return
        try:
            match parse(text):
                case commands.AskForDetails():
                    await turn.send_activity(card_activity(*cards.new_case_form(
                        owner=person, what_max=WHAT_HAPPENED_MAX, customer_max=CUSTOMER_MAX)))
                case commands.OpenCase(what_happened=what):
                    case = await self.recovery.open_case(workspace=workspace, owner=person, owner_name=name_of(activity),
                                                         what_happened=as_words(what, mentioned))
                    await self.publisher.publish_case(turn, case)
                case commands.ListMine():
                    await turn.send_activity(card_activity(*cards.case_list(
                        await self.recovery.open_cases(workspace=workspace, owner=person))))
                case commands.Help():
                    await turn.send_activity(card_activity(*cards.help_card(usage())))
                case commands.ShowHome():  # Teams has no App Home: the same content as a card
                    home = await build_home(self.recovery, workspace=workspace, person=person,
                                            is_admin=await self.admins.is_admin(workspace=workspace, person=person))
                    private = is_personal(activity)  # in a channel the settings (and so the channel) aren't shown
                    channel = (await self.publisher.recovery_channel(workspace=workspace)
                               if home.is_admin and private else None)
                    await turn.send_activity(card_activity(*home_card(
                        home, channel_name=channel_name(channel) if channel else None, in_channel=not private)))
                case parsed:
                    await self._check_admin(workspace=workspace, person=person)
                    await self._admin(turn, parsed, workspace=workspace, mentioned=mentioned)
        except Refusal as refusal:
            await say(turn, refusal.sentence)

    async def _check_admin(self, *, workspace: str, person: str) -> None:
        try:
            await self.admins.check(workspace=workspace, person=person)
        except NotAdmin as refusal:
            # An AAD object id is hard to find in Teams; saying it lets the person be added to AMENDS_ADMINS.
            raise NotAdmin(f"{refusal.sentence} (Your id, for AMENDS_ADMINS: {person}.)") from None

    async def _admin(self, turn: TurnContext, parsed, *, workspace: str, mentioned: dict[str, dict]) -> None:
        match parsed:
            case commands.ShowLimits():
                roles = await self.recovery.roles(workspace=workspace)
                channel = await self.publisher.recovery_channel(workspace=workspace)
                await turn.send_activity(card_activity(*cards.limits_card(
                    roles, currency=self.recovery.currency, channel_name=channel_name(channel) if channel else None)))
            case commands.SetLimit(role=role, limit=limit, budget=budget):
                updated = await self.recovery.set_limit(workspace=workspace, role=role, limit=limit, budget=budget)
                await say(turn, f"Saved. {describe_role(updated, self.recovery.currency)}.")
            case commands.AssignRole(person=word, role=role):
                member = await self._resolve_person(turn, word, mentioned)
                found = await self.recovery.assign_role(workspace=workspace, person=member.aad_object_id, role=role)
                await say(turn, f"{member.name or word} is now {found.name}.")
            case commands.SetReminderHour(hour=hour):
                await say(turn, await followups.saying_reminder_hour(self.recovery.store, workspace=workspace, text=hour,
                                                                     tz=self.recovery.tz, now=self.recovery.clock.now()))
            case commands.SetIdleMinutes(minutes=minutes):
                await say(turn, await followups.saying_idle_minutes(self.recovery.store, workspace=workspace,
                                                                    text=minutes))
            case commands.SetManaging(role=role, managing=managing):
                await say(turn, await managing_sentence(self.recovery, workspace=workspace, role=role,
                                                        managing=managing))
            case commands.SetRootCauses(causes=causes):
                await say(turn, await learning.admin_causes(self.recovery.store, workspace=workspace, text=causes))
            case commands.SetRetention(days=days):
                await say(turn, await retention.admin_retention(self.recovery, workspace=workspace, text=days))
            case commands.ShowCatalogue():
                await turn.send_activity(card_activity(*cards.catalogue_card(
                    await self.recovery.kinds(workspace=workspace), currency=self.recovery.currency)))
            case commands.AddCatalogueItem(name=name, value=value, emoji=emoji):
                await say(turn, await catalogue.add_typed(self.recovery, workspace=workspace, name=name, value=value,
                                                          emoji=emoji))
            case commands.RemoveCatalogueItem(name=name):
                await say(turn, await catalogue.remove_typed(self.recovery, workspace=workspace, name=name))
            case GrantAdmin(person=word):
                member = await self._resolve_person(turn, word, mentioned, example="admin grant @amy")
                await self.admins.grant(workspace=workspace, by=person_of(turn.activity), person=member.aad_object_id)
                await say(turn, f"Saved. {member.name or word} is now an Amends admin.")
            case commands.SetChannel(channel=where):
                await self._set_channel(turn, where, workspace=workspace)
            case commands.SendDigest() | commands.SetDigest() | commands.Export():
                from handlers.teams import digest  # the digest and export glue (matplotlib loads only to draw)
                await digest.admin(turn, parsed, recovery=self.recovery, publisher=self.publisher,
                                   workspace=workspace)
            case commands.SetLocation(location=location, channel=where):
                await set_location_here(self.recovery, turn, name=location, where=where)

    async def _resolve_person(self, turn: TurnContext, word: str, mentioned: dict[str, dict], *,
                              example: str = "admin role @amy server") -> ChannelAccount:
        """The person a mention names, as Teams knows them in this conversation (with their AAD object id)."""
        who = mentioned.get(word)
        if who is None:
            raise BadCommand(f"{word!r} isn't a person. Mention them with @, e.g. `{PREFIX} {example}`.")
        if BOT_ID.match(who["id"]):
            raise BadCommand("That account can't have a role: it is deactivated or a bot.")
        try:
            member = await TeamsInfo.get_member(turn, who["id"])
        except TeamsError:
            raise BadCommand("I can't find that person in this team or chat.") from None
        if not member.aad_object_id:
            raise BadCommand("That account can't have a role: it is deactivated or a bot.")
        return member

    async def _set_channel(self, turn: TurnContext, where: str, *, workspace: str) -> None:
        """`recover admin channel here`, sent in the channel: keep its address for the summaries."""
        activity = turn.activity
        if where.lower() != "here":
            raise BadCommand(f"{where!r} isn't a channel I can find from here. Go to the channel and send "
                             f"`@Amends {PREFIX} admin channel here`.")
        if is_personal(activity):
            raise BadCommand(f"Send `@Amends {PREFIX} admin channel here` in the channel where summaries should go; "
                             "this is our private chat.")
        reference = TurnContext.get_conversation_reference(activity)
        reference.activity_id = None
        channel = (activity.channel_data or {}).get("channel") or {}
        team = (activity.channel_data or {}).get("team") or {}
        # In a channel the conversation id names this message's reply chain (…;messageid=…); the channel's
        # own id makes each summary a new post in the channel, not a reply in this thread.
        reference.conversation = ConversationAccount(
            id=channel.get("id") or activity.conversation.id, conversation_type=activity.conversation.conversation_type,
            is_group=activity.conversation.is_group, tenant_id=workspace or None,
            name=" · ".join(n for n in (team.get("name"), channel.get("name")) if n) or None)
        await self.publisher.set_recovery_channel(workspace=workspace, reference=reference)
        await say(turn, "Saved. Recovery summaries will be posted in this channel.")
