"""Static panels that render parts of an IncidentView as Rich text (cheap to redraw every second)."""

from __future__ import annotations

import io

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from runbook.catalog.durations import format_duration
from runbook.catalog.models import FOLLOWUP_TRACK
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


TARGET_LABELS = {"acknowledge": "ack", "mitigate": "mitigate", "resolve": "resolve"}


def countdown(name: str, left: float, met: bool, breached: bool) -> Text:
    label = TARGET_LABELS.get(name, name)
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
    """Severity, id, status and elapsed time first (they never get cut), then the title; the
    countdowns and who is paged next; at narrow widths the ladder and what is degraded. Lines
    wrap rather than cut (the header is as tall as it needs). Then, when the playbook has more
    than one track, one line per track with its current step (`track_lines`)."""

    FIXED_SIZE = False

    def show(self, view: IncidentView, narrow: bool, selected: str | None = None, switch_key: str = "tab",
             stage_key: str = "S", post_key: str = "P") -> None:
        # as wide as the screen less its padding, known before the first layout
        width = self.content_size.width or self.app.size.width - 2
        if not self.changed((view.last_seq, int(view.now.timestamp()), narrow, view.status, view.altered, view.phase,
                             selected, switch_key, stage_key, post_key, width, view.timers_by)):
            return
        top = Text()
        if view.altered:
            top.append(" LOG ALTERED ", style="bold white on red")
            top.append(" ")
        if view.drill:
            top.append(" DRILL ", style="bold black on magenta")
            top.append(" ")
        colours = "white on red" if view.severity in ("SEV1",) else "black on yellow"
        top.append(f" {view.severity} ", style=f"bold {colours}")
        top.append(f" {view.id} ", style="bold")
        if view.resolved:
            phase = " · FOLLOW-UP" if view.phase == "follow-up" else " · CLOSED" if view.phase == "closed" else ""
            top.append(f" RESOLVED after {clock(view.elapsed)}{phase} ", style="bold green")
        else:
            top.append(f" {view.status.upper()} ", style="bold cyan")
            top.append(f" elapsed {clock(view.elapsed)} ")
        top.append(f" {view.title}")
        items = [Text.assemble((f"{name}=", "dim"), (value, "bold")) for name, value, _ in view.parameters]
        if view.acknowledged_by:
            items.append(Text(f"ack: {view.acknowledged_by}", style="green"))
        else:
            items.append(Text("not acknowledged", style="bold red"))
        if view.next_escalation and not view.resolved:
            level, left = view.next_escalation
            items.append(Text(f"page L{level} in {clock(left)}", style="bold yellow" if left < 120 else ""))
        elif view.by_pager and not view.resolved and not view.acknowledged_by:
            items.append(Text("escalation by the pager", style="bold yellow"))
        if narrow:  # the side panel is hidden: who is paged goes here
            for row in view.ladder:
                items.append(Text(f"{'✓' if row.notified else ''}L{row.level} {row.who}",
                                  style="bold" if row.notified else "dim"))
        for name, left, met, breached in view.targets:
            if view.resolved and not met:
                items.append(Text(f"{TARGET_LABELS.get(name, name)} never", style="dim"))
            else:
                items.append(countdown(name, left, met, breached))
        items += [Text.assemble((f"{rid}: ", "dim"), (holder, "bold"))  # who holds a role, once someone does
                  for rid, _, holder in view.roles if holder]
        applied = [f.label for f in view.flags if f.applied and not f.words]
        if applied and (narrow or any(f.automatic for f in view.flags if f.applied)):  # ...and what is degraded
            items.append(Text(f"degraded: {', '.join(applied)}", style="bold magenta"))
        # a staged one always, in words: its share moves by itself, and it may hold back the mitigation
        items += [staged_item(f, stage_key) for f in view.flags if f.applied and f.words]
        items += [background_item(b) for b in view.background]
        # updates on a cadence: one due for a person stands out; the others say when they post next
        items += [Text(f"UPDATE DUE: {u.step} ({post_key} posts)", style="bold white on dark_orange3") if u.due
                  else Text(f"update {u.step} at {u.next_at:%H:%M}", style="cyan") for u in view.updates]
        if view.timers_by:  # another runbook's lease holds the timers: they fire there, shown here as recorded
            items.append(Text(f"timers {view.timers_by}", style="dim"))
        lines = [top, *flow(items, width)]
        if len(view.tracks) > 1:
            lines.append(track_lines(view, selected, switch_key))
        self.put(Text("\n").join(lines))


def background_item(handle) -> Text:
    """"Forward the database port running (pid 1234, 3m)": a background command the incident will stop."""
    where = "" if handle.here else f" on {handle.host}"
    return Text(f"{handle.title} running (pid {handle.pid}{where}, {clock(handle.seconds)})", style="bold blue")


