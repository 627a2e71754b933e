"""Draw the two icons a Teams app package needs, so the committed PNGs can be made again from code.

    python -m teamsapp.icons          rewrite teamsapp/color.png and teamsapp/outline.png

color.png: 192×192, full colour: the manifest's accent colour with a white ringed tick.
outline.png: 32×32, the same tick in white on a transparent background, no padding (Teams
tints it itself for the app bar). Drawn at four times the size and scaled down for smooth edges;
the outline's colour is white everywhere and only its transparency is scaled, so no grey fringe.
Needs Pillow (a test dependency; the package builder only copies the PNGs).
"""

import json
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
COLOR_SIZE, OUTLINE_SIZE = 192, 32
SUPERSAMPLE = 4


def _accent() -> tuple[int, int, int]:
    hex_colour = json.loads((HERE.parent / "manifest.json").read_text())["accentColor"].lstrip("#")
    return tuple(int(hex_colour[i:i + 2], 16) for i in (0, 2, 4))


def tick(size: int, *, fill: float) -> Image.Image:
    """A ringed tick as an 8-bit mask of `size`×`size`, spanning `fill` of it, centred."""
    big = size * SUPERSAMPLE
    mask = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(mask)
    span = big * fill
    left = (big - span) / 2
    ring = span * 0.09
    draw.ellipse((left + ring / 2, left + ring / 2, left + span - ring / 2, left + span - ring / 2),
                 outline=255, width=round(ring))
    at = lambda x, y: (left + span * x, left + span * y)  # noqa: E731 — a point on the unit square
    draw.line([at(0.28, 0.52), at(0.44, 0.68), at(0.73, 0.36)], fill=255, width=round(span * 0.1), joint="curve")
    return mask.resize((size, size), Image.Resampling.LANCZOS)


def color_icon() -> Image.Image:
    image = Image.new("RGB", (COLOR_SIZE, COLOR_SIZE), _accent())
    image.paste((255, 255, 255), (0, 0), tick(COLOR_SIZE, fill=0.62))
    return image


def outline_icon() -> Image.Image:
    image = Image.new("RGBA", (OUTLINE_SIZE, OUTLINE_SIZE), (255, 255, 255, 0))
    image.putalpha(tick(OUTLINE_SIZE, fill=1.0))
    return image


def main() -> None:
    color_icon().save(HERE / "color.png", optimize=True)
    outline_icon().save(HERE / "outline.png", optimize=True)
    print(f"wrote {HERE / 'color.png'} and {HERE / 'outline.png'}")


if __name__ == "__main__":
    main()
