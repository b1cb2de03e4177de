"""The team's chat as a face of the log (chat plugins: the chat_announce, chat_update and
chat_receive hooks; Matrix is built in).

Out: each incident gets a thread. Its root names the incident and says where it stands, and is
edited as that changes (acknowledged, the next page's countdown, mitigated, resolved) rather
than posted again; what happened is posted in the thread, one message per event, rendered from
the record: opened, acknowledged, pages, severity changes, degradations with their share,
messages as posted, mitigated, resolved, follow-up. Each message carries a transaction id made
from the incident and the event, so a retry after a crash or an outage is the same message, and
a `chat_posted` event records how far the chat has come: after an outage every event missed is
posted, once. All text is plain (no HTML is sent) and defused: `@room` and user ids cannot
notify anyone.

In: `!ack ID`, `!note ID TEXT`, `!approve ID [STEP] CODE[: TEXT]`, `!degrade ID NAME`, `!resolve ID`,
`!status ID`, `!help`. The sender must be a roster person (a `matrix:` id on them, in the
incident's roster); the command is then recorded as that person, like the same command in the
TUI. A `chat_received` event keeps the chat's id of the message, so the same message delivered
twice does nothing the second time.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import datetime, timedelta

from runbook.catalog.oncall import person_with
from runbook.engine import approvals, cadence, timers
from runbook.engine.clock import iso
from runbook.engine.events import ChatPosted, ChatReceived
from runbook.errors import NotFoundError, RunbookError
from runbook.pluginapi import ChatCommand, ChatMessage
from runbook.text import one_line

SHOWN = frozenset({"acknowledged", "escalated", "severity_changed", "degradation_applied", "degradation_restored",
                   "flag_changed", "stage_steered", "message_posted", "mitigated", "resolved", "closed",
                   "handed_off", "pager_reported", "action_item_added", "post_due"})
COMMANDS = {
    "ack": "!ack ID: acknowledge (stops the escalation ladder)",
    "note": "!note ID TEXT: add a note to the timeline",
    "approve": ("!approve ID: what waits for approval and its code; !approve ID [STEP] CODE: approve exactly that; "
                "!approve ID [STEP] CODE: TEXT: approve the text a step posts as written (compose)"),
    "degrade": "!degrade ID NAME: apply a degradation",
    "resolve": "!resolve ID: resolve (restores degradations)",
    "status": "!status ID: where the incident stands",
    "help": "!help: this list",
}
MAX_TEXT = 4000
log = logging.getLogger("runbook.chat")
RECENT = 7 * 86400  # seconds: resolved incidents keep their thread up to date this long (an outage of the chat)


def defused(text: str) -> str:
    """Plain text no one is notified by: control and bidi characters escaped, `@` followed by a
    word joiner so neither `@room` nor a user id is a mention, at most MAX_TEXT characters."""
    from runbook.text import shown

    return shown(text).replace("@", "@\u2060")[:MAX_TEXT]


def _root_text(state, now: datetime) -> str:
    params = ", ".join(f"{k}={v}" for k, v in state.parameters.items())
    head = f"{state.severity} {state.id}: {state.title}" + (f" ({params})" if params else "")
    if state.resolved:
        where = f"resolved at {state.resolved_at:%H:%M} UTC"
    else:
        bits = [f"acknowledged by {state.acknowledged_by}" if state.acknowledged_at else "NOT acknowledged"]
        upcoming = timers.next_escalation(state)
        if upcoming is not None:
            minutes = max(0, round((upcoming.at - now).total_seconds() / 60))
            bits.append(f"next page (level {upcoming.data['level']}) in {minutes} min")
        if state.mitigated_at:
            bits.append("mitigated")
        where = ", ".join(bits)
    drill = "DRILL " if state.drill else ""
    return defused(f"{drill}{head} — {where}. Commands: !status {state.id}, !ack {state.id}, !help")


class Chat:
    """One per process: the roots' texts as last posted (edits only when they change)."""

    def __init__(self):
        self.roots: dict[str, str] = {}
        self.pace: dict[str, list[float]] = {}

    # out --------------------------------------------------------------------------------------

    def deliver(self, engine) -> int:
        """Post what the chat has not seen of every open incident (and those resolved in the last
        day); the number of messages posted. A chat that is down is tried again next time."""
        since = iso(engine.clock.now() - timedelta(seconds=RECENT))
        posted = 0
        for row in engine.list(open_only=True) + engine.list(resolved_since=since):
            try:
                posted += self._deliver_one(engine, row["id"])
            except ChatDown:
                break  # the chat cannot take messages now: the next pass tries again, in order
        return posted

    def _deliver_one(self, engine, incident: str) -> int:
        state = engine.state(incident)
        if state.drill and not state.live:
            return 0
        posted = 0
        if state.chat_root is None:
            text = _root_text(state, engine.clock.now())
            receipt = self._send(engine, ChatMessage(state.id, text, f"runbook-{state.id}-root"), announce=True)
            if receipt is None:
                return 0
            engine.command(state.id, "runbook", lambda s: [ChatPosted(receipt.channel, 1, receipt.remote, True)]
                           if s.chat_root is None else [])
            self.roots[state.id] = text
            state, posted = engine.state(incident), 1
        pending = []
        for event in reversed(state.events):
            if event.seq <= state.chat_upto:
                break
            if event.type in SHOWN:
                pending.append(event)
        for event in reversed(pending):
            text = defused(f"{state.id} {event.at:%H:%M} {event.actor}: {event.record.describe()}")
            receipt = self._send(engine, ChatMessage(state.id, text, f"runbook-{state.id}-{event.seq}",
                                                     thread=state.chat_root), announce=False)
            if receipt is None:
                return posted
            seq = event.seq
            engine.command(state.id, "runbook", lambda s, seq=seq, r=receipt: [ChatPosted(r.channel, seq, r.remote)]
                           if s.chat_upto < seq else [])
            posted += 1
        text = _root_text(engine.state(incident), engine.clock.now())
        if self.roots.get(state.id) != text:  # the countdown or the status moved: edit, do not repost
            # unique per change (a text that comes back is a new edit), the same for a retry of it
            seq = engine.state(incident).last_seq
            txn = f"runbook-{state.id}-edit-{seq}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
            if self._send(engine, ChatMessage(state.id, text, txn, replaces=state.chat_root), announce=False):
                self.roots[state.id] = text
        return posted

    @staticmethod
    def _send(engine, message: ChatMessage, announce: bool):
        receipt, failures = engine.plugins.chat_send(message, announce)
        if receipt is None and not failures:
            return None  # no chat configured
        if receipt is None or not receipt.posted:
            raise ChatDown(receipt.detail if receipt else "; ".join(f.format() for f in failures))
        return receipt

    # in ---------------------------------------------------------------------------------------

    def receive(self, engine) -> list[ChatCommand]:
        """Take the commands the chat received, and answer each; the commands taken. One that fails
        is answered with why, and the others are still taken."""
        commands, _ = engine.plugins.chat_receive()
        for command in commands:
            try:
                reply, incident = self.handle(engine, command)
            except Exception as exc:  # a store error, a bug: say so, take the next
                log.exception("chat command failed")
                reply, incident = f"could not do it: {one_line(str(exc))[:200]}; try again", None
            if reply:
                message = ChatMessage(incident or "", defused(reply), f"runbook-reply-{command.remote}",
                                      thread=command.thread, reply_to=command.remote)
                try:
                    self._send(engine, message, announce=False)
                except ChatDown:
                    pass  # the command was taken; only its answer is lost
        return commands

    def handle(self, engine, command: ChatCommand) -> tuple[str, str | None]:
        """Do what one chat message asks: (the reply, the incident it was about)."""
        words = command.text.strip().split(maxsplit=2)
        if not words or not words[0].startswith("!"):
            return "", None
        if self._too_fast(command.sender):  # before any reply: a flood gets none
            return "", None
        name = words[0][1:].lower()
        if name not in COMMANDS:
            return f"unknown command {one_line(words[0])[:40]}; " + _help(), None
        if name == "help":
            return _help(), None
        if len(words) < 2:
            return f"usage: {COMMANDS[name]}", None
        try:
            incident = engine.resolve_id(words[1])
            state = engine.state(incident)
        except NotFoundError:
            return f"no incident {one_line(words[1])[:40]}", None
        except RunbookError as exc:
            return f"refused: {one_line(str(exc))}", None
        person = person_with(state.snapshot.rosters, "matrix", command.sender)
        if person is None:
            return (f"refused: {command.sender} is not in the roster of {incident} (a person needs "
                    f'matrix: "{command.sender}")'), incident
        if name == "status":
            return _status(state, engine.clock.now()), incident
        if command.remote in state.chat_received:
            return "", None  # delivered again: done the first time
        received = ChatReceived(command.channel, command.remote, command.sender, command.text[:500])

        def receipt(s):  # appended with the command's first events, in the same transaction
            if command.remote in s.chat_received:
                raise AlreadyTaken(command.remote)
            return [received]
        engine.receipt = receipt
        try:
            return _run(engine, incident, person.id, name, words[2] if len(words) > 2 else ""), incident
        except AlreadyTaken:
            return "", None
        except RunbookError as exc:
            return f"refused: {one_line(str(exc))}", incident
        finally:
            engine.receipt = None

    def _too_fast(self, sender: str, limit: int = 10, window: float = 60.0) -> bool:
        """A sender over `limit` commands a minute is ignored (no reply either): a flood cannot
        crowd the chat's lane or the room."""
        now = time.monotonic()
        if len(self.pace) > 10_000:  # forget senders quiet for a window
            self.pace = {who: times for who, times in self.pace.items() if times and now - times[-1] < window}
        recent = [t for t in self.pace.get(sender, []) if now - t < window]
        self.pace[sender] = [*recent, now]
        return len(recent) >= limit


