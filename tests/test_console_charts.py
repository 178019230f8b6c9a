"""The server-drawn SVG charts: one bar per row, scaled, labelled, escaped."""

from __future__ import annotations

import re

from api.console.charts import BAR_WIDTH, bar_chart


def test_bars_are_scaled_to_the_largest_and_carry_their_numbers() -> None:
    svg = str(bar_chart([("return", 5), ("repair", 1), ("exchange", 0)], title="by type"))
    widths = [float(w) for w in re.findall(r'<rect [^>]*width="([\d.]+)"', svg)]
    assert widths == [BAR_WIDTH, BAR_WIDTH / 5, 0.0]
    assert ">5</text>" in svg and ">1</text>" in svg and ">0</text>" in svg
    assert svg.startswith("<svg") and "<title>by type</title>" in svg


def test_labels_are_escaped() -> None:
    svg = str(bar_chart([("<script>", 1)], title="x"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
