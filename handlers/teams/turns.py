"""Reading a Teams activity (who, which tenant, where) and answering it, in one place.

People are their AAD object id (what AMENDS_ADMINS lists and what stays the same across every
chat and team of the tenant); the workspace is the tenant.
"""

from http import HTTPStatus

from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.schema import Activity, ActivityTypes, Attachment

from cards import teams as cards

MESSAGE_RESPONSE = "application/vnd.microsoft.activity.message"
PERSONAL = "personal"


def workspace_of(activity: Activity) -> str:
    """The tenant: every team and chat of one organisation shares roles, budgets and the recovery channel."""
    tenant = (activity.channel_data or {}).get("tenant") or {}
    return (activity.conversation.tenant_id if activity.conversation else None) or tenant.get("id") or ""


def person_of(activity: Activity) -> str:
    """The AAD object id; the Teams user id only where Teams sends none (e.g. the Bot Framework Emulator)."""
    sender = activity.from_property
    return (sender.aad_object_id or sender.id) if sender else ""


def name_of(activity: Activity) -> str:
    sender = activity.from_property
    return (sender.name or person_of(activity)) if sender else ""


def is_personal(activity: Activity) -> bool:
    return bool(activity.conversation) and activity.conversation.conversation_type == PERSONAL


def in_teams_words(sentence: str) -> str:
    """The domain's sentences name the Slack command; in Teams the same command is typed `recover`."""
    return sentence.replace("/recover", "recover")


def card_activity(text: str, card: dict) -> Activity:
    """A message holding one Adaptive Card, and no text: Teams splits text + card into two messages,
    and the second loses the id we need to update the card in place."""
    return Activity(type=ActivityTypes.message, summary=text,
                    attachments=[Attachment(content_type=cards.CARD_TYPE, content=card)])


async def say(turn: TurnContext, sentence: str) -> None:
    """One sentence to the person, where they are (as a card, so nothing they typed renders as markdown)."""
    await turn.send_activity(card_activity(*cards.sentence(in_teams_words(sentence))))


def invoke_message(sentence: str) -> InvokeResponse:
    """An Action.Execute answer that only the person who tapped sees; the card stays as it was."""
    return InvokeResponse(status=HTTPStatus.OK, body={"statusCode": HTTPStatus.OK, "type": MESSAGE_RESPONSE,
                                                      "value": in_teams_words(sentence)})


def invoke_card(card: dict) -> InvokeResponse:
    """An Action.Execute answer that replaces the tapped card for the person who tapped it (everyone else
    gets the same card through update_activity)."""
    return InvokeResponse(status=HTTPStatus.OK, body={"statusCode": HTTPStatus.OK, "type": cards.CARD_TYPE,
                                                      "value": card})


async def answer_invoke(turn: TurnContext, response: InvokeResponse) -> None:
    """Leave the invoke's answer on the turn, where the adapter picks it up (used outside on_invoke_activity)."""
    await turn.send_activity(Activity(type=ActivityTypes.invoke_response, value=response))
