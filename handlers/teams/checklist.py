"""Taps on a case's cards: tick a step (with its optional note), give, follow up, open from the form.

A tap arrives two ways and both are handled the same: Action.Execute as an `adaptiveCard/action`
invoke (whose HTTP answer is a card, shown at once to the person who tapped, or a sentence only
they see), and its Action.Submit fallback as a message whose `value` carries the same data
(answered in the conversation). The card's inputs are checked by Teams before it sends them, and
again here by the domain, with the same sentences as Slack. Taps on one case are handled one at a
time, so a double tap is recorded once and its second tap sees the first one's result.
"""

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta

from botbuilder.core import InvokeResponse, TurnContext

from bot.cases import Case
from bot.checklist import Step
from bot.errors import Refusal, StepNotOpen
from bot.learning import PICK_A_CAUSE, check_closing, root_causes
from bot.recovery import Recovery
from cards import teams as cards
from cards.ids import Action, Field, Form, read_button_value
from handlers.teams.publish import TeamsPublisher
from handlers.teams.turns import invoke_card, invoke_message, name_of, person_of, say, workspace_of

OUT_OF_DATE = "That button is out of date; use the latest message in the case thread."
FOLLOW_UP_IN = {Action.FOLLOW_UP_TOMORROW: 1, Action.FOLLOW_UP_NEXT_WEEK: 7, Action.NO_FOLLOW_UP: None}


@dataclass(frozen=True)
class Outcome:
    """What the person who tapped sees: the card as it is now, or one sentence."""

    card: dict | None = None
    sentence: str | None = None


@dataclass(frozen=True)
class Tap:
    """One tap on a card: the verb, who tapped and in which tenant, and the card's data with its inputs."""

    turn: TurnContext
    verb: str
    workspace: str
    actor: str
    data: dict

    def typed(self, field: Field) -> str:
        """An input's value as typed (Teams sends every input as a string; a number is read as typed too)."""
        value = self.data.get(field.value)
        return "" if value is None else str(value).strip()


Work = Callable[[Tap, str, Step], Awaitable[tuple[Case, dict]]]


