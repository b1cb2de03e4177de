"""The public status page of `runbook serve --public`: no token, nothing internal.

    GET /status                               components, open incidents with their updates in
                                              phases, 90 days of history per component (HTML)
    GET /api/v2/summary.json                  Statuspage-shaped JSON: page, status, components,
    GET /api/v2/status.json                   incidents, scheduled maintenances (shapes as in
    GET /api/v2/components.json               Statuspage's public API v2, which other tools read)
    GET /api/v2/incidents.json
    GET /api/v2/incidents/unresolved.json
    GET /api/v2/scheduled-maintenances.json
    GET /history.atom, /history.rss           one entry per public update

Everything comes from serve/public_state.py, which reads only what was posted for customers and
the component mapping. The projection is computed once per change of the log (and of the day),
however many readers ask: 200 readers cost one projection, then 200 renders of it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from email.utils import format_datetime
from xml.etree import ElementTree as ET

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from runbook.engine.clock import iso
from runbook.serve.public_state import DESCRIPTION, WORDS, PublicIncident, PublicStatus, project, public_id
from runbook.serve.web import CSP, HERE, Static

log = logging.getLogger("runbook.serve")

# cacheable for a short while (a burst of readers after a tweet), readable from any origin (other
# status tools and dashboards fetch the JSON from browsers)
PUBLIC_CSP = CSP.replace("form-action 'none'", "form-action 'self'")  # the subscribe form posts here
PUBLIC_HEADERS = {"Content-Security-Policy": PUBLIC_CSP, "X-Content-Type-Options": "nosniff",
                  "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY", "Cache-Control": "public, max-age=10"}
JSON_HEADERS = {**PUBLIC_HEADERS, "Access-Control-Allow-Origin": "*"}

_templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                         trim_blocks=True, lstrip_blocks=True)
_templates.filters["utc"] = lambda at: f"{at:%Y-%m-%d %H:%M} UTC" if at else ""
_templates.globals["words"] = WORDS


def message_page(title: str, text: str, status: int = 200) -> Response:
    """A short public page saying one thing (subscribed, unsubscribed, why not)."""
    return Response(_templates.get_template("public_message.html").render(title=title, text=text),
                    status_code=status, media_type="text/html; charset=utf-8", headers=PUBLIC_HEADERS)


def stamp(at: datetime | None) -> str | None:
    """Statuspage's time format: ISO 8601 with milliseconds and a Z."""
    return None if at is None else at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def version(engine) -> tuple:
    """What the projection depends on besides the log's end: the minute (a window starts, the day
    turns) and the maintenance windows to come (added or cancelled without an event)."""
    now = engine.clock.now()
    windows = engine.store.maintenance(ending_after=iso(now))
    return (engine.change_cursor(), now.replace(second=0, microsecond=0),
            tuple((w["id"], w["cancelled_at"]) for w in windows))


class Projection:
    """The latest projection and what was rendered from it, kept until the log, the minute or the
    maintenance windows change. A crowd shares one look at the version (the reads lane is one
    thread: 200 readers must not queue 200 looks behind each other) and one rendering per route."""

    def __init__(self, service, page):
        self.service, self.page = service, page
        self.key, self.value = None, None
        self.rendered: dict = {}
        self.looking: asyncio.Future | None = None
        self.lock = asyncio.Lock()

    async def version(self) -> tuple:
        if self.looking is None:
            self.looking = asyncio.ensure_future(self.service.reads.run(version))
            self.looking.add_done_callback(lambda _: setattr(self, "looking", None))
        return await asyncio.shield(self.looking)

    async def get(self) -> PublicStatus:
        key = await self.version()
        if self.key == key and self.value is not None:
            return self.value
        async with self.lock:  # one projection for a crowd arriving at once
            if self.key != key or self.value is None:
                self.value = await self.service.reads.run(project, self.page)
                self.key, self.rendered = key, {}
            return self.value

    async def render(self, name: str, make) -> bytes:
        """`make(status)` (the bytes of one route), made once per projection."""
        status = await self.get()
        body = self.rendered.get(name)
        if body is None or body[0] is not status:
            body = (status, make(status))
            self.rendered[name] = body
        return body[1]


def page_json(status: PublicStatus) -> dict:
    page = status.page
    return {"id": public_id(page.id), "name": page.title, "url": page.url, "time_zone": page.time_zone,
            "updated_at": stamp(status.updated_at)}