class ChatDown(RunbookError):
    pass


class AlreadyTaken(RunbookError):
    """The chat message was taken before (a redelivery): nothing to do."""


def _help() -> str:
    return "runbook commands: " + "; ".join(COMMANDS.values())


def _status(state, now: datetime) -> str:
    lines = [_root_text(state, now)]
    for track, step in sorted(state.current.items()):
        if step is not None:
            lines.append(f"{track}: {_title(state, step)}")
    for step in _gates(state):
        lines.append(f"waiting for approval by {step.approval.by}: {_title(state, step.id)} (!approve {state.id})")
    for step, n, why, at in cadence.due(state):
        lines.append(f"update due since {at:%H:%M} UTC: {_title(state, step)} (repeat {n}): {why}")
    applied = [name for name, d in state.degradations.items() if d.applied]
    if applied:
        lines.append("degraded: " + ", ".join(applied))
    return "\n".join(lines)


CODE = 8  # hex digits of a gate's digest that a chat approval quotes


def _gates(state) -> list:
    """The current steps whose approval gate is not open."""
    out = []
    for step_id in state.current.values():
        if step_id is None:
            continue
        step = state.playbook.step(step_id)
        if step.approval and not approvals.approved(state, step):
            out.append(step)
    return out


def _approve(engine, incident: str, actor: str, rest: str) -> str:
    """`!approve ID` shows what each waiting gate covers and the code that approves exactly that;
    `!approve ID [STEP] CODE` approves it, refused when the gate now covers something else (the
    code is the start of the content's digest, as the TUI's dialog sends the whole). A step that
    posts what is written (compose: true) is approved for a text: `!approve ID [STEP] CODE: TEXT`,
    the code binding what was shown besides the text, as the TUI's does."""
    head, colon, text = rest.partition(":")
    words, text = head.split(), text.strip()
    state = engine.state(incident)
    gates = _gates(state)
    if not words:
        if not gates:
            return f"{incident}: no step is waiting for an approval"
        out = []
        for step in gates:
            content = approvals.covered(state, step)
            code = approvals.digest(content)[:CODE]
            shown = "\n".join(approvals.labelled(f, v) for f, v in approvals.lines(content))
            how = (f"to approve a text for it (it posts what is written): !approve {incident} {step.id} {code}: TEXT"
                   if step.compose else f"to approve exactly this: !approve {incident} {step.id} {code}")
            out.append(f"{incident} step {step.id} needs approval by {step.approval.by}; it covers:\n{shown}\n{how}")
        return "\n\n".join(out)
    code = words[-1].lower()
    named = words[0] if len(words) > 1 else None
    chosen = [g for g in gates if named is None or g.id == named]
    if named is None and len(chosen) > 1:
        return f"{incident}: several steps wait for approval; name one: !approve {incident} STEP CODE"
    if not chosen:
        return f"{incident}: no step {'named ' + named + ' ' if named else ''}is waiting for an approval"
    step = chosen[0]
    digest = approvals.digest(approvals.covered(state, step))
    if len(code) < CODE or not digest.startswith(code):
        return (f"refused: what step {step.id} covers is not what code {one_line(code)[:16]} was shown for; "
                f"look again: !approve {incident}")
    if step.compose and not text:
        return (f"refused: step {step.id} posts what is written: approve the text it is to post: "
                f"!approve {incident} {step.id} {code}: TEXT")
    if colon and not step.compose:
        return f"refused: step {step.id} posts its template; only a step with compose: true is approved for a text"
    events = engine.approve(incident, actor, step.id, expect=digest, message=text if step.compose else None)
    granted = [e for e in events if e.type == "approval_granted"]
    shown = [approvals.labelled(f, v) for f, v in approvals.lines(granted[-1].record.content)] if granted else []
    return f"{incident}: step {step.id} approved by {actor}:\n" + "\n".join(shown)


def _title(state, step: str) -> str:
    try:
        return state.playbook.step(step).title or step
    except (KeyError, LookupError):
        return step


def _run(engine, incident: str, actor: str, name: str, rest: str) -> str:
    if name == "ack":
        engine.acknowledge(incident, actor)
        return f"{incident} acknowledged by {actor}"
    if name == "note":
        engine.note(incident, actor, rest)
        return f"note added to {incident}"
    if name == "approve":
        return _approve(engine, incident, actor, rest)
    if name == "degrade":
        events = engine.degrade(incident, actor, rest.strip())
        flips = [e.record.describe() for e in events if e.type == "flag_changed"]
        return f"{incident}: {rest.strip()} applied by {actor}" + ("\n" + "\n".join(flips) if flips else "")
    if name == "resolve":
        events = engine.resolve(incident, actor)
        flips = [e.record.describe() for e in events if e.type == "flag_changed"]
        return f"{incident} resolved by {actor}" + ("\n" + "\n".join(flips) if flips else "")
    raise AssertionError(name)
