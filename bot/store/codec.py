"""Domain values to plain JSON-able dicts and back, for stores that keep documents."""

from datetime import date, datetime, timezone
from decimal import Decimal

from bot.cases import Case, Compensation, MessageRef, Reopening, StepDone, TopUp
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
    doc = {
        "workspace": case.workspace,
        "id": case.id,
        "owner": case.owner,
        "owner_name": case.owner_name,
        "what_happened": case.what_happened,
        "customer": case.customer,
        "opened_at": _time(case.opened_at),
        "done": _done(case.done),
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
    # Fields most cases never use are written only when set (case_from_doc defaults them): an open case's
    # document is held in memory by the embedded store, and every save is a journal line.
    later = {
        "taken_at": _time(case.taken_at),
        "nudged_at": _time(case.nudged_at),
        "root_cause": case.root_cause,
        "change_note": case.change_note,
        "recognised_by": list(case.recognised_by),
        "top_up": None if case.top_up is None else _top_up(case.top_up),
        "follow_up_outcome": case.follow_up_outcome,
        "reopenings": [{"at": _time(r.at), "done": _done(r.done),
                        "follow_up_on": None if r.follow_up_on is None else r.follow_up_on.isoformat(),
                        "closed_at": _time(r.closed_at)} for r in case.reopenings],
        "erased_at": _time(case.erased_at),
    }
    doc.update((name, value) for name, value in later.items() if value)
    return doc


def _done(done: dict) -> dict:
    return {step.value: {"at": _time(d.at), "note": d.note} for step, d in done.items()}


def _undone(doc: dict) -> dict:
    return {Step(k): StepDone(at=_untime(v["at"]), note=v["note"]) for k, v in doc.items()}


def _top_up(top_up: TopUp) -> dict:
    return {"amount": str(top_up.amount), "reason": top_up.reason, "requested_at": _time(top_up.requested_at),
            "kind": top_up.kind,
            "status": top_up.status, "decided_by": top_up.decided_by, "decided_by_name": top_up.decided_by_name,
            "decided_at": _time(top_up.decided_at), "post": _ref(top_up.post)}


def _untop_up(doc: dict | None) -> TopUp | None:
    if doc is None:
        return None
    return TopUp(amount=Decimal(doc["amount"]), reason=doc["reason"], requested_at=_untime(doc["requested_at"]),
                 kind=doc.get("kind", ""),
                 status=doc["status"], decided_by=doc["decided_by"], decided_by_name=doc["decided_by_name"],
                 decided_at=_untime(doc["decided_at"]), post=_unref(doc["post"]))


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
        done=_undone(doc["done"]),
        compensation=None if comp is None else Compensation(
            kind=comp["kind"], amount=Decimal(comp["amount"]), currency=comp["currency"]),
        follow_up_on=None if doc["follow_up_on"] is None else date.fromisoformat(doc["follow_up_on"]),
        closed_at=_untime(doc["closed_at"]),
        card=_unref(doc["card"]),
        step_posts={Step(k): _unref(v) for k, v in doc["step_posts"].items()},
        summary=_unref(doc.get("summary")),
        source=doc.get("source", ""),  # cases stored before sources existed have none
        # Fields added after the first release: documents stored before them lack them.
        taken_at=_untime(doc.get("taken_at")),
        nudged_at=_untime(doc.get("nudged_at")),
        root_cause=doc.get("root_cause", ""),
        change_note=doc.get("change_note", ""),
        recognised_by=tuple(doc.get("recognised_by", ())),
        top_up=_untop_up(doc.get("top_up")),
        follow_up_outcome=doc.get("follow_up_outcome", ""),
        reopenings=tuple(Reopening(at=_untime(r["at"]), done=_undone(r["done"]),
                                   follow_up_on=None if r["follow_up_on"] is None else date.fromisoformat(r["follow_up_on"]),
                                   closed_at=_untime(r["closed_at"])) for r in doc.get("reopenings", ())),
        erased_at=_untime(doc.get("erased_at")),
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
        "approved_by": entry.approved_by,
    }


def entry_from_doc(doc: dict) -> LedgerEntry:
    return LedgerEntry(
        workspace=doc["workspace"], case_id=doc["case_id"], employee=doc["employee"], role=doc["role"],
        kind=doc["kind"], amount=Decimal(doc["amount"]), currency=doc["currency"], at=_untime(doc["at"]),
        approved_by=doc.get("approved_by", ""),
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
