"""Roles, their limits and budgets, and what a person may give right now.

A role's *limit* is the most one case may cost; its *budget* is the most one person in that
role may give in a period. Inside both, the employee decides alone: that is empowerment.
"""

import re
from dataclasses import dataclass
from decimal import Decimal

from bot.errors import OverAllowance
from bot.money import format_money
from bot.periods import Period

ROLE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")

# Out of the box, anyone without a role may give up to $25 on a case and $100 a week.
DEFAULT_ROLE_NAME = "staff"
DEFAULT_LIMIT = Decimal("25")
DEFAULT_BUDGET = Decimal("100")
DEFAULT_PERIOD = Period.WEEK


@dataclass(frozen=True)
class Budget:
    amount: Decimal
    period: Period


@dataclass(frozen=True)
class Role:
    workspace: str
    name: str
    limit: Decimal
    budget: Budget | None = None


def default_role(workspace: str) -> Role:
    """The role of anyone an admin has not assigned, until an admin changes its limits."""
    return Role(workspace=workspace, name=DEFAULT_ROLE_NAME, limit=DEFAULT_LIMIT,
                budget=Budget(amount=DEFAULT_BUDGET, period=DEFAULT_PERIOD))


@dataclass(frozen=True)
class Allowance:
    """What one person may give on one case at one moment."""

    role: Role
    spent: Decimal
    currency: str

    @property
    def left(self) -> Decimal | None:
        """What is left of the period budget, or None when the role has no budget."""
        if self.role.budget is None:
            return None
        return max(Decimal(0), self.role.budget.amount - self.spent)

    @property
    def most(self) -> Decimal:
        """The largest amount they can give here and now."""
        return self.role.limit if self.left is None else min(self.role.limit, self.left)

    def money(self, amount: Decimal) -> str:
        return format_money(amount, self.currency)

    def describe(self) -> str:
        """"You can give up to $25 here · $60 left this week"."""
        if self.left == 0:
            return (f"Your {self.role.budget.period.adjective} budget is used up ({self.money(self.spent)} of "
                    f"{self.money(self.role.budget.amount)} given) · choose “Nothing needed”, or ask a manager")
        text = f"You can give up to {self.money(self.most)} here"
        if self.role.budget is not None:
            text += f" · {self.money(self.left)} left {self.role.budget.period.this}"
        return text

    def check(self, amount: Decimal) -> None:
        """Raise OverAllowance, saying what they *can* give, when amount is too much."""
        if amount <= self.most:
            return
        given = self.money(amount)
        if self.left is None or self.role.limit <= self.left:
            raise OverAllowance(
                f"{given} is over your limit of {self.money(self.role.limit)} per case "
                f"({self.role.name}). You can give up to {self.money(self.most)}."
            )
        period = self.role.budget.period.adjective
        if self.left == 0:
            raise OverAllowance(
                f"Your {period} budget is used up ({self.money(self.spent)} of "
                f"{self.money(self.role.budget.amount)} given), so {given} can't be recorded. "
                "Choose “Nothing needed”, or ask a manager."
            )
        raise OverAllowance(
            f"{given} is more than the {self.money(self.left)} left in your {period} budget. "
            f"You can give up to {self.money(self.most)}."
        )

def describe_role(role: Role, currency: str) -> str:
    """"server: $25 per case · $100 per week"."""
    text = f"{role.name}: {format_money(role.limit, currency)} per case"
    if role.budget is None:
        return text + " · no period budget"
    return text + f" · {format_money(role.budget.amount, currency)} per {role.budget.period.value}"
