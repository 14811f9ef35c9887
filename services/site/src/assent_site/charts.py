"""The console's telemetry charts: server-side SVG with pygal, from telemetry's admin statistics per day."""

import sys
from dataclasses import dataclass
from datetime import date

import pygal
from pygal.style import CleanStyle

# pygal appends a legacy import hook (no find_spec) to sys.meta_path for its map plugins, which
# the Site does not use; importers that ask every hook for find_spec (pytest's importlib mode) fail on it.
sys.meta_path[:] = [hook for hook in sys.meta_path if type(hook).__name__ != "PluginImportFixer"]

DIMENSIONS = {"page": "Pages", "browser": "Browsers", "os": "Operating systems", "device_type": "Devices",
              "isp": "Networks (ISP)"}
CHARTS = {"visits": "Visits", **DIMENSIONS}
_TOP = 5


@dataclass(frozen=True)
class Day:
    day: date
    stats: dict


def _chart(kind: type, title: str, days: list[Day]) -> pygal.Graph:
    chart = kind(js=[], disable_xml_declaration=True, no_prefix=True, style=CleanStyle, width=760, height=340,
                 title=title, x_label_rotation=30, show_minor_x_labels=True, legend_at_bottom=True,
                 print_values=False, include_x_axis=True)
    chart.x_labels = [d.day.strftime("%d %b") for d in days]
    return chart


def visits(days: list[Day]) -> str:
    chart = _chart(pygal.Line, "Page views and visitors per day", days)
    chart.add("Page views", [d.stats.get("pageviews", 0) for d in days])
    chart.add("Visitors", [d.stats.get("visitors", 0) for d in days])
    chart.add("Bots", [d.stats.get("bots", 0) for d in days])
    return chart.render()


def breakdown(dimension: str, days: list[Day]) -> str:
    """The most viewed values of a dimension over the range, as stacked bars per day."""
    totals: dict[str, int] = {}
    for d in days:
        for group in d.stats.get("breakdowns", {}).get(dimension, []):
            totals[group["value"]] = totals.get(group["value"], 0) + group["hits"]
    top = sorted(totals, key=lambda v: (-totals[v], v))[:_TOP]
    chart = _chart(pygal.StackedBar, f"{DIMENSIONS[dimension]}: page views per day", days)
    for value in top:
        per_day = []
        for d in days:
            groups = {g["value"]: g["hits"] for g in d.stats.get("breakdowns", {}).get(dimension, [])}
            per_day.append(groups.get(value, 0))
        chart.add(value[:40], per_day)
    if not top:
        chart.add("no data", [0 for _ in days])
    return chart.render()


def render(name: str, days: list[Day]) -> str:
    return visits(days) if name == "visits" else breakdown(name, days)


def topic_counts(periods: list[date], counts: list[dict], labels: dict[str, str]) -> str:
    """Inquiries per topic and period (support's feedback counts), as stacked bars: numbers only."""
    chart = pygal.StackedBar(js=[], disable_xml_declaration=True, no_prefix=True, style=CleanStyle, width=760,
                             height=340, title="Messages per topic", x_label_rotation=30, legend_at_bottom=True,
                             include_x_axis=True)
    chart.x_labels = [p.strftime("%d %b") for p in periods]
    by_key = {(c["period"], c["topic"]): c["count"] for c in counts}
    # Whole messages: the axis counts in whole steps, about ten of them.
    highest = max([sum(by_key.get((p.isoformat(), t), 0) for t in labels) for p in periods] + [1])
    chart.y_labels = list(range(0, highest + 1, -(-highest // 10)))
    for topic, label in labels.items():
        chart.add(label, [by_key.get((p.isoformat(), topic), 0) for p in periods])
    return chart.render()