def components_json(status: PublicStatus) -> list[dict]:
    page_id = public_id(status.page.id)
    groups: dict[str, list[str]] = {}
    for c in status.components:
        if c.component.group:
            groups.setdefault(c.component.group, []).append(public_id(f"component {c.component.id}"))
    created = stamp(datetime.fromisoformat(status.components[0].days[0][0]).replace(tzinfo=status.now.tzinfo))
    out, position = [], 0
    for name, members in groups.items():
        position += 1
        worst_member = [c.status for c in status.components if c.component.group == name]
        out.append({"id": public_id(f"group {name}"), "name": name, "status": max(worst_member, key=list(WORDS).index),
                    "created_at": created, "updated_at": stamp(status.updated_at), "position": position,
                    "description": None, "showcase": False, "start_date": None, "group_id": None,
                    "page_id": page_id, "group": True, "only_show_if_degraded": False, "components": members})
    for c in status.components:
        position += 1
        out.append({"id": public_id(f"component {c.component.id}"), "name": c.component.name, "status": c.status,
                    "created_at": created, "updated_at": stamp(c.updated_at or status.updated_at),
                    "position": position, "description": c.component.description or None, "showcase": True,
                    "start_date": None,
                    "group_id": public_id(f"group {c.component.group}") if c.component.group else None,
                    "page_id": page_id, "group": False, "only_show_if_degraded": False})
    return out


def incident_json(status: PublicStatus, incident: PublicIncident) -> dict:
    page_id = public_id(status.page.id)
    names = {c.component.id: c for c in status.components}
    return {
        "id": incident.id, "name": incident.name, "status": incident.status,
        "created_at": stamp(incident.created_at), "updated_at": stamp(incident.updated_at),
        "monitoring_at": stamp(incident.monitoring_at), "resolved_at": stamp(incident.resolved_at),
        "impact": incident.impact, "shortlink": f"{status.page.url}#incident-{incident.id}" if status.page.url else "",
        "started_at": stamp(incident.created_at), "page_id": page_id,
        "incident_updates": [{
            "id": u.id, "status": u.status, "body": u.body, "incident_id": incident.id,
            "created_at": stamp(u.at), "updated_at": stamp(u.at), "display_at": stamp(u.at),
            "affected_components": [{"code": public_id(f"component {a.component}"), "name": a.name,
                                     "old_status": a.old, "new_status": a.new} for a in u.affected],
            "deliver_notifications": True, "custom_tweet": None, "tweet_id": None}
            for u in incident.updates],
        "components": [c for c in components_json(status) if not c["group"]
                       and c["name"] in {names[i].component.name for i in incident.components}],
    }


def maintenance_json(status: PublicStatus, window) -> dict:
    """A window in Statuspage's scheduled maintenance shape: an incident with impact maintenance,
    scheduled_for and scheduled_until, and one update saying it is scheduled or in progress."""
    page_id = public_id(status.page.id)
    ids = {public_id(f"component {c}") for c in window.components}
    return {
        "id": window.id, "name": window.name, "status": window.status,
        "created_at": stamp(window.created_at), "updated_at": stamp(window.created_at),
        "monitoring_at": None, "resolved_at": None, "impact": "maintenance",
        "shortlink": f"{status.page.url}#maintenance-{window.id}" if status.page.url else "",
        "started_at": stamp(window.starts_at), "page_id": page_id,
        "incident_updates": [{
            "id": public_id(f"{window.id} {window.status}"), "status": window.status, "body": window.body,
            "incident_id": window.id, "created_at": stamp(window.created_at), "updated_at": stamp(window.created_at),
            "display_at": stamp(window.created_at), "affected_components": [
                {"code": public_id(f"component {c}"), "name": next(x.component.name for x in status.components
                                                                  if x.component.id == c),
                 "old_status": "operational", "new_status": "under_maintenance"} for c in window.components],
            "deliver_notifications": True, "custom_tweet": None, "tweet_id": None}],
        "components": [c for c in components_json(status) if c["id"] in ids],
        "scheduled_for": stamp(window.starts_at), "scheduled_until": stamp(window.ends_at),
    }


def status_json(status: PublicStatus) -> dict:
    return {"indicator": status.indicator, "description": DESCRIPTION[status.indicator]}


