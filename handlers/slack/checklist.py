"""The buttons and forms of a case's thread: tick a step, add a note, give, follow up.

Each handler reads the case id (and the step the button was drawn for) from the button, asks
the domain, and on success lets the publisher update the thread. A refusal (someone else's
case, a step already done, an amount over the allowance) reaches the person as one sentence
(in the form, when there is one) and changes nothing.

Buttons ack at once and do their work in the background. A form is validated and recorded in
its ack, so a refusal is shown inside the form (response_action "errors") and the form only
closes once the change is recorded; the thread is then updated in the background, and only
for a form whose ack recorded something (a second submit of the same form records nothing).
"""

import json
import logging
from datetime import date, timedelta
from functools import partial

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.checklist import Step
from bot.errors import OverAllowance, Refusal, StepNotOpen
from bot.learning import PICK_A_CAUSE, check_closing, root_causes
from bot.recovery import NOTE_MAX, Recovery
from cards import slack as cards
from cards.ids import Action, Field, Form, read_button_value
from cards.text import humanize_slack_markup
from handlers.slack.background import Background
from handlers.slack.publish import SlackPublisher, display_name
from handlers.slack.replies import tell, user_of, workspace_of

log = logging.getLogger(__name__)



def _value(view: dict, field: Field) -> str:
    """The typed (or picked) value of one input block of a submitted form."""
    block = view["state"]["values"].get(field.value, {})
    state = block.get(field.value) or next(iter(block.values()), {})  # an input redrawn under a new action id
    if "selected_option" in state:
        return (state["selected_option"] or {}).get("value", "")
    if "selected_date" in state:
        return state["selected_date"] or ""
    return state.get("value") or ""


def _closing(body: dict) -> tuple[str, str]:
    """The root cause picked and "what we'll change" typed in the follow-up step's message (Slack sends a
    message's input values with each of its buttons)."""
    state = {"state": body.get("state") or {"values": {}}}
    return _value(state, Field.ROOT_CAUSE), _value(state, Field.CHANGE_NOTE)


def _form_case(view: dict) -> tuple[str, Step | None]:
    """The case (and step) a form was opened for, from its private_metadata."""
    meta = json.loads(view.get("private_metadata") or "{}")
    try:
        return meta.get("case", ""), Step(meta["step"]) if "step" in meta else None
    except ValueError:
        return meta.get("case", ""), None


