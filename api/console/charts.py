"""Charts drawn on the server as SVG: no script, no library, printable, and the numbers stay
beside every bar (the page's tables carry them too)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from markupsafe import Markup, escape

BAR_HEIGHT = 22
GAP = 6
LABEL_WIDTH = 190
BAR_WIDTH = 260
VALUE_WIDTH = 90


def bar_chart(rows: Sequence[tuple[str, float | int | Decimal]], *, title: str) -> Markup:
    """Horizontal bars, one per (label, value), scaled to the largest; each shows its value."""
    height = max(1, len(rows)) * (BAR_HEIGHT + GAP)
    width = LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH
    top = max((float(value) for _, value in rows), default=0.0) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet">',
        f"<title>{escape(title)}</title>",
    ]
    for index, (label, value) in enumerate(rows):
        y = index * (BAR_HEIGHT + GAP)
        length = max(1.0, BAR_WIDTH * float(value) / top) if float(value) > 0 else 0.0
        middle = y + BAR_HEIGHT / 2 + 4
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{middle:.0f}" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{length:.1f}" height="{BAR_HEIGHT}" rx="3">'
            f"<title>{escape(label)}: {escape(str(value))}</title></rect>"
            f'<text x="{LABEL_WIDTH + length + 6:.1f}" y="{middle:.0f}" class="value">'
            f"{escape(str(value))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
