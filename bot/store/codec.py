"""Domain values to plain JSON-able dicts and back, for stores that keep documents."""

from datetime import date, datetime, timezone
from decimal import Decimal

from bot.cases import Case, Compensation, MessageRef, StepDone
from bot.checklist import Step
from bot.ledger import LedgerEntry
from bot.periods import Period
from bot.roles import Budget, Role


def _ref(ref: MessageRef | None) -> dict | None:
    return None if ref is None else {"channel": ref.channel, "id": ref.id}


def _unref(doc: dict | None) -> MessageRef | None:
    return None if doc is None else MessageRef(channel=doc["channel"], id=doc["id"])


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(timezone.utc).isoformat()


def _untime(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def case_to_doc(case: Case) -> dict:
    return {
        "workspace": case.workspace,
        "id": case.id,
        "owner": case.owner,
        "owner_name": case.owner_name,
        "what_happened": case.what_happened,
        "customer": case.customer,
        "opened_at": _time(case.opened_at),
        "done": {step.value: {"at": _time(d.at), "note": d.note} for step, d in case.done.items()},
        "compensation": None if case.compensation is None else {
            "kind": case.compensation.kind,
            "amount": str(case.compensation.amount),
            "currency": case.compensation.currency,
        },
        "follow_up_on": None if case.follow_up_on is None else case.follow_up_on.isoformat(),
        "closed_at": _time(case.closed_at),
        "card": _ref(case.card),
        "step_posts": {step.value: _ref(ref) for step, ref in case.step_posts.items()},
        "summary": _ref(case.summary),
        "source": case.source,
    }


def case_from_doc(doc: dict) -> Case:
    comp = doc.get("compensation")
    return Case(
        workspace=doc["workspace"],
        id=doc["id"],
        owner=doc["owner"],
        owner_name=doc["owner_name"],
        what_happened=doc["what_happened"],
        customer=doc["customer"],
        opened_at=_untime(doc["opened_at"]),
        done={Step(k): StepDone(at=_untime(v["at"]), note=v["note"]) for k, v in doc["done"].items()},
        compensation=None if comp is None else Compensation(
            kind=comp["kind"], amount=Decimal(comp["amount"]), currency=comp["currency"]),
        follow_up_on=None if doc["follow_up_on"] is None else date.fromisoformat(doc["follow_up_on"]),
        closed_at=_untime(doc["closed_at"]),
        card=_unref(doc["card"]),
        step_posts={Step(k): _unref(v) for k, v in doc["step_posts"].items()},
        summary=_unref(doc.get("summary")),
        source=doc.get("source", ""),  # cases stored before sources existed have none
    )


def entry_to_doc(entry: LedgerEntry) -> dict:
    return {
        "workspace": entry.workspace,
        "case_id": entry.case_id,
        "employee": entry.employee,
        "role": entry.role,
        "kind": entry.kind,
        "amount": str(entry.amount),
        "currency": entry.currency,
        "at": _time(entry.at),
    }


def entry_from_doc(doc: dict) -> LedgerEntry:
    return LedgerEntry(
        workspace=doc["workspace"], case_id=doc["case_id"], employee=doc["employee"], role=doc["role"],
        kind=doc["kind"], amount=Decimal(doc["amount"]), currency=doc["currency"], at=_untime(doc["at"]),
    )


def role_to_doc(role: Role) -> dict:
    return {
        "workspace": role.workspace,
        "name": role.name,
        "limit": str(role.limit),
        "budget": None if role.budget is None else {
            "amount": str(role.budget.amount), "period": role.budget.period.value},
    }


def role_from_doc(doc: dict) -> Role:
    budget = doc["budget"]
    return Role(
        workspace=doc["workspace"], name=doc["name"], limit=Decimal(doc["limit"]),
        budget=None if budget is None else Budget(amount=Decimal(budget["amount"]), period=Period(budget["period"])),
    )
