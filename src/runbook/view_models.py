"""The records a screen shows of an incident (built by `runbook.views.build_view`).

They import nothing of the engine: the TUI's screens load them, and `runbook resume` draws its
first frame, before a worker loads the engine (IncidentScreen.settle).
"""

from datetime import datetime
from typing import NamedTuple

# The view records are NamedTuples, not dataclasses: immutable and compared by value all the
# same, and defining one costs a fifth as much, which the TUI pays before its first frame.


class StepRow(NamedTuple):
    id: str
    title: str
    kind: str
    status: str
    attempt: int
    current: bool
    settled: bool = False  # a restore step whose degradation is no longer applied (resolve restored it)


class TrackView(NamedTuple):
    id: str
    title: str
    role: str | None
    steps: tuple[StepRow, ...]
    current: str | None


class CurrentStep(NamedTuple):
    track: str
    id: str
    title: str
    kind: str
    instructions: str
    question: str
    options: tuple[str, ...]
    timebox_left: float | None
    approval_by: str | None
    approved_by: str | None
    automated: bool
    command: str
    degradation: str | None
    status: str
    role: str | None
    template: str | None
    last_poll: str
    approval_prompt: str = ""
    ran: bool = False  # whether its command ran; then exit_code and output are its last run's
    exit_code: int | None = None
    output: str = ""  # the tail of that run's stdout and stderr (OUTPUT_LINES lines), escaped
    output_of: str = ""  # the step that run was of: this one, or the step a decision's from: reads
    suggested: str = ""  # "Clean up (from check-disk: used=93)": the option its from: suggests
    suggested_index: int | None = None
    handoff: str | None = None  # a handoff step: the playbook the linked incident runs
    holder: str | None = None  # who holds the approving role; None when nobody does
    waiting_for: str | None = None  # the step (in another track) this one waits for, while not done
    option_degradations: tuple[str | None, ...] = ()  # the degradation each option applies, if any
    post_to: str = ""  # a communicate step: where its message goes (channel · audience)
    # its approval was for something else (a parameter changed since): what changed, old → new;
    # approved_by is None then, so the step counts as not approved
    approval_stale: str = ""
    approval_covers: tuple[str, ...] = ()  # what approving it records now ("$ COMMAND", "prompt: ..."), a line each
    approval_content: dict | None = None  # what approving it now records: the TUI's approve sends it back
    asks: str = ""  # an ask step: what it asks for ("asks for new_size (the size · pattern ...), now 10Gi")
    ask_parameter: object = None  # ...the parameter (catalog Parameter) its form checks the answer against
    ask_value: str | None = None  # ...and the parameter's value now, which the form offers
    compose: bool = False  # a communicate step whose message the responder writes when posting (the template: a draft)
    hand_to: str = ""  # a handoff to someone who is not a playbook: who, as shown ("Acme CDN support")
    hand_contact: str = ""  # ...how to reach them
    hand_resolves: bool = False  # ...and whether it resolves the incident (else it stays open)
    interactive: bool = False  # its command runs attached to the responder's terminal (the TUI suspends)
    background: str = ""  # its command runs on in the background until this ("step ID ends" or "resolve")
    approved_text: str | None = None  # a compose: true step: the text its approval approved for posting
    expects: str = ""  # expect: what its command's output must say ("output matches ^Up ; exit 1 is a finding")
    found: str = ""  # ...and what its last run was judged to say, as recorded when it failed
    waits_for: str = ""  # a wait on the incident's alert, or what "no data" means to a prometheus: wait


class BackgroundView(NamedTuple):
    """A background command the incident started and has not stopped, as its handle was recorded."""

    step: str
    title: str  # the step's title
    command: str
    pid: int
    host: str
    here: bool  # on this host: runbook can signal it
    seconds: float  # running for this long (as recorded: since its start)
    until: str | None  # the step whose end stops it (None: resolve)
    grace: float  # seconds between SIGTERM and SIGKILL when it is stopped
    pgid: int = 0  # the process group signalled, as recorded


class UpdateView(NamedTuple):
    """A communicate step posting on a cadence (repeat:), while its cadence runs."""

    step: str
    title: str
    line: str  # "next update at 10:30 (every 30m)", or "UPDATE DUE since 10:00 (repeat 1): why"
    due: bool  # due for a person (recorded post_due): the header says so
    next_at: datetime | None = None  # when the next post goes out by itself (None: due)
    compose: bool = False  # written when posted: the post key asks for the text
    draft: str = ""  # ...offering this: its last post as an editing field holds it (runbook.text.editable)
    gated: bool = False  # its approval gate approves each text written (compose) or no longer covers it: approve first
    stale: str = ""  # ...why, when it no longer covers it (old → new)
    approval_content: dict | None = None  # ...what approving it now records: P sends it back with the approval
    every: str = ""  # its cadence ("30m")
    due_at: datetime | None = None  # due for a person: since when, which repeat and why (as post_due recorded it)
    repeat: int = 0
    why: str = ""
    posted: int = 0  # how many posts of the step this view saw: P sends it back, so a post made meanwhile refuses


