"""What an approval gate covers, and whether the approval given still covers it.

An approval records what the approver approved, rendered by the one renderer (engine/texts.py):
the step's title and approval prompt, and what the step does — the command line exactly as shown
(shell-quoted), a `uses:` action with its filled `with:` values, a Prometheus check's query, a
message to post, a degradation's flags — with a digest of it. `covered` is the one function that
says what a gate covers now; the engine calls it when a step is approved and again before the
gated step runs, posts, completes, flips or hands off. When the digest differs (a parameter was
set, a role changed hands, the severity moved), the approval was for something else: the step
counts as not approved, everywhere, and says what changed, until it is approved again.

Time does not make an approval stale: `{elapsed}` is covered as the field itself (‹elapsed›),
filled when the step runs or posts, so the clock moving on between approving and doing changes
nothing an approver decided. An approval recorded without content (older logs) covers the step as
approvals always did.

Pure: reads the state and the playbook, appends nothing.
"""

from __future__ import annotations

import hashlib
import json
from typing import NamedTuple

from runbook.catalog.models import Step
from runbook.engine import expectations, texts
from runbook.engine.state import IncidentState
from runbook.errors import RunbookError

# the fields of a gate's content, in the order they are shown and named when they change
FIELDS = ("command", "expect", "action", "params", "query", "composed", "message", "degradation", "flags", "stages",
          "options", "playbook", "carries", "handoff", "contact", "instructions", "prompt", "title")
# fields added after approvals recorded content: an approval recorded without one compares without it
LATER = ("expect", "composed")


class Change(NamedTuple):
    field: str
    was: object
    now: object


def covered(state: IncidentState, step: Step, composed: str | None = None) -> dict:
    """What approving `step` covers now, rendered (with {elapsed} as the field: see above);
    `composed`: the text a compose: true step is to post, as the approver is shown it."""
    at = texts.UNTIMED
    out: dict = {"title": texts.text(state, step.title, step, at)}
    if step.approval is not None and step.approval.prompt:
        out["prompt"] = texts.text(state, step.approval.prompt, step, at)
    if step.run is not None:
        out["command"] = texts.shown_command(state, step, at)
        if step.interactive:  # the approver sees that the responder drives it, attached to their terminal
            out["attached"] = True
        if step.background:  # ...or that it runs on, and until when
            out["background"] = step.background_until or "resolve"
    elif step.uses:
        out["action"] = step.uses
        try:
            out["params"] = texts.params(state, step, at)
        except RunbookError as exc:
            out["params"] = f"(cannot run yet: {exc})"
    elif step.prometheus is not None:
        out["query"] = texts.shown_check(state, step, at)
    if step.expect is not None:  # what passes: approving a command approves what its output must say
        out["expect"] = expectations.in_words(step)
    if composed is not None:
        out["composed"] = composed
    if step.template:
        out["message"] = texts.text(state, step.template, step, at)
    if step.degradation and step.degradation in state.playbook.degradations:
        spec = state.playbook.degradations[step.degradation]
        out["degradation"] = step.degradation
        if step.kind == "degrade":
            out["flags"] = dict(spec.set)
            if spec.rollout is not None:
                out["stages"] = [share for share, _ in spec.rollout.stages]
    if step.options:
        out["options"] = [option.label + (f" (applies {option.degradation})" if option.degradation else "")
                          for option in step.options]
    if step.hand_to is not None:  # who takes it over, as the responder will be shown it
        out["handoff"] = texts.text(state, step.hand_to.name, step, at) + (" (resolves the incident)"
                                                                          if step.resolves else "")
        out["contact"] = texts.text(state, step.hand_to.contact, step, at)
        out["instructions"] = texts.text(state, step.instructions, step, at)
    if step.playbook:
        out["playbook"] = step.playbook
        if step.kind == "handoff" and state.parameters:  # the values a handoff carries to the new incident
            out["carries"] = {name: str(value) for name, value in sorted(state.parameters.items())}
    return out


def digest(content: dict) -> str:
    """sha256 of the content as canonical JSON (sorted keys, no spaces, UTF-8)."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def changes(state: IncidentState, step: Step) -> list[Change]:
    """How what the step's latest approval covered differs from what it covers now, most telling
    field first; [] when it does not (or the approval recorded no content: an older log)."""
    run = state.steps[step.id]
    if step.approval is None or run.approved_by is None or run.approved_digest is None:
        return []
    seq, known = state.derived.get("gates", (None, {}))
    if seq != state.last_seq:  # rendered once per step and position in the log (screens ask every tick)
        known = {}
        state.derived["gates"] = (state.last_seq, known)
    if step.id not in known:
        was = run.approved_content or {}
        now = covered(state, step, was.get("composed"))  # the text approved is checked as it is posted
        for name in LATER:
            if name not in was:
                now.pop(name, None)
        found = []
        if digest(now) != run.approved_digest:
            found = [Change(name, was.get(name), now.get(name)) for name in FIELDS if was.get(name) != now.get(name)]
            found = found or [Change("content", run.approved_digest, digest(now))]  # content and digest disagree
        known[step.id] = found
    return known[step.id]


def approved(state: IncidentState, step: Step) -> bool:
    """The step's gate is open: approved in this attempt, for what it covers now."""
    return state.steps[step.id].approved and not changes(state, step)


def stale(state: IncidentState, step: Step) -> str:
    """Why the step's approval in this attempt no longer covers it, in one line ("" when it does):
    the most telling change old → new, and which other fields changed."""
    return _said(changes(state, step)) if state.steps[step.id].approved else ""


