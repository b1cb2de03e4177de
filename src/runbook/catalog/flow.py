"""How steps lead to one another inside a track; shared by the linter and the engine."""

from __future__ import annotations

from runbook.catalog.models import END, FAIL, KEEP_POLLING, Step, Track


def default_next(track: Track, step: Step) -> str:
    """Where a step goes when nothing chooses otherwise: its `next`, else the following step, else the end."""
    if step.next:
        return step.next
    if step.index + 1 < len(track.steps):
        return track.steps[step.index + 1].id
    return END


def successors(track: Track, step: Step) -> list[tuple[str, tuple, str]]:
    """Every (target, path of the field that names it, description) a step can lead to."""
    out = []
    if step.kind == "decision":
        for i, option in enumerate(step.options):
            if option.next:
                out.append((option.next, step.path + ("options", i, "next"), f"option '{option.label}'"))
    else:
        if step.kind == "choose":
            for i, option in enumerate(step.options):
                if option.next:
                    out.append((option.next, step.path + ("options", i, "next"), f"option '{option.label}'"))
        if step.kind != "choose" or any(not o.next for o in step.options) or not step.options:
            out.append((default_next(track, step), step.path + ("next",), "next"))
    if step.on_fail:
        out.append((step.on_fail, step.path + ("on_fail",), "on_fail"))
    if step.on_timeout:
        out.append((step.on_timeout, step.path + ("on_timeout",), "on_timeout"))
    if step.on_broken not in (KEEP_POLLING, FAIL):
        out.append((step.on_broken, step.path + ("on_broken",), "on_broken"))
    return out


def reachable(track: Track) -> set[str]:
    """Ids of steps reachable from the first step of the track."""
    by_id = {s.id: s for s in track.steps}
    seen: set[str] = set()
    todo = [track.steps[0].id] if track.steps else []
    while todo:
        current = todo.pop()
        if current in seen or current not in by_id:
            continue
        seen.add(current)
        todo.extend(t for t, _, _ in successors(track, by_id[current]))
    return seen


def can_finish(track: Track) -> set[str]:
    """Ids of steps from which some path reaches the end of the track."""
    by_id = {s.id: s for s in track.steps}
    edges = {s.id: [t for t, _, _ in successors(track, s)] for s in track.steps}
    done: set[str] = set()
    changed = True
    while changed:
        changed = False
        for step_id, targets in edges.items():
            if step_id not in done and any(t == END or t in done or t not in by_id for t in targets):
                done.add(step_id)
                changed = True
    return done
