"""A flip planned once: the flags a degradation's apply, stage move or restore writes, the value
each gets and for what share of users, and which flags another degradation keeps changed.

Every face states a plan's `lines` (the TUI's dialogs, an approval of a degrade step, the CLI's
output, the intent event in the log) and `Effects._flip` writes exactly the plan it states, so
what a responder reads before confirming is what happens: "rtc.video.max-bitrate-kbps → 1500
(restored)", "rtc.video.enabled → false for 10% of users (stage 1 of 3)", "kept: audio-only of
INC-… holds rtc.video.enabled at false for 10% of users".

A flag several degradations hold (two incidents, or two degradations of one playbook) holds what
they hold together (engine/holders.py): the latest one's value, for the widest share any of them
gives that value. So an apply never narrows another holder's share, and a restore puts back what
the others still hold, or the value from before the first of them once none is left.
"""

from __future__ import annotations

import json
import os
from typing import Any, NamedTuple

from runbook.engine.holders import (
    Holder,
    held,
    holders,
    normal_of,
    same_value,
    wider,
    wrong_file,
)
from runbook.engine.integrity import SNAPSHOT_ALTERED
from runbook.engine.state import IncidentState
from runbook.errors import CommandError
from runbook.pluginapi import FlagState
from runbook.text import one_line

APPLY, RESTORE = "apply", "restore"


class FlagWrite(NamedTuple):
    """One flag of a plan: what is written to it."""

    flag: str
    value: Any  # the value written (a restore to a flag that was not there: None, `exists` False)
    share: int | None = None  # the percentage of users given `value` (flagd fractional); None: every user
    by: str = "targetingKey"  # the context key a share is bucketed on
    normal: Any = None  # a share on a flag not in the file yet: the value the other users get
    exists: bool = True  # False: the flag is removed (it was not in the file before the degradation)
    enabled: bool = True  # a restore to a flag that was DISABLED
    old: dict | None = None  # apply: the flag before the degradation (FlagState dict), to go back to
    recorded_old: bool = False  # apply: `old` comes from the record (a stage move, another holder), not the write
    restore_to: dict | None = None  # restore: what the flag goes back to once no other degradation holds it
    kept_by: str = ""  # another degradation ("audio-only of INC-…"): a restore keeps what it holds, an
    #                    apply keeps the wider share it gives the same value


class FlipPlan(NamedTuple):
    incident: str
    degradation: str
    op: str  # apply or restore
    writes: tuple[FlagWrite, ...]
    stage: int | None = None  # apply of a staged degradation: the stage (0-based)
    share: int | None = None  # ...and its share in percent
    of: int | None = None  # how many stages it has
    sandbox: bool = False  # writes the drill's sandbox flag file
    damaged: str = ""  # a restore on a record that does not verify: what is wrong with it (it restores what verifies)

    @property
    def lines(self) -> tuple[str, ...]:
        """What the flip writes, one line a flag, as every face states it (one line each, safe to show);
        a restore on a damaged record says so last."""
        said = tuple(one_line(_line(self, write)) for write in self.writes)
        if self.damaged:
            said += (one_line(f"restored from what verifies: the record of {self.incident} does not verify "
                              f"({self.damaged})"),)
        return said

    @property
    def staged(self) -> str:
        """"stage 1 of 3 (10% of users)" for a stage being applied, else ""."""
        if self.stage is None:
            return ""
        return f"stage {self.stage + 1} of {self.of} ({_users(self.share if self.share < 100 else None)})"

    def intent(self) -> dict:
        """Each flag's entry in the intent event (degradation_started), what `reconcile` reads back."""
        out = {}
        for w in self.writes:
            if self.op == APPLY:
                out[w.flag] = {"old": w.old, "new": w.value, "share": w.share}
            else:
                out[w.flag] = {"old": None, "new": w.value if w.kept_by else None, "share": w.share,
                               "held_by": w.kept_by or None, "restore_to": w.restore_to}
        return out