def feed(status: PublicStatus, kind: str) -> bytes:
    """Atom or RSS 2.0, one entry per public update, newest first."""
    entries = sorted(((incident, update) for incident in status.incidents for update in incident.updates),
                     key=lambda pair: pair[1].at, reverse=True)
    link = status.page.url or "/status"
    if kind == "atom":
        root = ET.Element("feed", xmlns="http://www.w3.org/2005/Atom")
        ET.SubElement(root, "id").text = f"tag:runbook,2026:{public_id(status.page.id)}"
        ET.SubElement(root, "title").text = f"{status.page.title}: history"
        ET.SubElement(root, "updated").text = stamp(status.updated_at)
        ET.SubElement(root, "link", href=link)
        for incident, update in entries:
            entry = ET.SubElement(root, "entry")
            ET.SubElement(entry, "id").text = f"tag:runbook,2026:{incident.id}:{update.id}"
            ET.SubElement(entry, "title").text = f"{incident.name}: {update.status.capitalize()}"
            ET.SubElement(entry, "updated").text = stamp(update.at)
            ET.SubElement(entry, "published").text = stamp(update.at)
            ET.SubElement(entry, "link", href=f"{link}#incident-{incident.id}")
            ET.SubElement(entry, "content", type="text").text = update.body
        ET.SubElement(ET.SubElement(root, "author"), "name").text = status.page.title
    else:
        root = ET.Element("rss", version="2.0")
        channel = ET.SubElement(root, "channel")
        ET.SubElement(channel, "title").text = f"{status.page.title}: history"
        ET.SubElement(channel, "link").text = link
        ET.SubElement(channel, "description").text = f"Updates posted on {status.page.title}"
        ET.SubElement(channel, "lastBuildDate").text = format_datetime(status.updated_at)
        for incident, update in entries:
            item = ET.SubElement(channel, "item")
            ET.SubElement(item, "title").text = f"{incident.name}: {update.status.capitalize()}"
            ET.SubElement(item, "link").text = f"{link}#incident-{incident.id}"
            ET.SubElement(item, "guid", isPermaLink="false").text = f"{incident.id}:{update.id}"
            ET.SubElement(item, "pubDate").text = format_datetime(update.at)
            ET.SubElement(item, "description").text = update.body
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def routes(service, status_page, email: bool = False) -> list:
    """The public routes for `status_page` (a StatusPage model), read on the service's reads lane;
    `email`: the page offers email subscriptions (serve/subscriptions.py has their routes)."""
    projection = Projection(service, status_page)

    def serving(name: str, make, media_type: str, headers: dict):
        async def answer(request: Request):
            return Response(await projection.render(name, make), media_type=media_type, headers=headers)
        return answer

    def as_json(name: str, make) -> Route:
        def encode(s: PublicStatus) -> bytes:
            return json.dumps(make(s), ensure_ascii=False).encode()
        return Route(f"/api/v2/{name}", serving(name, encode, "application/json", JSON_HEADERS), methods=["GET"])

    def html(s: PublicStatus) -> bytes:
        resolved = [i for i in s.incidents if i.resolved_at is not None]
        names = {c.component.id: c.component.name for c in s.components}
        return _templates.get_template("public.html").render(s=s, description=DESCRIPTION[s.indicator],
                                                             resolved=resolved, names=names,
                                                             email=email).encode()

    return [Route("/status", serving("status", html, "text/html; charset=utf-8", PUBLIC_HEADERS), methods=["GET"]),
            as_json("summary.json", lambda s: {
                "page": page_json(s), "status": status_json(s), "components": components_json(s),
                "incidents": [incident_json(s, i) for i in s.unresolved],
                "scheduled_maintenances": [maintenance_json(s, w) for w in s.maintenances]}),
            as_json("status.json", lambda s: {"page": page_json(s), "status": status_json(s)}),
            as_json("components.json", lambda s: {"page": page_json(s), "components": components_json(s)}),
            as_json("incidents.json", lambda s: {"page": page_json(s),
                                                 "incidents": [incident_json(s, i) for i in s.incidents]}),
            as_json("incidents/unresolved.json", lambda s: {
                "page": page_json(s), "incidents": [incident_json(s, i) for i in s.unresolved]}),
            as_json("scheduled-maintenances.json", lambda s: {
                "page": page_json(s), "scheduled_maintenances": [maintenance_json(s, w) for w in s.maintenances]}),
            Route("/history.atom", serving("atom", lambda s: feed(s, "atom"), "application/atom+xml; charset=utf-8",
                                           PUBLIC_HEADERS), methods=["GET"]),
            Route("/history.rss", serving("rss", lambda s: feed(s, "rss"), "application/rss+xml; charset=utf-8",
                                          PUBLIC_HEADERS), methods=["GET"]),
            Mount("/static", app=Static(directory=HERE / "static"), name="public-static")]