class ChecklistHandlers:
    def __init__(self, *, recovery: Recovery, publisher: TeamsPublisher):
        self.recovery = recovery
        self.publisher = publisher
        self._verbs: dict[str, Work] = {
            Action.STEP_DONE: self._step_done,
            Action.GIVE: self._give,
            Action.NOTHING_NEEDED: self._nothing_needed,
            Action.FOLLOW_UP_TOMORROW: self._follow_up_in,
            Action.FOLLOW_UP_NEXT_WEEK: self._follow_up_in,
            Action.NO_FOLLOW_UP: self._follow_up_in,
            Action.FOLLOW_UP_PICK: self._follow_up_pick,
        }
        self._locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = weakref.WeakValueDictionary()
        # Verbs of other cards, each answered whole by its own glue (a reminder's: handlers/teams/followups.py).
        self.answers: dict[str, Callable[[Tap], Awaitable[Outcome]]] = {}

    def add_verbs(self, verbs: dict[str, Work]) -> None:
        """More taps on a case's cards, handled the same way (one at a time per case): e.g. top-ups."""
        self._verbs.update(verbs)

    # --- the two ways a tap arrives ----------------------------------------------------------
    async def on_execute(self, turn: TurnContext) -> InvokeResponse:
        """`adaptiveCard/action`: answer with the updated card, or a sentence only the tapper sees."""
        action = (turn.activity.value or {}).get("action") or {}
        data = action.get("data") if isinstance(action.get("data"), dict) else {}
        outcome = await self.tap(turn, verb=action.get("verb") or "", data=data)
        return invoke_card(outcome.card) if outcome.card is not None else invoke_message(outcome.sentence)

    async def on_submit(self, turn: TurnContext) -> None:
        """The Action.Submit fallback: the card is already updated in place; a sentence is said in the conversation."""
        data = turn.activity.value
        outcome = await self.tap(turn, verb=str(data.get("verb") or ""), data=data)
        if outcome.sentence is not None:
            await say(turn, outcome.sentence)

    async def tap(self, turn: TurnContext, *, verb: str, data: dict) -> Outcome:
        activity = turn.activity
        tap = Tap(turn=turn, verb=verb, workspace=workspace_of(activity), actor=person_of(activity), data=data)
        if verb == Form.NEW_CASE:
            return await self._refusing(self._open_from_form(tap))
        if verb in self.answers:
            return await self._refusing(self.answers[verb](tap))
        work = self._verbs.get(verb)
        case_id, step = read_button_value(str(data.get("value") or ""))
        if work is None or step is None:
            return Outcome(sentence=OUT_OF_DATE)
        async with self._lock(tap.workspace, case_id):
            try:
                _case, card = await work(tap, case_id, step)
                return Outcome(card=card)
            except StepNotOpen as refusal:
                case = await self.recovery.case(workspace=tap.workspace, case_id=case_id)
                if case.owner == tap.actor:
                    await self.publisher.resume(turn, case)
                return Outcome(sentence=refusal.sentence)
            except Refusal as refusal:
                return Outcome(sentence=refusal.sentence)

    def _lock(self, workspace: str, case_id: str) -> asyncio.Lock:
        """One lock per case while someone holds it: the second of two taps waits for the first's cards."""
        key = (workspace, case_id)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    @staticmethod
    async def _refusing(work: Awaitable[Outcome]) -> Outcome:
        """A refusal is the tapper's answer; anything else goes to the one error handler."""
        try:
            return await work
        except Refusal as refusal:
            return Outcome(sentence=refusal.sentence)

    # --- what each verb does -----------------------------------------------------------------
    async def _step_done(self, tap: Tap, case_id: str, step: Step) -> tuple[Case, dict]:
        case = await self.recovery.complete_step(workspace=tap.workspace, case_id=case_id, actor=tap.actor,
                                                 step=step, note=tap.typed(Field.NOTE))
        return await self.publisher.advance(tap.turn, case, done=step)

    async def _give(self, tap: Tap, case_id: str, step: Step) -> tuple[Case, dict]:
        # Whose case and which step first: a bad amount typed on someone else's card is their problem, not ours.
        await self.recovery.check_can_act(workspace=tap.workspace, case_id=case_id, actor=tap.actor,
                                          step=Step.COMPENSATE)
        # Over the allowance, handlers/teams/topups.py says how to ask a manager (or why they can't).
        case, _entry = await self.recovery.give(workspace=tap.workspace, case_id=case_id, actor=tap.actor,
                                                kind=tap.typed(Field.KIND), amount_text=tap.typed(Field.AMOUNT))
        return await self.publisher.advance(tap.turn, case, done=Step.COMPENSATE)

    async def _nothing_needed(self, tap: Tap, case_id: str, step: Step) -> tuple[Case, dict]:
        case = await self.recovery.nothing_needed(workspace=tap.workspace, case_id=case_id, actor=tap.actor)
        return await self.publisher.advance(tap.turn, case, done=Step.COMPENSATE)

    async def _follow_up_in(self, tap: Tap, case_id: str, step: Step) -> tuple[Case, dict]:
        days = FOLLOW_UP_IN[Action(tap.verb)]
        on = None if days is None else self.recovery.today() + timedelta(days=days)
        return await self._follow_up(tap, case_id, on)

    async def _follow_up_pick(self, tap: Tap, case_id: str, step: Step) -> tuple[Case, dict]:
        await self.recovery.check_can_act(workspace=tap.workspace, case_id=case_id, actor=tap.actor,
                                          step=Step.FOLLOW_UP)
        try:
            on = date.fromisoformat(tap.typed(Field.DATE))
        except ValueError:
            raise Refusal("Pick a date.") from None
        return await self._follow_up(tap, case_id, on)

    async def _follow_up(self, tap: Tap, case_id: str, on: date | None) -> tuple[Case, dict]:
        # The cause and "what we'll change" come with every button of the follow-up card (bot/learning.py).
        # A card posted before closing asked for a cause, or before an admin changed the list: redraw it.
        causes = await root_causes(self.recovery.store, workspace=tap.workspace)
        picked = " ".join(str(tap.typed(Field.ROOT_CAUSE) or "").split()).lower()
        if Field.ROOT_CAUSE.value not in tap.data or (picked and picked not in causes):
            case = await self.recovery.check_can_act(workspace=tap.workspace, case_id=case_id, actor=tap.actor,
                                                     step=Step.FOLLOW_UP)
            ref = case.step_posts.get(Step.FOLLOW_UP)
            if ref is not None:
                await self.publisher._tidy(self.publisher._update(
                    tap.turn, ref, *await self.publisher.live_step_card(case, Step.FOLLOW_UP)))
            check_closing(causes, root_cause=picked, change_note="")  # the sentence for a cause no longer listed
            raise Refusal(PICK_A_CAUSE)
        case = await self.recovery.follow_up(workspace=tap.workspace, case_id=case_id, actor=tap.actor, on=on,
                                             root_cause=tap.typed(Field.ROOT_CAUSE),
                                             change_note=tap.typed(Field.CHANGE_NOTE))
        return await self.publisher.advance(tap.turn, case, done=Step.FOLLOW_UP)

    async def _open_from_form(self, tap: Tap) -> Outcome:
        """The new-case form: only who asked for it may send it, and it becomes the case card in place."""
        form_id = tap.turn.activity.reply_to_id
        owner = str(tap.data.get("owner") or "")
        if owner and owner != tap.actor:
            return Outcome(sentence="This form is someone else's. To start your own, type recover and what happened.")
        what = tap.typed(Field.WHAT)
        if not what:
            return Outcome(sentence="Say what happened, e.g. cold soup, waited 40 min.")
        # A form is one case: a second tap (or Teams resending) finds the key taken and changes nothing.
        if form_id and not await self.recovery.first_time(f"teams-form:{tap.turn.activity.conversation.id}:{form_id}"):
            return Outcome(sentence="That form already opened a case; recover list shows your open cases.")
        case = await self.recovery.open_case(workspace=tap.workspace, owner=tap.actor,
                                             owner_name=name_of(tap.turn.activity), what_happened=what,
                                             customer=tap.typed(Field.CUSTOMER))
        case = await self.publisher.publish_case(tap.turn, case, replacing=form_id)
        return Outcome(card=cards.case_card(case)[1])
