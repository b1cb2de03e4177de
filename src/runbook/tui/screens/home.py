"""Home: open incidents, the alerts `runbook serve` received, the playbook catalog with a symptom
filter, drills.

The filter has the focus from the start: typing what you see ranks the playbooks at once, and
Enter asks to open the top match. Tab (or Down) moves to the lists, where the letter keys work.
An alert no playbook took is listed first and announced once; Enter on it shows why and offers
to find a playbook for it, whose incident then opens with the alert's labels."""

from __future__ import annotations

import re

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import DataTable, Input, Label, Static

from runbook.catalog import preview
from runbook.catalog.matching import rank
from runbook.errors import RunbookError
from runbook.text import one_line
from runbook.tui.alert_views import AlertView
from runbook.tui.dialogs.confirm import ConfirmDialog
from runbook.tui.widgets.keybar import KeyBar

NO_ALERTS = "Alerts — none received in the last 24 h (runbook serve)"
PLAYBOOKS_TITLE = "Playbooks — type what you see, Enter opens the top match"


def _words(name: str) -> str:
    """An alert name as filter words: "RtcVideoPacketLoss" -> "rtc video packet loss"."""
    return " ".join(re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", name)).lower() or name


class SymptomFilter(Input):
    """The symptom filter: it types everything but `?`, which opens help (a symptom needs no `?`,
    and a responder who has not read the docs presses it first)."""

    def check_consume_key(self, key: str, character: str | None) -> bool:
        return character != "?" and super().check_consume_key(key, character)


class HomeScreen(Screen):
    HELP_TITLE = "Home"
    BINDINGS = [
        # the tables' own Enter gets there first; this one is for the palette and the footer
        Binding("enter", "open", "Open/Resume", key_display="enter",
                tooltip="Open the selected playbook; resume an incident; act on an alert"),
        Binding("slash", "filter", "Filter", tooltip="Filter playbooks by what you see (or just type)"),
        Binding("tab", "switch", "Switch list", tooltip="Switch between open incidents, alerts and playbooks"),
        Binding("r", "reload", "Refresh", tooltip="Refresh the open incidents and the alerts"),
        Binding("R", "report", "Report", tooltip="Response-time report with a chart"),
        Binding("D", "drill", "Drill", tooltip="Start a drill: rehearse a playbook (tabletop: sandbox flags)"),
        # priority: it works from the symptom filter too (a symptom has no question mark to type)
        Binding("question_mark", "app.help", "Help", priority=True, tooltip="Every key of every screen"),
        # ^q first: it quits from the symptom filter too (q types a q there)
        Binding("ctrl+q,q", "app.quit", "Quit", tooltip="Quit runbook (open incidents keep running)"),
    ]

    # keys that type into the filter while it has the focus (they work in the lists)
    LETTER_ACTIONS = frozenset({"reload", "report", "filter", "drill"})

    def __init__(self):
        super().__init__()
        self.alerts: dict[str, AlertView] = {}  # the alerts shown, by key
        self.announced: set[str] | None = None  # alerts that needed a human when last shown (None: not loaded)
        self.for_alert: AlertView | None = None  # the alert whose labels the next incident opened here gets
        self.alert_width = 30  # the alert column's width, set once the screen knows its own

    def compose(self) -> ComposeResult:
        yield Static(id="home-title")
        # one column, full width: ids, titles and the panes' hints are never cut at 80 columns
        with Vertical(id="home-body"):
            yield Label("Open incidents — tab, then Enter to resume", classes="pane-title")
            yield DataTable(id="incidents", cursor_type="row", zebra_stripes=True)
            yield Label(NO_ALERTS, id="alerts-title", classes="pane-title -empty")
            yield DataTable(id="alerts", cursor_type="row", show_header=False)
            yield Label(PLAYBOOKS_TITLE, id="playbooks-title", classes="pane-title")
            yield SymptomFilter(placeholder="What do you see? e.g. video freezing in eu-west-1   (? help)",
                                id="filter", select_on_focus=False)
            yield DataTable(id="playbooks", cursor_type="row", zebra_stripes=True)
            yield Label("Drills — D starts one (from the lists: tab first)", classes="pane-title")
            yield Static("No drills are due.", id="drills")
        yield KeyBar()

    def key_available(self, action: str) -> bool:
        return not (action in self.LETTER_ACTIONS and isinstance(self.focused, Input))

    def on_descendant_focus(self) -> None:
        self.query_one(KeyBar).refresh_keys()

    def on_key(self, event) -> None:
        if event.key == "down" and isinstance(self.focused, Input):
            event.stop()
            self.query_one("#playbooks", DataTable).focus()
        elif event.is_printable and event.character and event.character.isalnum() \
                and not isinstance(self.focused, Input) and event.character not in self.letter_keys():
            # typing a symptom anywhere on home goes to the filter, as the heading says
            event.stop()
            box = self.query_one("#filter", Input)
            box.value = event.character
            box.cursor_position = len(box.value)
            box.focus()

    def on_screen_resume(self) -> None:
        self.query_one("#filter", Input).focus()  # back from an incident: ready to type again

    def letter_keys(self) -> set[str]:
        return {key for binding in self.BINDINGS for key in binding.key.split(",") if len(key) == 1}

    def on_mount(self) -> None:
        # fixed widths: the tables look the same whichever worker fills them first
        # fixed widths, so the tables look the same whichever worker fills them first; the
        # title takes the rest of the (full) width, so it is not cut to "Video calls d"
        width = self.app.size.width
        for table_id, columns in (("#incidents", (("id", 10), ("sev", 4), ("status", 18), ("title", None))),
                                  ("#playbooks", (("playbook", 26), ("sev", 4), ("title", None))),
                                  ("#alerts", (("seen", 5), ("status", 8), ("alert", None), ("became", BECAME_WIDTH)))):
            table = self.query_one(table_id, DataTable)
            # each column has a cell of padding on both sides; 4 cells for the scrollbar and margins
            rest = max(20, width - sum(size + 2 for _, size in columns if size) - 6)
            if table_id == "#alerts":
                self.alert_width = rest  # its labels are ended between words to fit (_alert_cells)
            for label, size in columns:
                table.add_column(label, width=size or rest)
        self.query_one("#home-title", Static).update(f"[b]runbook[/b] · responder: [b]{escape(self.app.actor)}[/b]")
        self.load_catalog()
        self.action_reload()
        self.query_one("#filter", Input).focus()
        if self.app.live:
            self.set_interval(2.0, self.action_reload)

    @work(thread=True, exit_on_error=False, group="home-catalog")
    def load_catalog(self) -> None:
        catalog = self.app.catalog
        self.app.call_from_thread(self.show_catalog, catalog)
        self.app.call_from_thread(self.show_drills, self.app.gateway.drills())

    def action_drill(self) -> None:
        """Pick a drill of the catalog, confirm (a live one says it flips real flags), and open its
        incident in drill mode, as `runbook drill run DRILL` does."""
        catalog = self.app.catalog
        drills = sorted(catalog.models("Drill").values(), key=lambda d: d.id) if catalog else []
        if not drills:
            self.app.notify("The catalog has no drills (kind: Drill).", severity="warning", timeout=5)
            return
        from runbook.tui.dialogs.choice import ChoiceDialog

        self.app.push_screen(ChoiceDialog("Start which drill?", [one_line(f"{d.id}: {d.title} ({d.mode}, "
                                                                          f"{d.playbook})") for d in drills]),
                             lambda i: i is not None and self.ask_drill(drills[i]))

    def ask_drill(self, drill) -> None:
        live = drill.mode == "live"
        detail = (f"LIVE: it flips real flags in production ({drill.playbook}). " if live else
                  "Tabletop: flags go to the sandbox file; the screen is marked DRILL. ") + \
            "Escalation pages as the playbook says; every step is timed for the debrief."
        self.app.push_screen(ConfirmDialog(f"Start drill “{one_line(drill.title)}”?", one_line(detail)),
                             lambda yes: yes and self.start_drill(drill.id, drill.playbook, drill.symptom,
                                                                  drill.severity, live))

    @work(thread=True, exit_on_error=False)
    def start_drill(self, drill: str, playbook: str, symptom, severity, live: bool) -> None:
        try:
            incident = self.app.gateway.call("open", playbook, self.app.actor, symptom=symptom, severity=severity,
                                             drill=True, rehearse=drill, live=live).id
        except RunbookError as exc:
            self.app.call_from_thread(self.app.notify, str(exc), severity="error")
            return
        self.app.call_from_thread(self.app.open_incident, incident)

    def action_report(self) -> None:
        from runbook.tui.screens.report import ReportScreen

        self.app.push_screen(ReportScreen())

    def show_drills(self, rows) -> None:
        if not rows:
            self.query_one("#drills", Static).update("No drills are scheduled.")
            return
        lines = Text()
        for drill, _, upcoming, last in rows[:3]:  # texts, not markup: they come from the catalog and the log
            lines.append(drill, style="bold")
            lines.append(f" last {last} · next {upcoming}\n")
        lines.rstrip()
        self.query_one("#drills", Static).update(lines)

    def show_catalog(self, catalog) -> None:
        count = len(catalog.of_kind("Playbook")) if catalog else 0
        self.query_one("#home-title", Static).update(
            f"[b]runbook[/b] — {count} playbooks · responder: [b]{escape(self.app.actor)}[/b]"
            + ("   [b red]catalog has errors: run runbook validate[/b red]" if catalog and catalog.errors else ""))
        self.fill_playbooks(self.query_one("#filter", Input).value)
        self.app.call_after_refresh(self.app.started)

    def fill_playbooks(self, text: str) -> None:
        table = self.query_one("#playbooks", DataTable)
        table.clear()
        catalog = self.app._catalog
        if catalog is None:
            return
        playbooks = catalog.models("Playbook")
        labels = self.for_alert.label_dict() if self.for_alert else None
        if text.strip() or labels:  # an alert's labels rank too: a playbook they half match comes up
            ids = [m.playbook for m in rank(list(playbooks.values()), text, labels=labels)]
        else:
            ids = sorted(playbooks)
        for pid in ids:
            pb = playbooks[pid]
            table.add_row(pid, pb.severity, Text(one_line(preview.title(pb))), key=pid)  # Text: a title is not markup

    def on_input_changed(self, event: Input.Changed) -> None:
        self.fill_playbooks(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the filter asks to open the top match (the list's first row)."""
        table = self.query_one("#playbooks", DataTable)
        table.focus()
        if table.row_count:
            table.move_cursor(row=0)
            self.ask_open(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def action_open(self) -> None:
        focused = self.focused
        table = focused if isinstance(focused, DataTable) else self.query_one("#playbooks", DataTable)
        if table.row_count:
            table.action_select_cursor()

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_switch(self) -> None:
        """Incidents, then the alerts (when there are some), then the playbooks, and round again."""
        lists = [self.query_one(f"#{name}", DataTable) for name in ("incidents", "alerts", "playbooks")]
        lists = [table for table in lists if table.row_count]
        focused = next((i for i, table in enumerate(lists) if table is self.focused), None)
        # set_focus now, not focus() (deferred): a key typed right after tab (enter) must reach the
        # list tab moved to, not the filter it left, which would open its top playbook
        self.set_focus(lists[0 if focused is None else (focused + 1) % len(lists)])

    @work(thread=True, exclusive=True, group="home-refresh", exit_on_error=False)
    def action_reload(self) -> None:
        rows = self.app.gateway.incidents()
        self.app.call_from_thread(self.show_incidents, rows)
        alerts = self.app.gateway.alerts()
        self.app.call_from_thread(self.show_alerts, alerts)

    def show_alerts(self, alerts: tuple[AlertView, ...]) -> None:
        """The alerts pane (one line when there are none), and a toast with the bell for each
        alert that newly needs a human (those already there when the screen first loads are
        listed first and marked, not announced)."""
        table, title = self.query_one("#alerts", DataTable), self.query_one("#alerts-title", Label)
        waiting = [alert for alert in alerts if alert.needs_a_human]
        if self.announced is not None:
            for alert in waiting:
                if alert.key not in self.announced:
                    self.app.notify(f"{alert.name} {_labels(alert)}: {alert.reason or alert.outcome}. "
                                    "Enter on it under Alerts to open an incident by hand.",
                                    title=f"Alert {alert.outcome}: no incident opened", severity="warning",
                                    timeout=30)
                    self.app.bell()
        self.announced = (self.announced or set()) | {alert.key for alert in waiting}
        if alerts == tuple(self.alerts.values()):
            return
        self.alerts = {alert.key: alert for alert in alerts}
        title.set_class(not alerts, "-empty")
        if not alerts:
            title.update(NO_ALERTS)
        else:
            heading = Text(f"Alerts, last 24 h ({len(alerts)})")
            if waiting:
                heading.append(f" — {len(waiting)} without an incident: Enter to open one by hand", style="bold red")
            else:
                heading.append(" — Enter resumes an alert's incident")
            title.update(heading)
        selected = None
        if table.row_count:
            selected = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        table.clear()
        for alert in alerts:
            table.add_row(*_alert_cells(alert, self.alert_width), key=alert.key)
        # one line per alert (none: no room at all), set here rather than measured by the table
        # when idle, so the pane is laid out with its rows at once (max-height caps it)
        table.styles.height = len(alerts)
        if selected in self.alerts:  # a refresh must not move the cursor to another alert
            table.move_cursor(row=list(self.alerts).index(selected))

    def show_incidents(self, rows: list[dict]) -> None:
        table = self.query_one("#incidents", DataTable)
        selected = None
        if table.row_count:
            selected = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        table.clear()
        for row in rows:
            drill = " DRILL" if row["drill"] else ""
            table.add_row(row["id"], Text(row["severity"]), row["status"] + drill, Text(row["title"]), key=row["id"])
        if not rows:
            table.add_row("—", "", "", "no open incidents", key="")
        keys = [row["id"] for row in rows]
        if selected in keys:  # a refresh must not move the cursor to another incident
            table.move_cursor(row=keys.index(selected))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value
        if not key:
            return
        if event.data_table.id == "incidents":
            self.app.open_incident(key)
        elif event.data_table.id == "alerts":
            self.act_on_alert(self.alerts[key])
        else:
            self.ask_open(key)

    def act_on_alert(self, alert: AlertView) -> None:
        """An alert's incident resumes; any other alert shows what it carries and why no incident
        opened, and one no playbook took offers to find a playbook for it."""
        from runbook.tui.dialogs.alert import AlertDialog

        if alert.incident and alert.outcome in ("opened", "attached"):
            self.app.open_incident(alert.incident)
            return
        self.app.push_screen(AlertDialog(alert), lambda find: find and self.find_playbook_for(alert))

    def find_playbook_for(self, alert: AlertView) -> None:
        """The filter, filled from the alert's name and ranking by its labels too; the incident
        opened next from here gets the alert's labels (its parameters and severity come from them)."""
        self.for_alert = alert  # before the filter changes: it ranks by the alert's labels too
        self.query_one("#playbooks-title", Label).update(
            Text(f"For alert {alert.name}: Enter opens the top match with its labels", style="bold red"))
        box = self.query_one("#filter", Input)
        box.value = _words(alert.name)
        box.cursor_position = len(box.value)
        box.focus()

    def ask_open(self, key: str) -> None:
        pb = self.app.catalog.models("Playbook")[key]
        alert, self.for_alert = self.for_alert, None  # the labels go with this open, not every later one
        self.query_one("#playbooks-title", Label).update(PLAYBOOKS_TITLE)
        labels = alert.label_dict() if alert else None
        linked = {"alert": alert.key} if alert else {}  # the engine opens with the alert's own labels, and links it
        if pb.parameters:
            typed = "" if alert else self.query_one("#filter", Input).value
            self.app.ask_parameters(key, labels=labels, typed=typed, **linked)
            return
        detail = f"Severity {pb.severity}; escalation {pb.escalation_for(pb.severity)} starts paging now."
        if alert:
            detail += f" With the labels of alert {alert.name}: {_labels(alert)}."
        self.app.push_screen(ConfirmDialog(f"Open an incident on “{one_line(preview.title(pb))}”?", detail),
                             lambda yes: yes and self.start(key, labels, alert.key if alert else None))

    @work(thread=True, exit_on_error=False)
    def start(self, playbook: str, labels: dict | None = None, alert: str | None = None) -> None:
        try:
            incident = self.app.gateway.call("open", playbook, self.app.actor, labels=labels, alert=alert).id
        except RunbookError as exc:
            self.app.call_from_thread(self.app.notify, str(exc), severity="error")
            return
        self.app.call_from_thread(self.app.open_incident, incident)


def _labels(alert: AlertView) -> str:
    return " ".join(f"{name}={value}" for name, value in alert.labels)


BECAME = {"opened": "→ {incident} opened", "attached": "→ {incident} attached", "pending": "→ {incident} opening…"}


BECAME_WIDTH = 30  # the alerts pane's last column (on_mount)


def fit(text: Text, width: int) -> Text:
    """`text` ended between words with "…" when longer than `width` cells, never inside a label or
    a word (Enter on the alert shows it all)."""
    if text.cell_len <= width:
        return text
    cut = text.plain.rfind(" ", 0, width - 1)
    text = text[: cut if cut > 0 else width - 1]
    text.append("…", style="dim")
    return text


def _alert_cells(alert: AlertView, width: int = 30) -> tuple:
    """One alert as the pane's cells (texts, not markup: every one of them came from the network)."""
    loud = alert.needs_a_human
    name = Text(alert.name, style="bold red" if loud else "bold")
    if alert.labels:
        name.append(" " + _labels(alert), style="" if loud else "dim")
    if alert.outcome in BECAME:
        became = Text(BECAME[alert.outcome].format(incident=alert.incident), style="green")
    elif alert.outcome in ("unmatched", "failed", "rejected"):
        became = Text(alert.outcome.upper(), style="bold white on red" if loud else "red")
        became.append(f" {alert.reason}" if alert.reason else "", style="bold red" if loud else "dim")
    elif alert.outcome == "resolved" and not alert.incident:
        became = Text("heard of only once resolved", style="dim")
    else:
        became = Text(alert.reason or alert.outcome, style="dim")
    status = Text(alert.status, style="bold" if alert.status == "firing" else "dim")
    return f"{alert.seen:%H:%M}", status, fit(name, width), fit(became, BECAME_WIDTH)
