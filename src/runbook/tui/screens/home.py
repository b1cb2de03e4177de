"""Home: open incidents, the playbook catalog with a symptom filter, drills.

The filter has the focus from the start: typing what you see ranks the playbooks at once, and
Enter asks to open the top match. Tab (or Down) moves to the lists, where the letter keys work."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from rich.text import Text
from textual.markup import escape
from textual.widgets import DataTable, Input, Label, Static

from runbook.catalog.matching import rank
from runbook.errors import RunbookError
from runbook.text import one_line
from runbook.tui.dialogs.confirm import ConfirmDialog
from runbook.tui.widgets.keybar import KeyBar


class HomeScreen(Screen):
    HELP_TITLE = "Home"
    BINDINGS = [
        # the tables' own Enter gets there first; this one is for the palette and the footer
        Binding("enter", "open", "Open/Resume", key_display="enter",
                tooltip="Open the selected playbook, or resume the selected incident"),
        Binding("slash", "filter", "Filter", tooltip="Filter playbooks by what you see (or just type)"),
        Binding("tab", "switch", "Switch list", tooltip="Switch between open incidents and playbooks"),
        Binding("r", "reload", "Refresh", tooltip="Refresh the open incidents"),
        Binding("R", "report", "Report", tooltip="Response-time report with a chart"),
        Binding("question_mark", "app.help", "Help", tooltip="Every key of every screen"),
        # ^q first: it quits from the symptom filter too (q types a q there)
        Binding("ctrl+q,q", "app.quit", "Quit", tooltip="Quit runbook (open incidents keep running)"),
    ]

    # keys that type into the filter while it has the focus (they work in the lists)
    LETTER_ACTIONS = frozenset({"reload", "report", "app.help", "filter"})

    def compose(self) -> ComposeResult:
        yield Static(id="home-title")
        # one column, full width: ids, titles and the panes' hints are never cut at 80 columns
        with Vertical(id="home-body"):
            yield Label("Open incidents — tab, then Enter to resume", classes="pane-title")
            yield DataTable(id="incidents", cursor_type="row", zebra_stripes=True)
            yield Label("Playbooks — type what you see, Enter opens the top match", classes="pane-title")
            yield Input(placeholder="What do you see? e.g. video freezing in one region", id="filter", select_on_focus=False)
            yield DataTable(id="playbooks", cursor_type="row", zebra_stripes=True)
            yield Label("Drills", classes="pane-title")
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
        for table_id, columns in (("#incidents", (("id", 10), ("sev", 4), ("status", 18))),
                                  ("#playbooks", (("playbook", 26), ("sev", 4)))):
            table = self.query_one(table_id, DataTable)
            for label, size in columns:
                table.add_column(label, width=size)
            # each column has a cell of padding on both sides; 4 cells for the scrollbar and margins
            table.add_column("title", width=max(20, width - sum(size + 2 for _, size in columns) - 6))
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
        if text.strip():
            ids = [m.playbook for m in rank(list(playbooks.values()), text)]
        else:
            ids = sorted(playbooks)
        for pid in ids:
            pb = playbooks[pid]
            table.add_row(pid, pb.severity, Text(one_line(pb.title)), key=pid)  # Text: a title is not markup

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
        incidents, playbooks = self.query_one("#incidents", DataTable), self.query_one("#playbooks", DataTable)
        (playbooks if incidents.has_focus else incidents).focus()

    @work(thread=True, exclusive=True, group="home-refresh", exit_on_error=False)
    def action_reload(self) -> None:
        rows = self.app.gateway.incidents()
        self.app.call_from_thread(self.show_incidents, rows)

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
        else:
            self.ask_open(key)

    def ask_open(self, key: str) -> None:
        pb = self.app.catalog.models("Playbook")[key]
        if pb.parameters:
            self.app.ask_parameters(key)
            return
        self.app.push_screen(ConfirmDialog(f"Open an incident on “{one_line(pb.title)}”?",
                                               f"Severity {pb.severity}; escalation {pb.escalation_for(pb.severity)} starts paging now."),
                                 lambda yes: yes and self.start(key))

    @work(thread=True, exit_on_error=False)
    def start(self, playbook: str) -> None:
        try:
            incident = self.app.gateway.call("open", playbook, self.app.actor).id
        except RunbookError as exc:
            self.app.call_from_thread(self.app.notify, str(exc), severity="error")
            return
        self.app.call_from_thread(self.app.open_incident, incident)
