"""Text for Slack's mrkdwn: escape what people typed, and clip to Slack's limits with "…"."""

import re

_CONTROL = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def escape(text: str) -> str:
    """Neutralise &, < and > so user text can't ping (<!channel>), mention (<@U…>) or forge links."""
    return re.sub(r"[&<>]", lambda m: _CONTROL[m.group()], text or "")


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, ending in "…" when cut."""
    text = text or ""
    return text if len(text) <= limit else text[: max(limit - 1, 0)].rstrip() + "…"


def safe(text: str, limit: int) -> str:
    """Escaped and clipped so the *escaped* text fits `limit` (entities are never cut in half)."""
    text = text or ""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    used, out = 0, []
    for char in text:
        piece = _CONTROL.get(char, char)
        if used + len(piece) > limit - 1:
            break
        out.append(piece)
        used += len(piece)
    return "".join(out).rstrip() + "…"


def humanize_slack_markup(text: str) -> str:
    """Turn Slack's markup in typed text into plain words: <@U1|amy> → @amy, <#C1|floor> → #floor,
    <https://x|label> → label (https://x), &amp; → &. What we store is what the person meant;
    escape() is applied again whenever it is shown."""
    def replace(match: re.Match) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            return "@" + (label or target[1:])
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            return "@" + (label or target[1:].split("^")[0])
        return f"{label} ({target})" if label else target
    text = re.sub(r"<([^<>]+)>", replace, text or "")
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
