"""What every simulated run shares, whether it goes through the engine (simulate.py) or through
a compiled plan (plan.py, plan_runs.py): the virtual start, the stand-in plugins, the responders'
defaults. Its own module so that the plan modules and the simulation do not import each other."""

from __future__ import annotations

from datetime import UTC, datetime

from runbook.catalog.drill import Latency
from runbook.metric_checks import HOLDS, Reading
from runbook.pluginapi import ActionResult, FlagChange, FlagState, NotifyResult
from runbook.settings import Settings

START = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
Z90 = 1.2815515655446004  # the standard normal's 90th percentile
DEFAULT_STEP = Latency("exponential", mean=120.0)
MAX_STEPS = 500


def take_role(engine, iid: str, state, step) -> None:
    """A simulated responder takes an enforced role before working its step (the playbook lets
    only a holder work it); nothing for other steps."""
    from runbook.engine.roles import holds

    role_id = step.role or next((t.role for t in state.playbook.tracks if t.id == step.track), None)
    role = state.playbook.roles.get(role_id) if role_id else None
    if role is not None and role.enforced and not holds(state, role_id, "simulation"):
        engine.assign(iid, "simulation", role_id, "simulation")


def answer(state, step) -> str | None:
    """What a simulated responder answers an ask step: the parameter's value then, else its
    default (None for other steps; an ask with neither is refused by the engine, in words)."""
    if step.kind != "ask":
        return None
    parameter = state.playbook.parameters.get(step.parameter)
    return state.parameters.get(step.parameter, parameter.default if parameter is not None else None)


class SimulatedPlugins:
    """Stands in for the plugin host: flags in a dict, pages and actions that always go through."""

    def __init__(self):
        self.settings = Settings(plugins_dir=None)
        self.flags: dict[str, object] = {}

    def get_flag(self, name, drill=False):
        return (FlagState(True, self.flags[name]) if name in self.flags else FlagState(False)), []

    def set_flag(self, name, value, drill=False):
        previous, _ = self.get_flag(name)
        self.flags[name] = value
        return FlagChange(name, previous, FlagState(True, value), "simulation"), []

    def restore_flag(self, name, previous, drill=False):
        replaced, _ = self.get_flag(name)
        if previous is None or not previous.exists:
            self.flags.pop(name, None)
        else:
            self.flags[name] = previous.value
        return FlagChange(name, replaced, self.get_flag(name)[0], "simulation"), []

    def notify(self, notice):
        return [NotifyResult("simulation", True)], []

    def run_action(self, request):
        return ActionResult(True, "simulated"), []

    def read_metrics(self, check, at=None, timeout=None):
        """A prometheus: check holds, as an action goes through: a simulation never queries a real server."""
        return Reading(HOLDS, None, "simulated")

    def observe(self, incident, event):
        pass

    def take_observer_failures(self):
        return []

    def drain(self, grace=None):
        return []
