"""The App Home tab: published when a person opens it, and the admin forms its buttons open.

The Home is computed by bot/home.py and drawn by cards/slack_home.py; this is only glue. The
admin forms check what the commands check, through the same Recovery methods, so a form and
`/recover admin …` can never disagree: a refusal appears under the field it is about
(response_action "errors") and nothing is saved. A button or form from someone who is not an
admin (a forged payload: the buttons are only drawn for admins) is told so, and changes nothing.
After a save the admin's Home is published again, so it shows what they just changed.
"""

import asyncio
from functools import partial

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import catalogue
from bot.cases import Case
from bot.errors import InvalidAmount, NotAdmin, Refusal
from bot.home import build_home, catalogue_lines
from bot.managers import Managers
from bot.money import parse_amount
from bot.recovery import Recovery
from bot.roles import ROLE_NAME
from cards import slack_home as cards
from cards.ids import Action, Field, Form
from handlers.slack.background import Background
from handlers.slack.people import NOT_ADMIN, assignable_person, is_slack_admin
from handlers.slack.publish import slack_error
from handlers.slack.replies import user_of, workspace_of

PERMALINKS_KEPT = 10_000



def _state(view: dict, field: Field) -> dict:
    return (view.get("state") or {}).get("values", {}).get(field.value, {}).get(field.value) or {}


def _text(view: dict, field: Field) -> str:
    return (_state(view, field).get("value") or "").strip()


def _picked(view: dict, field: Field) -> str:
    """The value of a static_select, or the id a users_select / conversations_select holds."""
    state = _state(view, field)
    return ((state.get("selected_option") or {}).get("value") or state.get("selected_user")
            or state.get("selected_conversation") or "")


