"""The digest's chart, as PNG bytes: spend against budget by role, and recoveries per day.

matplotlib (Agg, no display) is imported inside the function: the bot's start-up and memory pay for
it only once a digest is drawn. Drawing is CPU work of a few hundred milliseconds; the glue runs it
in a thread so acks never wait behind it.
"""

import io
import threading

from bot.digest import Digest
from bot.money import format_money

# pyplot's state is global: one drawing at a time in this process.
_DRAWING = threading.Lock()
WIDTH, HEIGHT = 8.0, 3.2  # inches
ROLES_SHOWN = 8


def draw(digest: Digest, *, dpi: int = 100) -> bytes:
    """Two panels side by side; `dpi` 100 gives 800×320 px (Slack); a lower one keeps Teams' data: URI small."""
    import matplotlib
    matplotlib.use("Agg", force=True)
    from matplotlib import pyplot as plt

    roles = sorted((r for r in digest.spend if r.spent or r.budget), key=lambda r: -r.spent)[:ROLES_SHOWN]
    roles = roles or list(digest.spend[:1])
    with _DRAWING:
        figure, (spend, days) = plt.subplots(1, 2, figsize=(WIDTH, HEIGHT), dpi=dpi,
                                             gridspec_kw={"width_ratios": [1.2, 1]})
        try:
            names = [r.role for r in roles]
            positions = list(range(len(roles)))
            spend.bar([p - 0.2 for p in positions], [float(r.spent) for r in roles], width=0.4,
                      color="#2e7d32", label="given in these days")
            spend.bar([p + 0.2 for p in positions], [float(r.budget or 0) for r in roles], width=0.4,
                      color="#b0bec5", label="budget per person")
            spend.set_xticks(positions, names, fontsize=8)
            spend.set_title(f"Spend vs budget by role ({digest.currency})", fontsize=9)
            spend.tick_params(axis="y", labelsize=8)
            spend.legend(fontsize=7, frameon=False)
            for position, role in zip(positions, roles):
                if role.spent:
                    spend.annotate(format_money(role.spent, digest.currency), (position - 0.2, float(role.spent)),
                                   ha="center", va="bottom", fontsize=7)

            labels = [f"{d:%a}\n{d.day}" for d, _ in digest.per_day]
            counts = [n for _, n in digest.per_day]
            days.bar(range(len(counts)), counts, color="#1565c0")
            days.set_xticks(range(len(counts)), labels, fontsize=7)
            days.set_title("Recoveries per day", fontsize=9)
            days.set_ylim(0, max([*counts, 1]) * 1.2)
            days.yaxis.get_major_locator().set_params(integer=True)
            days.tick_params(axis="y", labelsize=8)
            for spine in (*spend.spines.values(), *days.spines.values()):
                spine.set_visible(False)
            figure.tight_layout()
            out = io.BytesIO()
            figure.savefig(out, format="png", dpi=dpi, metadata={"Software": None})
            return out.getvalue()
        finally:
            plt.close(figure)