class LeftStep(NamedTuple):
    """A step a resolved incident did not do (engine/completion.py)."""

    title: str
    track: str  # the track's title
    status: str  # "not done" (started, never finished), failed or skipped
    reason: str = ""
    settled: bool = False  # a restore step whose flags resolve restored: only the step was not ticked off


class LadderRow(NamedTuple):
    level: int
    who: str
    after: int
    notified: bool


class FlagView(NamedTuple):
    name: str
    summary: str
    applied: bool
    pending: bool
    flags: tuple[tuple[str, str], ...]
    share: int | None = None  # a staged degradation: the share of users it is at
    ladder: str = ""  # "stage 1 of 3 (10%), next stage 50% in 4m10s, checks: call-drops holds (...)"
    automatic: bool = False  # applied by itself (a symptom's auto_degrade), not by a person
    stages: tuple[int, ...] = ()  # a staged degradation (rollout:): each stage's share; () when not staged
    stage: int = -1  # the stage applied (0-based; -1 none)
    held: bool = False  # a responder holds it at this stage: it does not advance by itself
    unwinding: bool = False  # restoring in stages
    compact: str = ""  # the ladder in a few words for a narrow screen: "10% → 50% in 4m10s, call-drops ok"
    words: str = ""  # where a staged one is, in words: "audio-only for about 10% of users, stage 1 of 3"
    held_why: str = ""  # why a staged one does not advance by itself: "check call-drops cannot be evaluated: …"

    @property
    def label(self) -> str:
        """"audio-only", "audio-only for about 10% of users, stage 1 of 3 (10% → 50% in 4m10s, call-drops
        ok) (automatic)"."""
        if self.words:
            text = self.words + (f" ({self.compact})" if self.compact else "")
        elif self.compact:
            text = f"{self.name} {self.compact}"
        else:
            text = self.name + (f" {self.share}%" if self.share is not None and self.share < 100 else "")
        return text + (" (automatic)" if self.automatic else "")


class Line(NamedTuple):
    seq: int
    at: datetime
    rel: float
    actor: str
    type: str
    text: str
    loud: str | None  # "warning" / "error": announced with a notification and the bell
    tone: str  # the style family of the line: "", note, warning, error, flag, reminder


class IncidentView(NamedTuple):
    id: str
    title: str
    playbook: str
    severity: str
    severities: tuple[str, ...]
    status: str
    drill: bool
    now: datetime
    opened_at: datetime
    acknowledged_by: str | None
    targets: tuple[tuple[str, float, bool, bool], ...]  # name, seconds left (negative: late), met, breached
    next_escalation: tuple[int, float] | None  # level, seconds until
    tracks: tuple[TrackView, ...]
    current: tuple[CurrentStep, ...]
    ladder: tuple[LadderRow, ...]
    flags: tuple[FlagView, ...]
    timeline: tuple[Line, ...]
    events: int
    last_seq: int
    degradations: tuple[str, ...] = ()
    altered: str = ""  # what is wrong with the incident's record, when it does not verify
    parameters: tuple[tuple[str, str, str], ...] = ()  # name, value, where it came from
    phase: str = "response"  # response, follow-up, closed, or resolved (no follow-up phase)
    roles: tuple[tuple[str, str, str | None], ...] = ()  # role id, title, holder (None: nobody)
    resolved_at: datetime | None = None  # once resolved, the screen's clocks stop here
    by_pager: bool = False  # levels after the first are the pager's own escalation (RUNBOOK_ESCALATION=pager)
    left: tuple[LeftStep, ...] = ()  # once resolved: the steps not done, failed or skipped
    verdict: str = ""  # once resolved: "Every step was done." only when it is, else what was not
    background: tuple[BackgroundView, ...] = ()  # background commands running (started, not stopped)
    updates: tuple[UpdateView, ...] = ()  # communicate steps posting on a cadence now
    members: tuple[tuple[str, tuple[str, ...]], ...] = ()  # each role held by several (many: true): its holders
    timers_by: str = ""  # who fires the timers when this face's runbook does not ("run by runbook process 7 on a")

    @property
    def resolved(self) -> bool:
        return self.resolved_at is not None

    @property
    def elapsed(self) -> float:
        """Seconds since the incident opened, up to its resolution (time stops once resolved)."""
        return ((self.resolved_at or self.now) - self.opened_at).total_seconds()