class SlackHome:
    def __init__(self, *, recovery: Recovery, admins: frozenset[str], background: Background):
        self.recovery = recovery
        self.admins = admins
        self.background = background
        self._permalinks: dict[tuple[str, str], str] = {}  # a message's permalink never changes: asked once

    def register(self, app: AsyncApp) -> None:
        app.event("app_home_opened")(self.background.acked(self.on_home_opened))
        buttons = {Action.HOME_ROLES: self.open_roles, Action.HOME_ASSIGN: self.open_assign,
                   Action.HOME_CHANNEL: self.open_channel, Action.HOME_CATALOGUE: self.open_catalogue}
        for action, opens in buttons.items():
            app.action(action.value)(self.background.acked(self._admin_button(opens)))
        forms = {Form.HOME_ROLES: (self.record_roles, Field.HOME_ROLE_NAME),
                 Form.HOME_ASSIGN: (self.record_assign, Field.HOME_PERSON),
                 Form.HOME_CHANNEL: (self.record_channel, Field.HOME_CHANNEL),
                 Form.HOME_CATALOGUE: (self.record_catalogue, Field.HOME_ITEM_NAME)}
        for form, (record, first) in forms.items():
            app.view(form.value)(self._form(record, first))

    # --- the Home ----------------------------------------------------------------------------
    async def on_home_opened(self, *, body, client: AsyncWebClient, respond, context) -> None:
        event = body.get("event") or {}
        if event.get("tab", "home") != "home" or not event.get("user"):
            return  # the Messages tab fires the same event
        await self.publish(client, workspace=workspace_of(body, context), user=event["user"])

    async def publish(self, client: AsyncWebClient, *, workspace: str, user: str) -> None:
        is_admin = await self._is_admin(client, workspace=workspace, user=user)
        home = await build_home(self.recovery, workspace=workspace, person=user, is_admin=is_admin)
        shown = list(home.open_cases[:cards.MINE_SHOWN])
        if home.team is not None:
            shown += [case for case, _ in home.team.open_cases[:cards.TEAM_SHOWN]]
        await client.views_publish(user_id=user, view=cards.home_view(home, links=await self._links(client, shown)))

    async def _links(self, client: AsyncWebClient, cases: list[Case]) -> dict[str, str]:
        """A link to each case's card (fetched concurrently, and once: a manager's Home shows up to 40 cases
        each time it is opened, and chat.getPermalink is rate limited; left out when Slack can't say)."""
        async def link(case: Case) -> str | None:
            if case.card is None:
                return None
            key = (case.card.channel, case.card.id)
            if key not in self._permalinks:
                try:
                    found = await client.chat_getPermalink(channel=case.card.channel, message_ts=case.card.id)
                except SlackApiError:
                    return None
                if len(self._permalinks) >= PERMALINKS_KEPT:
                    self._permalinks.clear()
                self._permalinks[key] = found["permalink"]
            return self._permalinks[key]
        unique = list({case.id: case for case in cases}.values())
        found = await asyncio.gather(*(link(case) for case in unique))
        return {case.id: url for case, url in zip(unique, found) if url}

    async def _is_admin(self, client: AsyncWebClient, *, workspace: str, user: str) -> bool:
        return await is_slack_admin(client, user=user, workspace=workspace, configured=self.admins,
                                    store=self.recovery.store)

    # --- admin buttons: open a form ----------------------------------------------------------
    def _admin_button(self, opens):
        async def run(*, body, client: AsyncWebClient, respond, context) -> None:
            workspace, user = workspace_of(body, context), user_of(body)
            if not await self._is_admin(client, workspace=workspace, user=user):
                raise NotAdmin(NOT_ADMIN)  # told by Background, as a DM: a Home has no response_url
            await client.views_open(trigger_id=body["trigger_id"], view=await opens(workspace))
        run.__name__ = opens.__name__
        return run

    async def open_roles(self, workspace: str) -> dict:
        managing = await Managers(recovery=self.recovery).managing_roles(workspace=workspace)
        return cards.roles_form(await self.recovery.roles(workspace=workspace), currency=self.recovery.currency,
                                managing=frozenset(managing))

    async def open_assign(self, workspace: str) -> dict:
        return cards.assign_form(await self.recovery.roles(workspace=workspace))

    async def open_channel(self, workspace: str) -> dict:
        return cards.channel_form(await self.recovery.recovery_channel(workspace=workspace))

    async def open_catalogue(self, workspace: str) -> dict:
        return cards.catalogue_form(await catalogue_lines(self.recovery, workspace))

    # --- admin forms: check and save in the ack -----------------------------------------------
    def _form(self, record, first: Field):
        """Check the admin and the fields in the ack (errors show in the form); re-publish the Home after."""
        async def listener(ack, body, view, client, respond, context) -> None:
            workspace, user = workspace_of(body, context), user_of(body)
            if not await self._is_admin(client, workspace=workspace, user=user):
                await ack(response_action="errors", errors={first.value: NOT_ADMIN})
                return
            errors = await record(view=view, client=client, workspace=workspace)
            if errors:
                await ack(response_action="errors", errors={field.value: text for field, text in errors.items()})
                return
            await ack()
            self.background.start(partial(self._republish, workspace=workspace, user=user), body=body,
                                  client=client, respond=respond, context=context)
        listener.__name__ = record.__name__
        return listener

    async def _republish(self, *, workspace: str, user: str, body, client, respond, context) -> None:
        await self.publish(client, workspace=workspace, user=user)

    async def record_roles(self, *, view: dict, client: AsyncWebClient, workspace: str) -> dict[Field, str]:
        """The same as `/recover admin limit <role> <per-case> [<budget>/<period>|none]`."""
        name, per_case = _text(view, Field.HOME_ROLE_NAME), _text(view, Field.HOME_PER_CASE)
        budget, period = _text(view, Field.HOME_BUDGET), _picked(view, Field.HOME_PERIOD) or "week"
        missing = {}
        if not name:
            missing[Field.HOME_ROLE_NAME] = "Type a role name, e.g. server or shift-lead."
        if not per_case:
            missing[Field.HOME_PER_CASE] = "Type the most one case may cost, e.g. 25."
        if missing:
            return missing
        # As the command: no budget typed keeps the role's current one ("none" removes it), so changing
        # only the per-case limit never silently lifts a budget.
        if budget and budget.lower() != "none" and "/" not in budget:
            budget = f"{budget}/{period}"
        try:
            role = await self.recovery.set_limit(workspace=workspace, role=name, limit=per_case, budget=budget or None)
        except Refusal as refusal:
            return {self._role_field(name, per_case): refusal.sentence}
        managing = _picked(view, Field.HOME_MANAGING)
        if managing in ("on", "off"):  # the role exists now: this can't be refused
            await Managers(recovery=self.recovery).set_managing(workspace=workspace, role=role.name,
                                                                managing=managing == "on")
        return {}

    def _role_field(self, name: str, per_case: str) -> Field:
        """Which field a refusal of set_limit is about: it checks the name, then the per-case limit, then the budget."""
        if not ROLE_NAME.match(name.strip().lower()):
            return Field.HOME_ROLE_NAME
        try:
            parse_amount(per_case, currency=self.recovery.currency)
        except InvalidAmount:
            return Field.HOME_PER_CASE
        return Field.HOME_BUDGET

    async def record_assign(self, *, view: dict, client: AsyncWebClient, workspace: str) -> dict[Field, str]:
        """The same as `/recover admin role @person <role>`."""
        person, role = _picked(view, Field.HOME_PERSON), _picked(view, Field.HOME_ROLE)
        errors = {}
        if not person:
            errors[Field.HOME_PERSON] = "Pick a person."
        if not role:
            errors[Field.HOME_ROLE] = "Pick a role."
        if errors:
            return errors
        try:
            await assignable_person(client, person)
        except Refusal as refusal:
            return {Field.HOME_PERSON: refusal.sentence}
        try:
            await self.recovery.assign_role(workspace=workspace, person=person, role=role)
        except Refusal as refusal:
            return {Field.HOME_ROLE: refusal.sentence}
        return {}

    async def record_channel(self, *, view: dict, client: AsyncWebClient, workspace: str) -> dict[Field, str]:
        """The same as `/recover admin channel #channel`: proven by posting there before it is saved."""
        channel = _picked(view, Field.HOME_CHANNEL)
        if not channel:
            return {Field.HOME_CHANNEL: "Pick a channel."}
        try:
            await client.chat_postMessage(channel=channel, text="Amends will post recovery summaries here.")
        except SlackApiError as error:
            return {Field.HOME_CHANNEL: f"I can't post in that channel ({slack_error(error)}). Invite me there first "
                                        "with /invite @Amends, then save again."}
        await self.recovery.set_recovery_channel(workspace=workspace, channel=channel)
        return {}

    async def record_catalogue(self, *, view: dict, client: AsyncWebClient, workspace: str) -> dict[Field, str]:
        """The same as `/recover admin catalogue add|remove …` (bot/catalogue.py checks and saves)."""
        name, value, emoji = (_text(view, Field.HOME_ITEM_NAME), _text(view, Field.HOME_ITEM_VALUE),
                              _text(view, Field.HOME_ITEM_EMOJI))
        ticked = _state(view, Field.HOME_ITEM_REMOVE).get("selected_options") or []
        remove = any(o.get("value") == "remove" for o in ticked)
        if not name:
            return {Field.HOME_ITEM_NAME: "Type the name of the item, e.g. Free dessert."}
        try:
            if not remove:  # a value left in the form doesn't stop a removal
                catalogue.parse_value(value, currency=self.recovery.currency)
        except Refusal as refusal:
            return {Field.HOME_ITEM_VALUE: refusal.sentence}
        try:
            if remove:
                await catalogue.remove_typed(self.recovery, workspace=workspace, name=name)
            else:
                await catalogue.add_typed(self.recovery, workspace=workspace, name=name, value=value, emoji=emoji,
                                          edit=True)  # an item's name typed again changes it
        except Refusal as refusal:
            return {Field.HOME_ITEM_EMOJI if "emoji" in refusal.sentence else Field.HOME_ITEM_NAME: refusal.sentence}
        return {}
