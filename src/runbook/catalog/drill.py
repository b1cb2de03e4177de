"""The Drill kind: a rehearsal of a playbook, for people (injects, schedule) and for simulation
(responder profiles). Registered in kinds.py like every other kind.

The models are NamedTuples, like the other kinds' (catalog/models.py): defining a frozen dataclass
costs a fresh process about half a millisecond each, a NamedTuple a fraction of that, and a
one-run drill starts with these six. Their mapping defaults are shared and never mutated."""

from typing import NamedTuple

from runbook.catalog.durations import parse_duration
from runbook.catalog.models import StageCheck


class Latency(NamedTuple):
    """A duration distribution, in seconds."""

    distribution: str
    mean: float | None = None
    low: float | None = None
    high: float | None = None
    median: float | None = None
    p90: float | None = None

    def needs(self) -> tuple[str, ...]:
        return {"fixed": ("mean",), "exponential": ("mean",), "uniform": ("min", "max"),
                "lognormal": ("median", "p90")}[self.distribution]

    def missing(self) -> list[str]:
        """The parameters this distribution needs that were not given (document names)."""
        given = {"mean": self.mean, "min": self.low, "max": self.high, "median": self.median, "p90": self.p90}
        return [name for name in self.needs() if given[name] is None]


class LevelProfile(NamedTuple):
    answer: float
    ack: Latency


class Responders(NamedTuple):
    levels: tuple[LevelProfile, ...] = ()
    steps: dict = {}  # step id or "default" -> Latency
    choices: dict = {}  # decision step id -> 1-based option


class Inject(NamedTuple):
    at: int
    message: str
    signal: dict = {}


class Schedule(NamedTuple):
    cron: str
    timezone: str
    window: int | None = None


class Drill(NamedTuple):
    id: str
    title: str
    playbook: str
    symptom: str | None = None
    severity: str | None = None
    mode: str = "tabletop"
    description: str = ""
    schedule: Schedule | None = None
    injects: tuple[Inject, ...] = ()
    participants: tuple[str, ...] = ()
    targets: dict = {}
    responders: Responders = Responders()
    ends: tuple[str, ...] = ()  # conditions that end a human drill (END_CONDITIONS or step ids)
    automatic: bool = False  # the playbook's automatic degradations apply in this drill too
    guard: tuple = ()  # StageCheck-like (name, query, expect): a breach stops the drill
    guard_every: int = 30


# what a drill's `ends` may name besides a step of its playbook
END_CONDITIONS = ("acknowledged", "mitigated", "first-step")


def _seconds(value):
    return None if value is None else float(parse_duration(value))


def _latency(raw: dict) -> Latency:
    return Latency(raw["distribution"], _seconds(raw.get("mean")), _seconds(raw.get("min")),
                   _seconds(raw.get("max")), _seconds(raw.get("median")), _seconds(raw.get("p90")))


def build_drill(data: dict) -> Drill:
    raw = data.get("responders", {})
    schedule = data.get("schedule")
    return Drill(
        id=data["id"],
        title=data["title"],
        playbook=data["playbook"],
        symptom=data.get("symptom"),
        severity=data.get("severity"),
        mode=data.get("mode", "tabletop"),
        description=data.get("description", ""),
        schedule=Schedule(schedule["cron"], schedule["timezone"], parse_duration(schedule["window"])
                          if "window" in schedule else None) if schedule else None,
        injects=tuple(Inject(parse_duration(i["at"]), i["message"], dict(i.get("signal", {})))
                      for i in data.get("injects", ())),
        participants=tuple(data.get("participants", ())),
        ends=tuple(data.get("ends", ())),
        automatic=bool(data.get("automatic", False)),
        guard=tuple(StageCheck(c.get("name") or f"guard-{n}", c["prometheus"]["query"],
                               c["prometheus"]["expect"].strip())
                    for n, c in enumerate((data.get("guard") or {}).get("checks", ()), 1)),
        guard_every=parse_duration((data.get("guard") or {}).get("check_every", "30s")),
        targets={name: parse_duration(value) for name, value in data.get("targets", {}).items()},
        responders=Responders(
            levels=tuple(LevelProfile(lv["answer"], _latency(lv["ack"])) for lv in raw.get("levels", ())),
            steps={name: _latency(value) for name, value in raw.get("steps", {}).items()},
            choices=dict(raw.get("choices", {})),
        ),
    )
