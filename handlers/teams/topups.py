"""Top-ups in Teams: "Ask a manager" on the compensate card becomes a request card in the recovery channel,
with Approve / Deny for managers only; the first decision replaces the request card in place (its buttons
go), and the case's owner hears it under their case card. Taps go through the checklist's handler, one at a
time per case, so a double tap sees the first one's result. bot/topups.py decides who may do what.
"""

import logging

from botbuilder.core import TurnContext

from bot.admins import Admins
from bot.cases import Case, MessageRef
from bot.checklist import Step
from bot.errors import OverAllowance, Refusal
from bot.recovery import Recovery
from bot.topups import DENIED, AlreadyDecided, TopUps, settled_without_waiting
from cards import teams as cards
from cards.ids import Action, Field
from handlers.teams.checklist import ChecklistHandlers, Tap
from handlers.teams.publish import TeamsError, TeamsPublisher, _addressed
from handlers.teams.turns import card_activity, name_of

log = logging.getLogger(__name__)
ASK = "Or say why under “Over your limit?” and tap Ask a manager."


class TopUpHandlers:
    def __init__(self, *, recovery: Recovery, publisher: TeamsPublisher, admins: Admins,
                 topups: TopUps | None = None):
        self.recovery = recovery
        self.publisher = publisher
        self.admins = admins
        self.topups = topups or TopUps(recovery=recovery)

    def register(self, checklist: ChecklistHandlers) -> None:
        checklist.add_verbs({Action.TOP_UP_ASK: self._ask, Action.TOP_UP_APPROVE: self._approve,
                             Action.TOP_UP_DENY: self._deny,
                             # settling the compensate step while a request waits takes its buttons away
                             Action.GIVE: self._settling(self._giving(checklist._verbs[Action.GIVE])),
                             Action.NOTHING_NEEDED: self._settling(checklist._verbs[Action.NOTHING_NEEDED])})

    def _giving(self, work):
        """Over the allowance: how to ask a manager; after a request was made (waiting, or denied), why not."""
        async def give(tap: Tap, case_id: str, step: Step) -> tuple[Case, dict]:
            try:
                return await work(tap, case_id, step)
            except OverAllowance as refusal:
                why_not = self.topups.why_not_ask(await self.recovery.case(workspace=tap.workspace, case_id=case_id))
                raise OverAllowance(f"{refusal.sentence} {why_not or ASK}") from None
        return give

    def _settling(self, work):
        async def settle(tap: Tap, case_id: str, step: Step) -> tuple[Case, dict]:
            case, card = await work(tap, case_id, step)
            await self._settled(tap, case)
            return case, card
        return settle

    async def _settled(self, tap: Tap, case: Case) -> None:
        """The person settled the compensate step while their request waited: its Approve / Deny go, in place."""
        if not settled_without_waiting(case) or case.top_up.post is None:
            return
        text, card = cards.top_up_request(case, kind=case.top_up.kind, currency=self.recovery.currency)
        await self.publisher._tidy(self.publisher._update(tap.turn, case.top_up.post, text, card))

    # --- asking ------------------------------------------------------------------------------
    async def _ask(self, tap: Tap, case_id: str, step: Step) -> tuple[Case, dict]:
        case = await self.topups.request(workspace=tap.workspace, case_id=case_id, actor=tap.actor,
                                         kind=tap.typed(Field.KIND), amount_text=tap.typed(Field.AMOUNT),
                                         reason=tap.typed(Field.REASON))
        try:
            post = await self._post_request(tap.turn, case)
        except TeamsError as error:  # unposted, the request may be asked again (bot/topups.py)
            log.warning("top-up request for %s not posted: %s", case.id, error)
            raise Refusal(f"I couldn't post your request for {case.id} where a manager would see it, so nobody "
                          "was asked. Tap Ask a manager again in a moment.") from None
        case = await self.topups.posted(workspace=case.workspace, case_id=case.id, post=post)
        text, card = await self.publisher.live_step_card(case, Step.COMPENSATE)  # now saying it waits for a manager
        ref = case.step_posts.get(Step.COMPENSATE)
        if ref is not None:
            await self.publisher._tidy(self.publisher._update(tap.turn, ref, text, card))
        return case, card

    async def _post_request(self, turn: TurnContext, case: Case) -> MessageRef:
        """In the recovery channel; under the case card when there is none, or Teams refuses it there."""
        kind = case.top_up.kind if case.top_up else ""
        activity = card_activity(*cards.top_up_request(case, kind=kind, currency=self.recovery.currency))
        channel = await self.publisher.recovery_channel(workspace=case.workspace)
        if channel is not None:
            try:
                posted = await self.publisher.post_proactively(channel, activity)
                return MessageRef(channel=channel.conversation.id, id=posted)
            except TeamsError as error:
                log.warning("top-up request for %s not posted in the recovery channel: %s", case.id, error)
        return await self._in_thread(turn, case, activity)

    @staticmethod
    async def _in_thread(turn: TurnContext, case: Case, activity) -> MessageRef:
        reply = _addressed(turn, activity, case.card.channel)
        reply.reply_to_id = case.card.id
        [posted] = await turn.adapter.send_activities(turn, [reply])
        return MessageRef(channel=case.card.channel, id=posted.id)

    # --- deciding ----------------------------------------------------------------------------
    async def _approve(self, tap: Tap, case_id: str, step: Step) -> tuple[Case, dict]:
        try:
            return await self._approving(tap, case_id)
        except AlreadyDecided:  # an old copy still showing buttons: show everyone what happened
            await self._settled(tap, await self.recovery.case(workspace=tap.workspace, case_id=case_id))
            raise

    async def _approving(self, tap: Tap, case_id: str) -> tuple[Case, dict]:
        case, _entry = await self.topups.approve(workspace=tap.workspace, case_id=case_id, manager=tap.actor,
                                                 manager_name=name_of(tap.turn.activity),
                                                 is_admin=await self.admins.is_admin(workspace=tap.workspace,
                                                                                     person=tap.actor))
        card = await self._decided(tap, case)
        await self.publisher.advance(tap.turn, case, done=Step.COMPENSATE)
        return case, card

    async def _deny(self, tap: Tap, case_id: str, step: Step) -> tuple[Case, dict]:
        try:
            return await self._denying(tap, case_id)
        except AlreadyDecided:
            await self._settled(tap, await self.recovery.case(workspace=tap.workspace, case_id=case_id))
            raise

    async def _denying(self, tap: Tap, case_id: str) -> tuple[Case, dict]:
        case = await self.topups.deny(workspace=tap.workspace, case_id=case_id, manager=tap.actor,
                                      manager_name=name_of(tap.turn.activity),
                                      is_admin=await self.admins.is_admin(workspace=tap.workspace, person=tap.actor))
        card = await self._decided(tap, case)
        ref = case.step_posts.get(Step.COMPENSATE)
        if ref is not None:  # the compensate card says it was denied, and still lets them give or not
            text, step_card = await self.publisher.live_step_card(case, Step.COMPENSATE)
            await self.publisher._tidy(self.publisher._update(tap.turn, ref, text, step_card))
        return case, card

    async def _decided(self, tap: Tap, case: Case) -> dict:
        """The request card as decided, for everyone (in place), and a note to the owner under their case."""
        kind = case.top_up.kind if case.top_up else ""
        text, card = cards.top_up_request(case, kind=kind, currency=self.recovery.currency)
        post = case.top_up.post
        if post is not None:
            await self.publisher._tidy(self.publisher._update(tap.turn, post, text, card))
        allowance = None
        if case.top_up.status == DENIED:
            allowance = await self.recovery.allowance(workspace=case.workspace, person=case.owner)
        if case.card is not None:
            note = card_activity(*cards.top_up_note(case, currency=self.recovery.currency, allowance=allowance))
            try:
                await self._in_thread(tap.turn, case, note)
            except TeamsError as error:
                log.warning("could not tell the owner of %s about the top-up: %s", case.id, error)
        return card
