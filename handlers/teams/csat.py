"""Low survey scores in Teams: a location mapped to a channel, the unowned case posted there, *Take it*.

`recover admin location <name> here`, sent in a channel, keeps that channel's ConversationReference
(by channel id) and then maps the name to the channel in bot/csat.py's directory. A low score for
that location is posted into the channel proactively (there is no turn there to answer), as a new
post with *Take it*. The first tap owns the case: the card is updated in place for everyone and the
checklist follows it; anyone later is told who took it, and nothing changes.
"""

import logging

from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.schema import Activity, ConversationAccount, ConversationReference

from bot import csat
from bot.cases import Case, MessageRef
from bot.checklist import Step
from bot.errors import BadCommand, Refusal
from bot.recovery import Recovery
from cards import teams as cards
from cards.ids import read_button_value
from handlers.teams.publish import TeamsError, TeamsPublisher
from handlers.teams.turns import (card_activity, invoke_card, invoke_message, is_personal, name_of, person_of, say,
                                  workspace_of)

log = logging.getLogger(__name__)

OUT_OF_DATE = "That button is out of date; use the latest message in the case thread."


def channel_key(channel: str) -> str:
    """The store key of a survey channel's ConversationReference (per tenant, by Teams channel id)."""
    return f"teams.csat_channel:{channel}"


def channel_reference(activity: Activity, *, workspace: str) -> ConversationReference:
    """Where a proactive post in this activity's channel goes: the channel itself, not this message's thread."""
    reference = TurnContext.get_conversation_reference(activity)
    reference.activity_id = None
    channel = (activity.channel_data or {}).get("channel") or {}
    team = (activity.channel_data or {}).get("team") or {}
    reference.conversation = ConversationAccount(
        id=channel.get("id") or activity.conversation.id.split(";")[0],
        conversation_type=activity.conversation.conversation_type, is_group=activity.conversation.is_group,
        tenant_id=workspace or None, name=" · ".join(n for n in (team.get("name"), channel.get("name")) if n) or None)
    return reference


async def set_location_here(recovery: Recovery, turn: TurnContext, *, name: str, where: str) -> None:
    """`recover admin location <name> here`: low scores from `name` open their cases in this channel."""
    activity = turn.activity
    workspace = workspace_of(activity)
    usage = f"`@Amends recover admin location {name} here`"
    if where.lower() != "here":
        raise BadCommand(f"{where!r} isn't a channel I can find from here. Go to the channel and send {usage}.")
    if is_personal(activity):
        raise BadCommand(f"Send {usage} in the channel where that location's cases should go; this is our "
                         "private chat.")
    reference = channel_reference(activity, workspace=workspace)
    channel = reference.conversation.id

    async def keep_reference() -> None:  # before the name points at the channel, so a mapped name can always post
        await recovery.store.put_reference(workspace=workspace, key=channel_key(channel), value=reference.serialize())

    kept = await csat.set_location(recovery, workspace=workspace, name=name, channel=channel, check=keep_reference)
    await say(turn, f"Saved. A low survey score from “{kept}” opens a case in this channel, for whoever takes it.")


async def post_case(publisher: TeamsPublisher, case: Case, place: csat.Place) -> bool:
    """The unowned case's card, with *Take it*, as a new post in the location's channel; False when it can't be."""
    stored = await publisher.recovery.store.reference(workspace=place.workspace, key=channel_key(place.channel))
    if stored is None:
        log.warning("CSAT case %s: no Teams channel kept for %s", case.id, place.channel)
        return False
    reference = ConversationReference().deserialize(stored)
    try:
        posted = await publisher.post_proactively(reference, card_activity(*cards.case_card(case)))
    except TeamsError as error:  # the case is recorded; the log says why nobody sees it
        log.error("CSAT case %s is recorded but its card was not posted in %s: %s", case.id, place.channel, error)
        return False
    await publisher.recovery.remember_post(workspace=case.workspace, case_id=case.id,
                                           card=MessageRef(channel=reference.conversation.id, id=posted))
    return True


class TakeIt:
    """*Take it* on an unowned case's card, arriving as Action.Execute or as its Action.Submit fallback."""

    def __init__(self, *, recovery: Recovery, publisher: TeamsPublisher):
        self.recovery = recovery
        self.publisher = publisher

    async def on_execute(self, turn: TurnContext) -> InvokeResponse:
        action = (turn.activity.value or {}).get("action") or {}
        data = action.get("data") if isinstance(action.get("data"), dict) else {}
        card, sentence = await self.take(turn, data)
        return invoke_card(card) if card is not None else invoke_message(sentence)

    async def on_submit(self, turn: TurnContext) -> None:
        """The card is already updated in place for everyone; only a refusal is said."""
        _card, sentence = await self.take(turn, turn.activity.value)
        if sentence is not None:
            await say(turn, sentence)

    async def take(self, turn: TurnContext, data: dict) -> tuple[dict | None, str | None]:
        """(the case card as it is now, None) for the first tap; (None, why not) for any other."""
        case_id, step = read_button_value(str(data.get("value") or ""))
        if not case_id or step is not None:
            return None, OUT_OF_DATE
        activity = turn.activity
        try:
            case = await self.recovery.take(workspace=workspace_of(activity), case_id=case_id,
                                            actor=person_of(activity), name=name_of(activity))
        except Refusal as refusal:
            return None, refusal.sentence
        await self.publisher.refresh_card(turn, case)
        await self.publisher.post_step(turn, case, Step.APOLOGISE)
        return cards.case_card(case, now=self.recovery.clock.now())[1], None  # as everyone sees it now
