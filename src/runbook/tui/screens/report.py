"""Response times in the TUI: the report's tables and a terminal chart of TTA and TTM over time."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from runbook.catalog.durations import format_seconds
from runbook.tui.keys import key_for
from runbook.tui.widgets.keybar import KeyBar


def chart(trend: list[dict], width: int, height: int) -> Text:
    """TTA and TTM of each incident in minutes, oldest first, as a plotext line chart."""
    from plotext import figure  # imported when the chart is first drawn

    figure.clear()
    figure._set_size(max(width, 30), max(height, 8))
    figure.theme("dark")
    for key, label in (("tta", "TTA"), ("ttm", "TTM")):
        points = [(i + 1, row[key] / 60) for i, row in enumerate(trend) if row[key] is not None]
        if points:
            figure.draw(figure.signal([x for x, _ in points], [y for _, y in points]).lines().label(label))
    figure.label("incident (oldest first)", axis="x")
    figure.label("minutes", axis="y")
    return Text.from_ansi(figure.build().string())


class ReportScreen(Screen):
    HELP_TITLE = "Report"
    BINDINGS = [
        Binding("d", "toggle_drills", "Include drills on/off",
                tooltip="Include drills in the report, or leave them out"),
        Binding("escape,q", "close", "Back", tooltip="Back to the home screen"),
        Binding("question_mark", "app.help", "Help", tooltip="Every key of every screen"),
    ]

    def __init__(self):
        super().__init__()
        self.include_drills = False

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="report"):
            yield Static(id="report-body")
        yield KeyBar()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="report", exit_on_error=False)
    def load(self) -> None:
        self.app.deliver(lambda: self.app.gateway.report(self.include_drills), self.show)

    def show(self, data: dict) -> None:
        which = ("incidents and drills" if self.include_drills
                 else f"real incidents ({key_for(type(self), 'toggle_drills')} adds drills)")
        title = Text(f"Response times — {data['incidents']} {which}", style="bold")
        table = Table(expand=False)
        for column in ("metric", "n", "median", "p90", "max", "target", "breaches"):
            table.add_column(column)
        for label, m in data["metrics"].items():
            table.add_row(label, str(m["n"]), *map(format_seconds, (m["median"], m["p90"], m["max"], m["target"])),
                          Text(str(m["breaches"]), style="bold red" if m["breaches"] else ""))
        parts = [title, Text(""), table, Text("")]
        if data["trend"]:
            parts.append(chart(data["trend"], self.size.width - 6, 14))
            flagged = [r for r in data["trend"] if r["flagged"]]
            if flagged:
                parts.append(Text("\nMore than 10% over target:", style="bold"))
                parts += [Text(f"  {r['incident']}: {'; '.join(r['flagged'])}") for r in flagged[-10:]]
        else:
            parts.append(Text("No incidents yet.", style="dim"))
        self.query_one("#report-body", Static).update(Group(*parts))

    def action_toggle_drills(self) -> None:
        self.include_drills = not self.include_drills
        self.load()

    def action_close(self) -> None:
        self.app.pop_screen()
