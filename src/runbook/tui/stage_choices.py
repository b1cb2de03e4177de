"""What the incident screen's stage key offers for a staged degradation: hold or resume, advance
(unless at the last stage), roll back one stage, restore fully; each said with the shares it
means. Read from views only (no Textual here), so it is tested without a screen. What a choice
that flips flags writes is the engine's plan of it, asked for once it is picked (engine/flips.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from runbook.views import FlagView


class StageChoice(NamedTuple):
    label: str  # a line of the choice dialog
    action: str  # hold, resume, advance, rollback: Engine.stage's action
    full: bool  # rollback: restore fully rather than one stage down
    question: str  # asked before it is done ("Advance audio-only now to stage 2 (50% of users)?")
    detail: str  # what a choice that flips nothing does (what holding means)
    flips: bool = False  # it flips flags: the dialog states the engine's plan of the move


def staged_applied(flags: tuple[FlagView, ...]) -> list[FlagView]:
    """The staged degradations applied at a stage now: what the stage key steers."""
    return [flag for flag in flags if flag.stages and flag.applied and flag.stage >= 0]


def stage_choices(flag: FlagView) -> list[StageChoice]:
    name, number, shares = flag.name, flag.stage + 1, flag.stages
    now = f"stage {number} ({shares[flag.stage]}%)"
    last = flag.stage == len(shares) - 1
    choices = []
    if flag.held:
        choices.append(StageChoice(f"resume: let {now} advance by itself again", "resume", False,
                                   f"Let {name} advance by itself again from {now}?",
                                   "The next stage starts once the hold is over and the checks hold."))
    elif not last:  # at the last stage there is nothing to advance to: holding would change nothing
        choices.append(StageChoice(f"hold at {now}: no advancing by itself", "hold", False,
                                   f"Hold {name} at {now}?",
                                   "It does not advance by itself; its checks still run and still roll back."))
    if not last:
        share = shares[flag.stage + 1]
        choices.append(StageChoice(f"advance now to stage {number + 1} ({share}% of users)", "advance", False,
                                   f"Advance {name} now to stage {number + 1} ({share}% of users)?", "", True))
    if flag.stage > 0:  # from the first stage, one stage down is restoring fully (the next choice)
        share = shares[flag.stage - 1]
        choices.append(StageChoice(f"roll back to stage {number - 1} ({share}% of users)", "rollback", False,
                                   f"Roll {name} back to stage {number - 1} ({share}% of users)?", "", True))
    if flag.stage > 0 and not flag.unwinding:
        choices.append(StageChoice("restore in stages: one stage down after each hold", "unwind", False,
                                   f"Restore {name} in stages, from {now}?",
                                   "One stage down after each stage's hold, its checks still watching, until "
                                   "this incident no longer holds it."))
    choices.append(StageChoice("restore fully (the next dialog says what it writes)", "rollback", True,
                               f"Restore {name} fully?", "", True))
    return choices
