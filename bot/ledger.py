"""The ledger: every compensation given, the record budgets are checked against."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True)
class LedgerEntry:
    workspace: str
    case_id: str
    employee: str
    role: str
    kind: str
    amount: Decimal
    currency: str
    at: datetime
    approved_by: str = ""  # the manager who approved a top-up over the person's allowance, if any
