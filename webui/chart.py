"""A small server-rendered SVG: requests fulfilled per minute (bars) and their median latency
(line) over the last hour. Readable without JavaScript."""

from __future__ import annotations

from html import escape
from typing import Any

WIDTH, HEIGHT, PAD = 600, 160, 28


def throughput_latency_svg(minutes: list[dict[str, Any]]) -> str:
    count_max = max((m["fulfilled"] for m in minutes), default=0) or 1
    latency_max = max((m["p50_ms"] or 0 for m in minutes), default=0) or 1
    step = (WIDTH - 2 * PAD) / max(len(minutes), 1)
    plot_h = HEIGHT - 2 * PAD
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        'aria-labelledby="chart-title" class="chart">',
        '<title id="chart-title">Requests fulfilled per minute and their median latency, last hour</title>',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" class="axis"/>',
    ]
    points = []
    for i, minute in enumerate(minutes):
        x = PAD + i * step
        if minute["fulfilled"]:
            h = plot_h * minute["fulfilled"] / count_max
            parts.append(
                f'<rect x="{x:.1f}" y="{HEIGHT - PAD - h:.1f}" width="{max(step - 1, 1):.1f}" height="{h:.1f}" '
                f'class="bar"><title>{minute["fulfilled"]} fulfilled</title></rect>'
            )
        if minute["p50_ms"] is not None:
            y = HEIGHT - PAD - plot_h * minute["p50_ms"] / latency_max
            points.append(f"{x + step / 2:.1f},{y:.1f}")
    if points:
        parts.append(f'<polyline points="{" ".join(points)}" class="latency"/>')
    parts.append(f'<text x="{PAD}" y="{PAD - 10}" class="label">{count_max} / min</text>')
    parts.append(
        f'<text x="{WIDTH - PAD}" y="{PAD - 10}" text-anchor="end" class="label">'
        f"p50 up to {escape(f'{latency_max:.0f}')} ms</text>"
    )
    parts.append(f'<text x="{PAD}" y="{HEIGHT - 8}" class="label">60 min ago</text>')
    parts.append(f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" text-anchor="end" class="label">now</text>')
    parts.append("</svg>")
    return "".join(parts)