def _value(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def _users(share: int | None) -> str:
    return "every user" if share is None else f"{share}% of users"


def _line(plan: FlipPlan, w: FlagWrite) -> str:
    if plan.op == RESTORE:
        if w.kept_by:
            return f"kept: {w.kept_by} holds {w.flag} at {_value(w.value)}" + (
                f" for {w.share}% of users" if w.share is not None else "")
        if not w.exists:
            return f"{w.flag} removed (restored: it was not in the flag file before)"
        return f"{w.flag} → {_value(w.value)}{'' if w.enabled else ', DISABLED'} (restored)"
    if plan.stage is None:
        return f"{w.flag} → {_value(w.value)}"
    own = plan.share if plan.share < 100 else None
    where = f"stage {plan.stage + 1} of {plan.of}"
    if w.kept_by:
        where += f" is {_users(own)}; {w.kept_by} holds {_users(w.share)}"
    return f"{w.flag} → {_value(w.value)} for {_users(w.share)} ({where})"


def plan_flip(engine, state: IncidentState, name: str, op: str, stage: int | None = None,
              restored_first: frozenset = frozenset()) -> FlipPlan:
    """The plan of applying (`stage`: moving a staged one to that stage) or restoring degradation
    `name` now, or a CommandError saying why it cannot be done. Reads each flag the apply changes
    first from the flag backend (its value then is what a restore goes back to). `restored_first`:
    degradations of this incident a resolve restores before this one, which then hold nothing."""
    # a restore puts flags back from what verifies (a damaged record says so), unless the values it
    # would write come from a playbook snapshot that was altered
    if op != RESTORE or SNAPSHOT_ALTERED in state.tampered:
        refuse_if_tampered(state)
    if not (op == RESTORE and state.resolved):  # leftovers on a resolved incident can still be restored
        engine.require_live(state)
    pb = state.playbook
    if name not in pb.degradations:
        from runbook.catalog.suggest import did_you_mean

        raise CommandError(f"playbook {pb.id} has no degradation '{name}'{did_you_mean(name, pb.degradations)}; "
                           f"degradations: {', '.join(pb.degradations) or 'none'}")
    deg, spec = state.degradations[name], pb.degradations[name]
    if deg.pending:
        raise CommandError(in_flight(deg))
    if op == APPLY and spec.rollout is not None and stage is None:
        if deg.applied:
            raise CommandError(f"degradation '{name}' is already applied, at stage {deg.stage + 1} of "
                               f"{len(spec.rollout.stages)} ({deg.share}%); steer it with `runbook incident "
                               f"stage {state.id} {name} advance|hold|rollback`")
        stage = 0
    if op == APPLY and deg.applied and (stage is None or deg.stage == stage):
        raise CommandError(f"degradation '{name}' is already applied")
    if op == RESTORE and not deg.touched:
        raise CommandError(f"degradation '{name}' is not applied")
    plugins = engine.plugins
    if plugins is None:
        raise CommandError("no flag backend: the engine was started without plugins")
    settings = getattr(plugins, "settings", None)
    here = settings.flag_file(state.sandboxed) if settings is not None else None
    if op == RESTORE:
        moved = wrong_file(state, name, here)
        if moved:
            raise CommandError(moved)
        writes = tuple(_restore(engine, state, name, spec, flag, applied, restored_first)
                       for flag, applied in deg.flags.items())
        return FlipPlan(state.id, name, op, writes, sandbox=state.sandboxed, damaged=state.tampered)
    rollout = spec.rollout
    share = rollout.stages[stage][0] if stage is not None else None
    writes = []
    for flag, value in spec.set.items():
        others = holders(engine, state, name, flag, here and os.path.abspath(here))
        writes.append(_apply(engine, state, deg, spec, flag, value, share, others))
    return FlipPlan(state.id, name, op, tuple(writes), stage, share,
                    len(rollout.stages) if stage is not None else None, state.sandboxed)


def _apply(engine, state, deg, spec, flag, value, share, others: list[Holder]) -> FlagWrite:
    rollout = spec.rollout
    by = rollout.by if rollout is not None else "targetingKey"
    written = share if share is not None and share < 100 else None
    kept_by = ""
    for holder in others:  # another holder giving the same value to more users keeps its users
        if same_value(holder.new, value) and wider(holder.share, written):
            written, by, kept_by = holder.share, holder.by, str(holder)
    if flag in deg.flags:  # a stage move, or left changed by an apply that failed half-way
        old, recorded = deg.flags[flag]["old"], True
    elif others:  # already changed by another: what to go back to is the value from before the first
        old, recorded = others[0].old, True
    else:
        old, recorded = engine.plugins.get_flag(flag, drill=state.sandboxed)[0].to_dict(), False
    # what the users outside a share get: the playbook's normal value, else the value before
    normal = spec.restore[flag] if spec.restore and flag in spec.restore else normal_of(old)
    return FlagWrite(flag, value, written, by, normal, old=old, recorded_old=recorded, kept_by=kept_by)


def _restore(engine, state, name, spec, flag, applied: dict, restored_first: frozenset = frozenset()) -> FlagWrite:
    restore_to = (FlagState(True, spec.restore[flag]).to_dict() if spec.restore and flag in spec.restore
                  else applied["old"])
    others = [h for h in holders(engine, state, name, flag, applied.get("location"))
              if not (h.incident == state.id and h.degradation in restored_first)]
    if others:  # another degradation still wants it changed: it keeps what they hold
        keep = held(others)
        return FlagWrite(flag, keep.value, keep.share, keep.by, keep.normal, restore_to=restore_to,
                         kept_by=str(keep.holder))
    target = FlagState.from_dict(restore_to) if restore_to else FlagState(False)
    return FlagWrite(flag, target.value, exists=target.exists, enabled=target.enabled, restore_to=restore_to)


def refuse_if_tampered(state: IncidentState) -> None:
    """Nothing outside runbook is changed on the word of a record that was altered."""
    if state.tampered:
        raise CommandError(f"refused: the record of {state.id} was altered ({state.tampered}); "
                           f"no flags are flipped and no actions run for it (see `runbook incident verify {state.id}`)")


def in_flight(deg) -> str:
    from runbook.engine import owner as owners

    verb = "applied" if deg.pending.get("op") == "apply" else "restored"
    since = f" since {deg.pending_at:%H:%M:%S}" if deg.pending_at else ""
    return (f"degradation '{deg.name}' is being {verb} by {deg.pending_by or 'someone'} "
            f"({owners.describe(deg.pending.get('owner'))}){since}; wait for it to finish, "
            "or run `runbook incident resume` if that process is gone")
