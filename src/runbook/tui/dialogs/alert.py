"""One received alert in full: what it carries, what became of it and why."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Label, Static

from runbook.tui.alert_views import NEEDS_A_HUMAN, AlertView
from runbook.tui.dialogs.base import Dialog


class AlertDialog(Dialog[bool]):
    """The alert's status, outcome and reason, labels and annotations. For an alert no playbook
    took, Enter (or y) returns True: find a playbook and open an incident by hand. Esc closes."""

    BINDINGS = [Binding("enter,y", "find", "Find a playbook", priority=True),
                Binding("escape,n", "close", "Close", priority=True)]

    def __init__(self, alert: AlertView):
        super().__init__()
        self.alert = alert
        self.actionable = alert.outcome in NEEDS_A_HUMAN

    def compose(self) -> ComposeResult:
        alert = self.alert
        with Vertical(classes="dialog"):
            # every text here came from the network (already escaped by the gateway): never markup
            became = f", {alert.outcome}" if alert.outcome != alert.status else ""
            yield Label(Text(f"Alert {alert.name} — {alert.status}{became}"), classes="dialog-title")
            why = alert.reason or {"pending": f"opening {alert.incident}…"}.get(alert.outcome, "")
            if why:
                yield Static(Text(why, style="bold red" if self.actionable else ""), classes="dialog-detail")
            body = Text()
            for heading, pairs in (("Labels", (("alertname", alert.name), *alert.labels)),
                                   ("Annotations", alert.annotations)):
                if pairs:
                    body.append(f"{heading}\n", style="bold underline")
                    for name, value in pairs:
                        body.append(f"  {name}", style="bold")
                        body.append(f" = {value}\n")
            body.append(f"Fingerprint {alert.fingerprint} · started {alert.starts_at} · "
                        f"last heard {alert.seen:%Y-%m-%d %H:%M:%S}", style="dim")
            with VerticalScroll(id="alert-body"):
                yield Static(body)
            keys = "[b]Enter[/b] find a playbook to open an incident with   " if self.actionable else ""
            yield Label(keys + "[b]Esc[/b] close", classes="dialog-keys")

    def action_find(self) -> None:
        if self.actionable:
            self.dismiss(True)

    def action_close(self) -> None:
        self.dismiss(False)
