"""The StatusPage kind: the components the public sees, mapped to the playbooks' services, symptoms
and degradations. Pure data; serve/public_state.py projects incident logs through it.

A component's state is the worst of what the open incidents that affect it say: `open` while one
is open, and for each applied degradation the entry of `degradations` whose share it has reached
(a degradation applied without stages counts as 100%)."""

from __future__ import annotations

from typing import NamedTuple

# worst last: a component shows the worst state any open incident gives it
STATES = ("operational", "degraded_performance", "partial_outage", "major_outage")
DEFAULT_CHANNEL = "Status page"


def worst(*states: str) -> str:
    """The worst of component states; under_maintenance (set by a window, never by a mapping)
    counts as operational here."""
    return max(states, key=lambda s: STATES.index(s) if s in STATES else 0, default=STATES[0])


class ShareState(NamedTuple):
    share: int  # from this share of users (percent) on
    state: str
    says: str = ""


class Component(NamedTuple):
    id: str
    name: str
    description: str = ""
    group: str = ""
    services: tuple[str, ...] = ()
    symptoms: tuple[str, ...] = ()
    open: str = "degraded_performance"
    degradations: dict = {}  # degradation name -> ShareStates, lowest share first; read-only

    def affected_by(self, service: str, symptom: str | None) -> bool:
        return service in self.services or (symptom is not None and symptom in self.symptoms)

    def degradation_state(self, name: str, share: int | None) -> ShareState | None:
        """The entry for degradation `name` at `share` percent (None: applied whole), if any."""
        reached = 100 if share is None else share
        found = None
        for entry in self.degradations.get(name, ()):
            if reached >= entry.share:
                found = entry
        return found


class StatusPage(NamedTuple):
    id: str
    title: str
    components: tuple[Component, ...]
    url: str = ""
    time_zone: str = "Etc/UTC"
    channel: str = DEFAULT_CHANNEL
    history_days: int = 90

    def is_public(self, posted) -> bool:
        """Whether a posted message (a MessagePosted record) is a public update: for customers, on
        this page's channel."""
        return posted.audience == "customers" and posted.channel.strip().lower() == self.channel.strip().lower()


def build_status_page(data: dict) -> StatusPage:
    return StatusPage(
        id=data["id"],
        title=data["title"],
        components=tuple(Component(
            c["id"], c["name"], c.get("description", ""), c.get("group", ""), tuple(c.get("services", ())),
            tuple(c.get("symptoms", ())), c.get("open", "degraded_performance"),
            {name: tuple(sorted((ShareState(e["from"], e["state"], e.get("says", "")) for e in entries),
                                key=lambda e: e.share))
             for name, entries in c.get("degradations", {}).items()})
            for c in data["components"]),
        url=data.get("url", ""),
        time_zone=data.get("time_zone", "Etc/UTC"),
        channel=data.get("channel", DEFAULT_CHANNEL),
        history_days=data.get("history_days", 90),
    )
