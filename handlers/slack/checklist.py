"""The buttons and forms of a case's thread: tick a step, add a note, give, follow up.

Each handler reads the case id (and the step the button was drawn for) from the button,
asks the domain, and on success lets the publisher update the thread. A refusal — someone
else's case, a step already done, an amount over the allowance — reaches the person as one
sentence (in the form, when there is one) and changes nothing.
"""

import json
from datetime import date, timedelta

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.checklist import Step
from bot.errors import Refusal, StepNotOpen
from bot.recovery import NOTE_MAX, Recovery
from cards import slack as cards
from cards.ids import Action, Field, Form, read_button_value
from cards.text import humanize_slack_markup
from handlers.slack.publish import SlackPublisher, display_name
from handlers.slack.replies import tell, user_of


def _workspace(body: dict, context) -> str:
    return context.team_id or (body.get("team") or {}).get("id", "")


def _value(view: dict, field: Field) -> str:
    """The typed (or picked) value of one input block of a submitted form."""
    state = view["state"]["values"].get(field.value, {}).get(field.value, {})
    if "selected_option" in state:
        return (state["selected_option"] or {}).get("value", "")
    if "selected_date" in state:
        return state["selected_date"] or ""
    return state.get("value") or ""


class ChecklistHandlers:
    def __init__(self, *, recovery: Recovery, publisher: SlackPublisher):
        self.recovery = recovery
        self.publisher = publisher

    def register(self, app: AsyncApp) -> None:
        app.action(Action.STEP_DONE.value)(self.on_step_done)
        app.action(Action.STEP_NOTE.value)(self.on_step_note)
        app.action(Action.GIVE.value)(self.on_give)
        app.action(Action.NOTHING_NEEDED.value)(self.on_nothing_needed)
        app.action(Action.FOLLOW_UP_TOMORROW.value)(self.on_follow_up_in)
        app.action(Action.FOLLOW_UP_NEXT_WEEK.value)(self.on_follow_up_in)
        app.action(Action.FOLLOW_UP_PICK.value)(self.on_follow_up_pick)
        app.action(Action.NO_FOLLOW_UP.value)(self.on_follow_up_in)
        app.view(Form.NEW_CASE.value)(self.on_new_case_form)
        app.view(Form.STEP_NOTE.value)(self.on_note_form)
        app.view(Form.GIVE.value)(self.on_give_form)
        app.view(Form.FOLLOW_UP.value)(self.on_follow_up_form)

    # --- buttons -----------------------------------------------------------------------------
    async def _button(self, ack, body, action, respond, client, context, work) -> None:
        """Ack at once, then do the work; a refusal is told to the person who clicked."""
        await ack()
        case_id, step = read_button_value(action.get("value", ""))
        try:
            if step is None:
                raise Refusal("That button is out of date; use the latest message in the case thread.")
            await work(workspace=_workspace(body, context), case_id=case_id, step=step, actor=user_of(body))
        except StepNotOpen as refusal:
            await tell(body=body, respond=respond, client=client, text=refusal.sentence)
            case = await self.recovery.case(workspace=_workspace(body, context), case_id=case_id)
            if case.owner == user_of(body):
                await self.publisher.resume(client, case)
        except Refusal as refusal:
            await tell(body=body, respond=respond, client=client, text=refusal.sentence)

    async def on_step_done(self, ack, body, action, respond, client: AsyncWebClient, context) -> None:
        async def work(*, workspace, case_id, step, actor):
            case = await self.recovery.complete_step(workspace=workspace, case_id=case_id, actor=actor, step=step)
            await self.publisher.advance(client, case, done=step)
        await self._button(ack, body, action, respond, client, context, work)

    async def on_step_note(self, ack, body, action, respond, client: AsyncWebClient, context) -> None:
        async def work(*, workspace, case_id, step, actor):
            case = await self.recovery.check_can_act(workspace=workspace, case_id=case_id, actor=actor, step=step)
            await client.views_open(trigger_id=body["trigger_id"], view=cards.note_form(case, step, note_max=NOTE_MAX))
        await self._button(ack, body, action, respond, client, context, work)

    async def on_give(self, ack, body, action, respond, client: AsyncWebClient, context) -> None:
        async def work(*, workspace, case_id, step, actor):
            case = await self.recovery.check_can_act(workspace=workspace, case_id=case_id, actor=actor,
                                                     step=Step.COMPENSATE)
            allowance = await self.recovery.allowance(workspace=workspace, person=actor)
            await client.views_open(trigger_id=body["trigger_id"], view=cards.give_form(
                case, allowance=allowance, catalogue=self.recovery.catalogue))
        await self._button(ack, body, action, respond, client, context, work)

    async def on_nothing_needed(self, ack, body, action, respond, client: AsyncWebClient, context) -> None:
        async def work(*, workspace, case_id, step, actor):
            case = await self.recovery.nothing_needed(workspace=workspace, case_id=case_id, actor=actor)
            await self.publisher.advance(client, case, done=Step.COMPENSATE)
        await self._button(ack, body, action, respond, client, context, work)

    async def on_follow_up_in(self, ack, body, action, respond, client: AsyncWebClient, context) -> None:
        days = {Action.FOLLOW_UP_TOMORROW.value: 1, Action.FOLLOW_UP_NEXT_WEEK.value: 7}.get(action["action_id"])

        async def work(*, workspace, case_id, step, actor):
            on = None if days is None else self.recovery.today() + timedelta(days=days)
            case = await self.recovery.follow_up(workspace=workspace, case_id=case_id, actor=actor, on=on)
            await self.publisher.advance(client, case, done=Step.FOLLOW_UP)
        await self._button(ack, body, action, respond, client, context, work)

    async def on_follow_up_pick(self, ack, body, action, respond, client: AsyncWebClient, context) -> None:
        async def work(*, workspace, case_id, step, actor):
            case = await self.recovery.check_can_act(workspace=workspace, case_id=case_id, actor=actor,
                                                     step=Step.FOLLOW_UP)
            await client.views_open(trigger_id=body["trigger_id"], view=cards.follow_up_form(
                case, initial=cards.default_follow_up(self.recovery.today())))
        await self._button(ack, body, action, respond, client, context, work)

    # --- forms -------------------------------------------------------------------------------
    # A form is validated and recorded before it is acked: a refusal is shown in the form itself
    # (response_action "errors"), and the form only closes once the change is recorded.

    async def on_new_case_form(self, ack, body, view, client: AsyncWebClient, context) -> None:
        what = humanize_slack_markup(_value(view, Field.WHAT)).strip()
        if not what:
            await ack(response_action="errors", errors={Field.WHAT.value: "Say what happened, e.g. cold soup, waited 40 min."})
            return
        user = body["user"]
        case = await self.recovery.open_case(
            workspace=_workspace(body, context), owner=user["id"],
            owner_name=await display_name(client, user["id"], fallback=user.get("name", "")),
            what_happened=what, customer=humanize_slack_markup(_value(view, Field.CUSTOMER)))
        await ack()
        channel = json.loads(view.get("private_metadata") or "{}").get("channel") or user["id"]
        case, moved = await self.publisher.publish_case(client, case, channel=channel)
        if moved:
            await tell(body=body, respond=None, client=client,
                       text=f"I can't post in that conversation, so {case.id} is here in our DM.")

    def _case_of(self, view: dict) -> tuple[str, Step | None]:
        meta = json.loads(view.get("private_metadata") or "{}")
        try:
            return meta.get("case", ""), Step(meta["step"]) if "step" in meta else None
        except ValueError:
            return meta.get("case", ""), None

    async def on_note_form(self, ack, body, view, client: AsyncWebClient, context) -> None:
        note = _value(view, Field.NOTE).strip()
        case_id, step = self._case_of(view)
        if not note:
            await ack(response_action="errors", errors={Field.NOTE.value: "Write a note, or cancel and tap Done."})
            return
        try:
            case = await self.recovery.complete_step(workspace=_workspace(body, context), case_id=case_id,
                                                     actor=body["user"]["id"], step=step, note=note)
        except Refusal as refusal:
            await ack(response_action="errors", errors={Field.NOTE.value: refusal.sentence})
            return
        await ack()
        await self.publisher.advance(client, case, done=step)

    async def on_give_form(self, ack, body, view, client: AsyncWebClient, context) -> None:
        case_id, _ = self._case_of(view)
        try:
            case, _entry = await self.recovery.give(
                workspace=_workspace(body, context), case_id=case_id, actor=body["user"]["id"],
                kind=_value(view, Field.KIND), amount_text=_value(view, Field.AMOUNT))
        except Refusal as refusal:
            await ack(response_action="errors", errors={Field.AMOUNT.value: refusal.sentence})
            return
        await ack()
        await self.publisher.advance(client, case, done=Step.COMPENSATE)

    async def on_follow_up_form(self, ack, body, view, client: AsyncWebClient, context) -> None:
        case_id, _ = self._case_of(view)
        try:
            picked = date.fromisoformat(_value(view, Field.DATE))
        except ValueError:
            await ack(response_action="errors", errors={Field.DATE.value: "Pick a date."})
            return
        try:
            case = await self.recovery.follow_up(workspace=_workspace(body, context), case_id=case_id,
                                                 actor=body["user"]["id"], on=picked)
        except Refusal as refusal:
            await ack(response_action="errors", errors={Field.DATE.value: refusal.sentence})
            return
        await ack()
        await self.publisher.advance(client, case, done=Step.FOLLOW_UP)
