"""Static panels that render parts of an IncidentView as Rich text (cheap to redraw every second)."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from runbook.catalog.durations import format_duration
from runbook.tui.gateway import IncidentView

MARKS = {"done": "✓", "skipped": "↷", "failed": "✗", "active": "▶", "pending": "·"}
STYLES = {"done": "green", "skipped": "yellow", "failed": "bold red", "active": "bold reverse", "pending": "dim"}


def clock(seconds: float) -> str:
    seconds = int(seconds)
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours}:{minutes:02d}:{secs:02d}" if hours else f"{sign}{minutes:02d}:{secs:02d}"


def countdown(name: str, left: float, met: bool, breached: bool) -> Text:
    label = {"acknowledge": "ack", "mitigate": "mitigate", "resolve": "resolve"}.get(name, name)
    if met:
        return Text(f"{label} ✓" + (" late" if breached else ""), style="dim" if not breached else "red")
    if left <= 0:
        return Text(f"{label} LATE {clock(-left)}", style="bold white on red")
    style = "bold yellow" if left <= 300 else "green"
    return Text(f"{label} {clock(left)}", style=style)


# How each tone an event record declares (engine/events.py) looks in the timeline.
TONES = {"note": "bold", "warning": "yellow", "error": "bold red", "reminder": "bold cyan", "flag": "magenta"}

class ViewPanel(Static):
    """A panel redrawn only when what it shows changed; fixed-size panels skip the layout pass."""

    FIXED_SIZE = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._key = None

    def changed(self, key) -> bool:
        if key == self._key:
            return False
        self._key = key
        return True

    def put(self, renderable) -> None:
        self.update(renderable, layout=not self.FIXED_SIZE)


class IncidentHeader(ViewPanel):
    def show(self, view: IncidentView, narrow: bool) -> None:
        if not self.changed((view.last_seq, int(view.now.timestamp()), narrow, view.status, view.altered, view.phase)):
            return
        top = Text()
        if view.altered:
            top.append(" LOG ALTERED ", style="bold white on red")
            top.append(" ")
        if view.drill:
            top.append(" DRILL ", style="bold black on magenta")
            top.append(" ")
        top.append(f" {view.severity} ", style=f"bold {'white on red' if view.severity in ('SEV1',) else 'black on yellow'}")
        top.append(f" {view.id} ", style="bold")
        top.append(view.title)
        status = "RESOLVED · FOLLOW-UP" if view.phase == "follow-up" else view.status.upper()
        top.append(f"   {status}", style="bold cyan" if view.status not in ("resolved", "closed") else "bold green")
        top.append(f"   elapsed {clock((view.now - view.opened_at).total_seconds())}")
        second = Text()
        for i, (name, left, met, breached) in enumerate(view.targets):
            if i:
                second.append("  ")
            second.append_text(countdown(name, left, met, breached))
        if view.acknowledged_by:
            second.append(f"   ack: {view.acknowledged_by}", style="green")
        else:
            second.append("   not acknowledged", style="bold red")
        if view.next_escalation:
            level, left = view.next_escalation
            second.append(f" · page L{level} in {clock(left)}", style="bold yellow" if left < 120 else "")
        for rid, _, holder in view.roles:  # on the second line: the header's height is fixed
            second.append(f"   {rid}: ", style="dim")
            second.append(holder or "—", style="bold" if holder else "dim")
        lines = [top, second]
        if view.parameters:
            params = Text()
            for name, value, _ in view.parameters:
                params.append(f"{name}=", style="dim")
                params.append(f"{value}  ", style="bold")
            lines.insert(1, params)
        if narrow:  # the side panel is hidden: who is paged and what is degraded go here
            third = Text()
            for row in view.ladder:
                third.append(f"{'✓' if row.notified else '·'}L{row.level} {row.who}  ",
                             style="bold" if row.notified else "dim")
            applied = [f.name for f in view.flags if f.applied]
            if applied:
                third.append(f"degraded: {', '.join(applied)}", style="bold magenta")
            lines.append(third)
        self.put(Text("\n").join(lines))


class StepList(ViewPanel):
    FIXED_SIZE = False  # as tall as its steps: a new list must be laid out, not painted into the old height

    def show(self, view: IncidentView, selected: str | None) -> None:
        if not self.changed((view.tracks, selected)):
            return
        out = Text()
        for t, track in enumerate(view.tracks):
            if t:
                out.append("\n")
            title = "Steps" if track.id == "main" else f"{track.title}" + (f" ({track.role})" if track.role else "")
            if track.id == "followup":
                title += " — after resolve"
            out.append(f"{title}\n", style="bold underline")
            for row in track.steps:
                mark = MARKS.get(row.status, "·")
                style = STYLES.get(row.status, "")
                pointer = "»" if row.current and row.id == selected else " "
                attempt = f" ×{row.attempt}" if row.attempt > 1 else ""
                out.append(f"{pointer}{mark} ", style=style)
                out.append(f"{row.title}{attempt}\n", style=style if row.current else ("dim" if row.status == "pending" else ""))
            if track.current is None:
                begins = track.id == "followup" and all(row.status == "pending" for row in track.steps)
                out.append("  (begins when resolved)\n" if begins else "  (track finished)\n", style="dim")
        self.put(out)


class LadderPanel(ViewPanel):
    FIXED_SIZE = False

    def show(self, view: IncidentView) -> None:
        if not self.changed((view.ladder, view.acknowledged_by)):
            return
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True)
        table.add_column()
        for row in view.ladder:
            mark = "✓" if row.notified else " "
            table.add_row(Text(f"{mark} L{row.level}", style="bold" if row.notified else "dim"),
                          Text(f"{row.who} · {format_duration(row.after)}"))
        ack = Text(f"acknowledged by {view.acknowledged_by}", style="green") if view.acknowledged_by else \
            Text("nobody has acknowledged", style="bold red")
        self.put(_stack(Text("Escalation", style="bold underline"), table, ack))


class FlagsPanel(ViewPanel):
    FIXED_SIZE = False

    def show(self, view: IncidentView) -> None:
        if not self.changed(view.flags):
            return
        parts = [Text("Degradations", style="bold underline")]
        if not view.flags:
            parts.append(Text("none in this playbook", style="dim"))
        for flag in view.flags:
            state = "APPLYING…" if flag.pending else ("APPLIED" if flag.applied else "off")
            line = Text(f"{'●' if flag.applied else '○'} {flag.name} ", style="bold magenta" if flag.applied else "")
            line.append(state, style="bold magenta" if flag.applied else "dim")
            parts.append(line)
            for name, value in flag.flags:
                parts.append(Text(f"    {name} → {value}", style="dim"))
        self.put(_stack(*parts))


class Timeline(ViewPanel):
    def show(self, view: IncidentView, rows: int) -> None:
        if not self.changed((view.last_seq, rows)):
            return
        out = Text()
        lines = view.timeline[-rows:] if rows > 0 else view.timeline
        for line in lines:
            out.append(f"{line.at:%H:%M:%S} ", style="dim")
            out.append(f"+{clock(line.rel)} ", style="dim")
            style = TONES.get(line.tone, "")
            out.append(f"{line.actor}: ", style="cyan" if line.tone == "note" else "dim")
            out.append(line.text + "\n", style=style)
        hidden = view.events - len(lines)
        header = Text(f"Timeline ({view.events} events" + (f", last {len(lines)} shown" if hidden > 0 else "") + ")\n",
                      style="bold underline")
        self.put(header + out)


def _stack(*parts) -> Group:
    return Group(*parts)
