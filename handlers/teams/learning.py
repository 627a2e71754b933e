"""Teams glue for *Recognise* on a summary card: managers only, once each; the summary is updated in place
and the owner hears it in their 1:1 chat with Amends (when they have one).

Root causes are asked for by the follow-up card itself (handlers/teams/checklist.py); a returning guest
is pointed out under a new case's card (handlers/teams/publish.py).
"""

import logging

from botbuilder.schema import ConversationReference

from bot import learning
from bot.cases import MessageRef
from bot.managers import Managers
from bot.recovery import Recovery
from cards import teams as cards
from cards.ids import Action, read_button_value
from handlers.teams.checklist import ChecklistHandlers, Outcome, Tap
from handlers.teams.publish import TeamsError, TeamsPublisher, person_key
from handlers.teams.turns import card_activity, name_of

log = logging.getLogger(__name__)

NOT_A_MANAGER = "Only managers can recognise a recovery; nothing changed."


class Recognise:
    def __init__(self, *, recovery: Recovery, publisher: TeamsPublisher):
        self.recovery = recovery
        self.publisher = publisher
        self.managers = Managers(recovery=recovery)

    async def __call__(self, tap: Tap) -> Outcome:
        case_id, _ = read_button_value(str(tap.data.get("value") or ""))
        admin = await self.publisher.admins.is_admin(workspace=tap.workspace, person=tap.actor)
        if not await self.managers.is_manager(workspace=tap.workspace, person=tap.actor, is_admin=admin):
            return Outcome(sentence=NOT_A_MANAGER)
        name = name_of(tap.turn.activity)
        case = await learning.record_recognition(self.recovery.store, workspace=tap.workspace, case_id=case_id,
                                                 manager=tap.actor, name=name)  # a refusal: the tapper's answer
        text, card = cards.summary(case, recognised=await learning.recogniser_names(self.recovery.store, case))
        tapped = tap.turn.activity.reply_to_id
        if tapped:  # everyone else sees it too (the tapper gets it as the invoke's answer)
            where = MessageRef(channel=tap.turn.activity.conversation.id, id=tapped)
            await self.publisher._tidy(self.publisher._update(tap.turn, where, text, card))
        await self._tell_owner(case, by=name)
        return Outcome(card=card)

    async def _tell_owner(self, case, *, by: str) -> None:
        stored = await self.recovery.store.reference(workspace=case.workspace, key=person_key(case.owner))
        if stored is None:
            log.info("owner of %s can't be told of a recognition: no 1:1 chat with Amends", case.id)
            return
        try:
            await self.publisher.post_proactively(ConversationReference().deserialize(stored),
                                                  card_activity(*cards.recognised_note(case, by=by)))
        except TeamsError as error:
            log.warning("owner of %s not told of a recognition: %s", case.id, error)


def attach(*, recovery: Recovery, publisher: TeamsPublisher, checklist: ChecklistHandlers) -> None:
    checklist.answers[Action.RECOGNISE] = Recognise(recovery=recovery, publisher=publisher)
