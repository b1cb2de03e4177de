from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = """\
[b]Incident keys[/b]
  a  acknowledge (stops escalation)      d  step done / apply the step's degradation
  s  skip the step (asks why)            f  step failed (goes to its on_fail step)
  c  choose an option of a decision      u  run the step's automation
  p  approve the step's gate             tab  next track (side-by-side roles)
  g  apply a degradation                 r  restore a degradation
  v  change severity                     n  add a note
  e  escalate to the next level now      m  mark mitigated
  x  resolve (restores degradations)     escape  back to the home screen
  ctrl+p  command palette                ?  this help

Anything that changes something outside runbook (flags, commands, pages) asks first: y / n.
Everything is saved the moment you see it; closing the terminal loses nothing:
reopen with [b]runbook resume[/b].

[b]Home keys[/b]
  enter  open the selected playbook / resume the selected incident
  /  filter playbooks by what you see    tab  switch between lists    q  quit
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss(None)", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            yield Static(HELP)