def refusal(state: IncidentState, step: Step) -> str:
    """The one line a command that needs the step's gate open says when it is not ("" when it is)."""
    if step.approval is None:
        return ""
    if not state.steps[step.id].approved:
        return f"step '{step.id}' needs approval by {step.approval.by} first ({_approve(state, step)})"
    return _again(state, step, stale(state, step))


def refusal_if_changed(state: IncidentState, step: Step) -> str:
    """The last check before the engine records an intent to run, post or flip: the step's latest
    approval, of whatever attempt (a retry runs an approved step again), still covers what it is
    about to do ("" when it does, or nothing was recorded)."""
    return _again(state, step, _said(changes(state, step)))


def approved_text(state: IncidentState, step: Step) -> str | None:
    """The text the step's latest approval approved for posting (a compose: true step), if any."""
    run = state.steps[step.id]
    if step.approval is None or run.approved_by is None:
        return None
    return (run.approved_content or {}).get("composed")


def refusal_if_other_text(state: IncidentState, step: Step, text: str) -> str:
    """A compose: true step posts the text its approval approved: any other is refused, old → new
    ("" when it is that text, or the approval bound no text: an older log)."""
    was = approved_text(state, step)
    if was is None or was == text:
        return ""
    return _again(state, step, _said([Change("composed", was, text)]))


def refusal_if_not_shown(step: Step, content: dict, shown: str | dict) -> str:
    """The line approving `step` says when `content`, what approving it now records, is not what
    the approver was `shown` ("" when it is): the content shown (then what changed, old → new) or
    its digest (then what it covers now). A composed text is not part of what was shown: the
    approver wrote it, and the approval binds it as given."""
    now = _besides_text(content)
    was = _besides_text(shown) if isinstance(shown, dict) else None
    if (digest(was) if was is not None else shown) == digest(now):
        return ""
    head = f"not approved: what step '{step.id}' covers changed since it was shown"
    if was is not None:
        found = [Change(name, was.get(name), now.get(name)) for name in FIELDS if was.get(name) != now.get(name)]
        return f"{head}: {_difference(found or [Change('content', digest(was), digest(now))])}; look again"
    said = "; ".join(labelled(name, value) for name, value in lines(now) if name not in ("title", "prompt"))
    return head + (f" (now {said})" if said else "") + "; look again"


def _besides_text(content: dict) -> dict:
    return {name: value for name, value in content.items() if name != "composed"}


def _difference(found: list[Change]) -> str:
    """The most telling change as `field "old" → "new"` (cut around the change), naming the others."""
    first, rest = found[0], [c.field for c in found[1:]]
    was, now = excerpt(shown_value(first.was).replace("\n", "⏎"), shown_value(first.now).replace("\n", "⏎"))
    return f"{first.field} \"{was}\" → \"{now}\"" + (f" (its {' and '.join(rest)} changed too)" if rest else "")


def _again(state: IncidentState, step: Step, why: str) -> str:
    return f"step '{step.id}': {why}: approve again ({_approve(state, step)})" if why else ""


def _approve(state: IncidentState, step: Step) -> str:
    """The command that approves `step`: a compose: true step's approval binds the text it posts."""
    return f"runbook incident approve {state.id} {step.id}" + (" --message TEXT" if step.compose else "")


def _said(found: list[Change]) -> str:
    if not found:
        return ""
    first, rest = found[0], [c.field for c in found[1:]]
    # one line: a message's line breaks as ⏎, so the old and new texts read as they differ
    was, now = excerpt(shown_value(first.was).replace("\n", "⏎"), shown_value(first.now).replace("\n", "⏎"))
    more = f" (its {' and '.join(rest)} changed too)" if rest else ""
    return f"approval was for {first.field} \"{was}\"; it now reads \"{now}\"{more}"


def shown_value(value) -> str:
    """A content field as one reads it: text as it is, flags as `flag → value`, a list joined."""
    if value is None:
        return "(none)"
    if isinstance(value, dict):
        return ", ".join(f"{key} → {shown_value(v)}" for key, v in value.items())
    if isinstance(value, list):
        return ", ".join(shown_value(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def lines(content: dict | None) -> list[tuple[str, str]]:
    """(field, value) of a gate's content to show: the title and prompt, then what the step does."""
    if not content:
        return []
    order = ("title", "prompt", *[name for name in FIELDS if name not in ("title", "prompt")])
    return [(name, shown_value(content[name])) for name in order if name in content]


def labelled(name: str, value: str) -> str:
    """One field of a gate's content as a line reads: `$ COMMAND` as everywhere a command is shown."""
    return f"$ {value}" if name == "command" and not value.startswith("(") else f"{name}: {value}"


EXCERPT = 60  # characters of a changed field shown whole; a longer one is cut around the change
CONTEXT = 20


def excerpt(was: str, now: str) -> tuple[str, str]:
    """Both texts whole when short, else each cut to the part that differs with some context on
    either side (…), so a changed word in a long message is what the line shows."""
    if len(was) <= EXCERPT and len(now) <= EXCERPT:
        return was, now
    start = 0
    while start < min(len(was), len(now)) and was[start] == now[start]:
        start += 1
    end = 0
    while end < min(len(was), len(now)) - start and was[-1 - end] == now[-1 - end]:
        end += 1
    begin = max(0, start - CONTEXT)

    def cut(text: str) -> str:
        stop = len(text) - max(0, end - CONTEXT)
        return ("…" if begin else "") + text[begin:stop] + ("…" if stop < len(text) else "")
    return cut(was), cut(now)