class ChecklistHandlers:
    def __init__(self, *, recovery: Recovery, publisher: SlackPublisher, background: Background, topups=None):
        self.recovery = recovery
        self.background = background
        self.publisher = publisher
        self.topups = topups  # handlers.slack.topups.TopUpHandlers: over the allowance, ask a manager

    def register(self, app: AsyncApp) -> None:
        buttons = {
            Action.STEP_DONE: self.on_step_done,
            Action.STEP_NOTE: self.on_step_note,
            Action.GIVE: self.on_give,
            Action.NOTHING_NEEDED: self.on_nothing_needed,
            Action.FOLLOW_UP_TOMORROW: self.on_follow_up_in,
            Action.FOLLOW_UP_NEXT_WEEK: self.on_follow_up_in,
            Action.NO_FOLLOW_UP: self.on_follow_up_in,
            Action.FOLLOW_UP_PICK: self.on_follow_up_pick,
        }
        app.action(Action.TAKE.value)(self.background.acked(self.on_take))
        app.action(Field.KIND.value)(self.background.acked(self.on_pick_kind))  # in the give form
        for action, work in buttons.items():
            app.action(action.value)(self.background.acked(self._button(work)))
        forms = {
            Form.NEW_CASE: (self.record_new_case, self.show_new_case),
            Form.STEP_NOTE: (self.record_note, self.show_progress),
            Form.GIVE: (self.record_gift, self.show_progress),
            Form.FOLLOW_UP: (self.record_follow_up, self.show_progress),
        }
        for form, (record, show) in forms.items():
            app.view(form.value)(self._form(record, show))

    def _form(self, record, show):
        """Record in the ack (a refusal shows in the form); show the result in the background."""
        async def listener(ack, body, view, client, respond, context) -> None:
            recorded = await record(ack=ack, body=body, view=view, client=client, context=context)
            if recorded:
                self.background.start(partial(show, recorded=recorded), body=body, client=client,
                                      respond=respond, context=context)
        return listener

    # --- buttons -----------------------------------------------------------------------------
    def _button(self, work):
        """Read the button, run the work; a refusal is told to the person who clicked."""
        async def run(*, body, client, respond, context) -> None:
            action = body["actions"][0]
            case_id, step = read_button_value(action.get("value", ""))
            workspace, actor = workspace_of(body, context), user_of(body)
            try:
                if step is None:
                    raise Refusal("That button is out of date; use the latest message in the case thread.")
                await work(workspace=workspace, case_id=case_id, step=step, actor=actor, action=action,
                           body=body, client=client)
            except StepNotOpen as refusal:
                await tell(body=body, respond=respond, client=client, text=refusal.sentence)
                case = await self.recovery.case(workspace=workspace, case_id=case_id)
                if case.owner == actor:  # the step they see may have lost its follow-on message
                    await self.publisher.resume(client, case)
            except Refusal as refusal:
                await tell(body=body, respond=respond, client=client, text=refusal.sentence)
        run.__name__ = work.__name__
        return run

    async def on_take(self, *, body, client: AsyncWebClient, respond, context) -> None:
        """"Take it" on a case nobody owns: the first tap owns it and starts the checklist; later taps are told who."""
        case_id, _ = read_button_value(body["actions"][0].get("value", ""))
        actor = user_of(body)
        try:
            name = await display_name(client, actor, fallback=(body.get("user") or {}).get("name", ""))
            case = await self.recovery.take(workspace=workspace_of(body, context), case_id=case_id, actor=actor,
                                            name=name)
        except Refusal as refusal:
            await tell(body=body, respond=respond, client=client, text=refusal.sentence)
            return
        await self.publisher.refresh_card(client, case)
        await self.publisher.post_step(client, case, Step.APOLOGISE)

    async def on_step_done(self, *, workspace, case_id, step, actor, action, body, client: AsyncWebClient):
        case = await self.recovery.complete_step(workspace=workspace, case_id=case_id, actor=actor, step=step)
        await self.publisher.advance(client, case, done=step)

    async def on_step_note(self, *, workspace, case_id, step, actor, action, body, client: AsyncWebClient):
        case = await self.recovery.check_can_act(workspace=workspace, case_id=case_id, actor=actor, step=step)
        await client.views_open(trigger_id=body["trigger_id"], view=cards.note_form(case, step, note_max=NOTE_MAX))

    async def on_give(self, *, workspace, case_id, step, actor, action, body, client: AsyncWebClient):
        case = await self.recovery.check_can_act(workspace=workspace, case_id=case_id, actor=actor,
                                                 step=Step.COMPENSATE)
        allowance = await self.recovery.allowance(workspace=workspace, person=actor)
        await client.views_open(trigger_id=body["trigger_id"], view=cards.give_form(
            case, allowance=allowance, catalogue=await self.recovery.kinds(workspace=workspace)))

    async def on_pick_kind(self, *, body, client: AsyncWebClient, respond, context) -> None:
        """A catalogue item picked in the give form: redraw it with that item's value prefilled (a % off asks
        for the bill). Cosmetic: if it can't be redrawn, the form still records what is submitted."""
        view = body.get("view") or {}
        case_id, _ = _form_case(view)
        workspace, actor = workspace_of(body, context), user_of(body)
        picked = (body["actions"][0].get("selected_option") or {}).get("value", "")
        try:
            case = await self.recovery.check_can_act(workspace=workspace, case_id=case_id, actor=actor,
                                                     step=Step.COMPENSATE)
            allowance = await self.recovery.allowance(workspace=workspace, person=actor)
            await client.views_update(view_id=view["id"], hash=view.get("hash"), view=cards.give_form(
                case, allowance=allowance, catalogue=await self.recovery.kinds(workspace=workspace), chosen=picked))
        except (Refusal, SlackApiError) as why:  # the submit says any refusal; a stale hash means they typed on
            log.info("give form of %s not redrawn: %s", case_id, why)

    async def on_nothing_needed(self, *, workspace, case_id, step, actor, action, body, client: AsyncWebClient):
        case = await self.recovery.nothing_needed(workspace=workspace, case_id=case_id, actor=actor)
        await self.publisher.advance(client, case, done=Step.COMPENSATE)
        if self.topups is not None:  # a request still waiting for a manager loses its buttons
            await self.topups.settled(client, case)

    async def on_follow_up_in(self, *, workspace, case_id, step, actor, action, body, client: AsyncWebClient):
        days = {Action.FOLLOW_UP_TOMORROW.value: 1, Action.FOLLOW_UP_NEXT_WEEK.value: 7}.get(action["action_id"])
        on = None if days is None else self.recovery.today() + timedelta(days=days)
        cause, change = _closing(body)  # the step message's inputs, sent with the button
        causes = await root_causes(self.recovery.store, workspace=workspace)
        if cause not in causes:  # none, or an old list's
            await self._ask_cause(workspace=workspace, case_id=case_id, actor=actor, body=body, client=client,
                                  cause=cause, causes=causes)
        case = await self.recovery.follow_up(workspace=workspace, case_id=case_id, actor=actor, on=on,
                                             root_cause=cause, change_note=change)
        await self.publisher.advance(client, case, done=Step.FOLLOW_UP)

    async def _ask_cause(self, *, workspace, case_id, actor, body, client: AsyncWebClient, cause: str,
                         causes: tuple[str, ...]) -> None:
        """No cause picked, or one an admin has since taken off the list: refused (whose case and which step
        are said first). A step message posted before closing asked for a cause has no input for it, and one
        posted before the list changed offers the old list: it is redrawn with the workspace's causes now."""
        case = await self.recovery.check_can_act(workspace=workspace, case_id=case_id, actor=actor,
                                                 step=Step.FOLLOW_UP)
        ref = case.step_posts.get(Step.FOLLOW_UP)
        if (cause or Field.ROOT_CAUSE.value not in ((body.get("state") or {}).get("values") or {})) and ref is not None:
            text, blocks = cards.step_message(case, Step.FOLLOW_UP, causes=causes)
            await self.publisher._tidy(client.chat_update(channel=ref.channel, ts=ref.id, text=text, blocks=blocks))
        check_closing(causes, root_cause=cause, change_note="")  # the sentence for a cause no longer listed
        raise Refusal(PICK_A_CAUSE)

    async def on_follow_up_pick(self, *, workspace, case_id, step, actor, action, body, client: AsyncWebClient):
        case = await self.recovery.check_can_act(workspace=workspace, case_id=case_id, actor=actor,
                                                 step=Step.FOLLOW_UP)
        cause, change = _closing(body)  # carried into the form, where they can still change
        await client.views_open(trigger_id=body["trigger_id"], view=cards.follow_up_form(
            case, initial=cards.default_follow_up(self.recovery.today()),
            causes=await root_causes(self.recovery.store, workspace=workspace), cause=cause, change=change))

    # --- forms: record in the ack ------------------------------------------------------------
    async def record_new_case(self, *, ack, body, view, client: AsyncWebClient, context) -> dict | None:
        what = humanize_slack_markup(_value(view, Field.WHAT)).strip()
        if not what:
            await ack(response_action="errors",
                      errors={Field.WHAT.value: "Say what happened, e.g. cold soup, waited 40 min."})
            return None
        user = body["user"]
        case = await self.recovery.open_case(
            workspace=workspace_of(body, context), owner=user["id"],
            owner_name=await display_name(client, user["id"], fallback=user.get("name", "")),
            what_happened=what, customer=humanize_slack_markup(_value(view, Field.CUSTOMER)),
            source=json.loads(view.get("private_metadata") or "{}").get("source", ""))
        await ack()
        return {"case": case.id}

    async def record_note(self, *, ack, body, view, client, context) -> dict | None:
        note = _value(view, Field.NOTE).strip()
        case_id, step = _form_case(view)
        if not note:
            await ack(response_action="errors", errors={Field.NOTE.value: "Write a note, or cancel and tap Done."})
            return None
        try:
            await self.recovery.complete_step(workspace=workspace_of(body, context), case_id=case_id,
                                              actor=body["user"]["id"], step=step, note=note)
        except Refusal as refusal:
            await ack(response_action="errors", errors={Field.NOTE.value: refusal.sentence})
            return None
        await ack()
        return {"case": case_id, "step": step.value}

    async def record_gift(self, *, ack, body, view, client, context) -> dict | None:
        case_id, _ = _form_case(view)
        given = dict(workspace=workspace_of(body, context), case_id=case_id, actor=body["user"]["id"],
                     kind=_value(view, Field.KIND), amount_text=_value(view, Field.AMOUNT))
        reason = _value(view, Field.REASON).strip()
        try:
            await self.recovery.give(**given)
        except OverAllowance as refusal:  # over the allowance: with a reason, a manager is asked
            if self.topups is None or not reason:
                errors = {Field.AMOUNT.value: refusal.sentence}
                if self.topups is not None:
                    errors[Field.REASON.value] = await self.topups.offer(**given)
                await ack(response_action="errors", errors=errors)
                return None
            try:
                await self.topups.ask(**given, reason=reason)
            except Refusal as refused:
                await ack(response_action="errors", errors={Field.REASON.value: refused.sentence})
                return None
            await ack()
            return {"case": case_id, "top_up": True}
        except Refusal as refusal:
            await ack(response_action="errors", errors={Field.AMOUNT.value: refusal.sentence})
            return None
        await ack()
        return {"case": case_id, "step": Step.COMPENSATE.value}

    async def record_follow_up(self, *, ack, body, view, client, context) -> dict | None:
        case_id, _ = _form_case(view)
        try:
            picked = date.fromisoformat(_value(view, Field.DATE))
        except ValueError:
            await ack(response_action="errors", errors={Field.DATE.value: "Pick a date."})
            return None
        cause, change = _value(view, Field.ROOT_CAUSE), _value(view, Field.CHANGE_NOTE)
        try:
            await self.recovery.follow_up(workspace=workspace_of(body, context), case_id=case_id,
                                          actor=body["user"]["id"], on=picked, root_cause=cause, change_note=change)
        except Refusal as refusal:
            # A refusal about the cause or the change shows under that input; anything else under the date.
            field = (Field.ROOT_CAUSE if refusal.sentence == PICK_A_CAUSE or "causes" in refusal.sentence
                     else Field.CHANGE_NOTE if "what we'll change" in refusal.sentence else Field.DATE)
            await ack(response_action="errors", errors={field.value: refusal.sentence})
            return None
        await ack()
        return {"case": case_id, "step": Step.FOLLOW_UP.value}

    # --- forms: show the result in the background ---------------------------------------------
    async def show_new_case(self, *, recorded: dict, body, client: AsyncWebClient, respond, context) -> None:
        user = body["user"]
        case = await self.recovery.case(workspace=workspace_of(body, context), case_id=recorded["case"])
        channel = json.loads(body["view"].get("private_metadata") or "{}").get("channel") or user["id"]
        case, moved = await self.publisher.publish_case(client, case, channel=channel)
        if moved:
            await tell(body=body, respond=respond, client=client,
                       text=f"I can't post in that conversation, so {case.id} is here in our DM.")

    async def show_progress(self, *, recorded: dict, body, client: AsyncWebClient, respond, context) -> None:
        case = await self.recovery.case(workspace=workspace_of(body, context), case_id=recorded["case"])
        if recorded.get("top_up"):
            await self.topups.show_request(client, case)
            return
        await self.publisher.advance(client, case, done=Step(recorded["step"]))
        if self.topups is not None and recorded["step"] == Step.COMPENSATE.value:  # a waiting request's buttons go
            await self.topups.settled(client, case)
