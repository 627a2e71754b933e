"""The kinds of compensation a person can pick from. Admins will edit them (a later issue)."""

DEFAULT_CATALOGUE: tuple[str, ...] = ("comp item", "discount", "voucher", "refund", "other")