def staged_item(flag, stage_key: str) -> Text:
    """"degraded: audio-only for about 10% of users, stage 1 of 3 (10% → 50% in 4m10s)", and when it
    does not advance by itself, why and what to do."""
    item = Text(f"degraded: {flag.label}", style="bold magenta")
    if flag.held_why:
        todo = f"{stage_key} lets it go or advances it" if flag.held else f"{stage_key} advances by hand"
        item.append(f" — {'' if flag.held else 'HELD: '}{flag.held_why}; {todo}", style="bold yellow")
    return item


def flow(items: list[Text], width: int, separator: str = " · ") -> list[Text]:
    """Items as lines of at most `width` cells, broken between items, never inside one (a name
    or a countdown is never split); an item longer than a line gets a line of its own and wraps."""
    lines, line = [], Text()
    for item in items:
        if line.cell_len and line.cell_len + len(separator) + item.cell_len > width:
            lines.append(line)
            line = Text()
        if line.cell_len:
            line.append(separator, style="dim")
        line.append_text(item)
    if line.cell_len:
        lines.append(line)
    return lines


def track_lines(view: IncidentView, selected: str | None, switch_key: str) -> Text:
    """One line per track: its current step, so a track that runs alongside (comms) is never out
    of sight; the selected one is marked, and the key that switches is on the others."""
    out = Text()
    for track in view.tracks:
        here = track.id == selected
        step = next((row for row in track.steps if row.current), None)
        out.append("» " if here else "  ", style="bold")
        out.append(f"{track.title}: ", style="bold" if here else "")
        followup = track.id == FOLLOWUP_TRACK
        if step is None and followup and not view.resolved:
            out.append("not started (begins when resolved)", style="dim")
        elif step is None:
            out.append("✓ finished", style="green")
        elif view.resolved and not (followup and view.phase == "follow-up"):
            out.append(f"– not done: {step.title}", style="yellow")
        else:
            out.append(f"{MARKS.get(step.status, '▶')} {step.title}",
                       style="bold reverse" if here else STYLES.get(step.status, ""))
            if not here:
                out.append(f"  ({switch_key} to switch)", style="dim")
        out.append("\n")
    out.rstrip()
    return out


class StepList(ViewPanel):
    """Every track's steps, each title whole: wrapped under itself (after the mark), never cut."""

    FIXED_SIZE = False  # as tall as its steps: a new list must be laid out, not painted into the old height

    def show(self, view: IncidentView, selected: str | None) -> None:
        # the list's width is known once laid out; before that, from the breakpoint (app.tcss:
        # #steps-scroll is 26 cells wide when narrow, 30 otherwise, less padding, border and scrollbar)
        width = self.content_size.width or (22 if self.screen.has_class("-narrow") else 26)
        if not self.changed((view.tracks, selected, view.resolved, width)):
            return
        out = Text()
        at = 0
        for t, track in enumerate(view.tracks):
            if t:
                out.append("\n")
            title = "Steps" if track.id == "main" else f"{track.title}" + (f" ({track.role})" if track.role else "")
            if track.id == "followup":
                title += " — after resolve"
            out.append_text(hanging(Text(title, style="bold underline"), width, ""))
            out.append("\n")
            for row in track.steps:
                if row.current and row.id == selected:
                    at = out.plain.count("\n")
                if view.resolved and row.current:  # nothing is in progress once resolved
                    out.append_text(hanging(Text(f"{row.title} (not done)", style="yellow"), width, " – "))
                    out.append("\n")
                    continue
                mark = MARKS.get(row.status, "·")
                style = STYLES.get(row.status, "")
                pointer = "»" if row.current and row.id == selected else " "
                attempt = f" ×{row.attempt}" if row.attempt > 1 else ""
                quiet = "dim" if row.status == "pending" else ""
                out.append_text(hanging(Text(f"{row.title}{attempt}", style=style if row.current else quiet), width,
                                        Text(f"{pointer}{mark} ", style=style)))
                out.append("\n")
            if track.current is None:
                begins = track.id == "followup" and all(row.status == "pending" for row in track.steps)
                out.append("  (begins when resolved)\n" if begins else "  (track finished)\n", style="dim")
        self.put(out)
        if not self.parent.size and out.plain.count("\n") > self.app.size.height - 3:
            # Taller than the screen leaves it (the header takes two lines at least, the keys
            # one), so it scrolls: said before the first layout, the first frame has the
            # scrollbar instead of a second layout adding it just after.
            self.parent.show_vertical_scrollbar = True
        # the selected track's current step stays in sight (the comms track is below the main one)
        self.call_after_refresh(lambda: self.parent.scroll_to(y=max(0, at - 3), animate=False))


def hanging(text: Text, width: int, lead: Text | str) -> Text:
    """`lead` then `text` wrapped at word breaks to `width` cells, its later lines indented under its
    first (a long step title reads whole, and the marks stay a column of their own)."""
    lead = Text(lead) if isinstance(lead, str) else lead
    room = max(8, width - lead.cell_len)
    lines = text.wrap(_CONSOLE, room, overflow="fold") if text.cell_len > room else [text]
    out = Text()
    for i, line in enumerate(lines):
        if i:
            out.append("\n" + " " * lead.cell_len)
        else:
            out.append_text(lead)
        line.rstrip()
        out.append_text(line)
    return out


_CONSOLE = Console(width=200, color_system=None, file=io.StringIO())  # only measures: wraps Text


class SidePanel(ViewPanel):
    """Who is paged (the escalation ladder, who acknowledged), then every degradation and its
    flags; hidden at narrow widths, where the header says who is paged and what is degraded."""

    FIXED_SIZE = False

    def show(self, view: IncidentView) -> None:
        if not self.changed((view.ladder, view.acknowledged_by, view.by_pager, view.flags)):
            return
        self.put(Group(*ladder_parts(view), Text(""), *flag_parts(view)))


def ladder_parts(view: IncidentView) -> list:
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column()
    for row in view.ladder:
        mark = "✓" if row.notified else " "
        table.add_row(Text(f"{mark} L{row.level}", style="bold" if row.notified else "dim"),
                      Text(f"{row.who} · {format_duration(row.after)}"))
    ack = Text(f"acknowledged by {view.acknowledged_by}", style="green") if view.acknowledged_by else \
        Text("nobody has acknowledged", style="bold red")
    title = Text("Escalation", style="bold underline")
    if view.by_pager:  # runbook paged level 1; the pager's own policy pages the rest
        title = Text.assemble(title, (" by the pager after L1", "yellow"))
    return [title, table, ack]


def flag_parts(view: IncidentView) -> list[Text]:
    parts = [Text("Degradations", style="bold underline")]
    if not view.flags:
        parts.append(Text("none in this playbook", style="dim"))
    for flag in view.flags:
        state = "APPLYING…" if flag.pending else ("APPLIED" if flag.applied else "off")
        if flag.applied and flag.share is not None and flag.share < 100:
            state = f"{flag.share}% OF USERS"
        line = Text(f"{'●' if flag.applied else '○'} {flag.name} ", style="bold magenta" if flag.applied else "")
        line.append(state, style="bold magenta" if flag.applied else "dim")
        if flag.automatic:
            line.append(" (automatic)", style="magenta")
        parts.append(line)
        if flag.ladder:
            parts.append(Text(f"    {flag.ladder}", style="magenta"))
        for name, value in flag.flags:
            parts.append(Text(f"    {name} → {value}", style="dim"))
    return parts


class Timeline(ViewPanel):
    """The newest events that fit, each wrapped rather than cut (a flag name or a level number at
    the end of a line is what matters); the wall-clock time is dropped when narrow.

    How many fit depends on the panel's size, so the lines are picked when it is painted (after
    layout, at the size it has then), not when the view arrives: the first frame shows the
    right ones, and a resize repaints without a second draw."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._shown: tuple | None = None  # (view, narrow)
        self._picked: tuple | None = None  # (key, text)

    def show(self, view: IncidentView, narrow: bool) -> None:
        if self.changed((view.last_seq, narrow)):
            self._shown = (view, narrow)
            self.refresh()

    def render(self) -> Text:
        if self._shown is None:
            return Text()
        view, narrow = self._shown
        rows = max(3, self.content_size.height - 1) if self.content_size.height else 8
        width = self.content_size.width or 50
        key = (view.last_seq, rows, width, narrow)
        if self._picked is None or self._picked[0] != key:
            self._picked = (key, self._pick(view, narrow, rows, width))
        return self._picked[1]

    def _pick(self, view: IncidentView, narrow: bool, rows: int, width: int) -> Text:
        picked, used = [], 0
        for line in reversed(view.timeline):
            text = Text()
            if not narrow:
                text.append(f"{line.at:%H:%M:%S} ", style="dim")
            text.append(f"+{clock(line.rel)} ", style="dim")
            text.append(f"{line.actor}: ", style="cyan" if line.tone == "note" else "dim")
            text.append(line.text, style=TONES.get(line.tone, ""))
            height = 1 if text.cell_len <= width else len(text.wrap(self.app.console, max(1, width)))
            if picked and used + height > rows:
                break
            picked.append(text)
            used += height
        picked.reverse()
        hidden = view.events - len(picked)
        header = Text(f"Timeline ({view.events} events" + (f", last {len(picked)} shown" if hidden > 0 else "") + ")",
                      style="bold underline")
        return Text("\n").join([header, *picked])
