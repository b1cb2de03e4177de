"""A checkpoint is the folded state written down (engine/checkpoint.py): a checkpoint written
before the fold changed would be read as if it had been folded by the new code. So the state's
fields and every record's fold are pinned, per checkpoint format, in checkpoint_format.json:
changing them without a new checkpoint.FORMAT fails here.

After a change to the state or to a fold: raise checkpoint.FORMAT (old checkpoints are then
ignored and the state folded from the start), then pin the new format with
`python tests/test_checkpoint_format.py`. A new event type needs no new format (no checkpoint
written before it holds its events) unless it adds to the state; the same command adds its fold
to the current pin. It never changes what a format's pin says."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import inspect
import json
import sys
import textwrap
from pathlib import Path

from runbook.engine import checkpoint, state
from runbook.engine.events import RECORDS, base

PINS = Path(__file__).resolve().parent / "checkpoint_format.json"


def _code(function) -> str:
    """The function's code, without its docstring, comments or layout: only a change to what it
    does changes this."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.FunctionDef, ast.ClassDef)) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def shape() -> dict[str, str]:
    """A digest of each part a checkpoint's body depends on."""
    parts = {}
    for name, cls in sorted(vars(state).items()):  # the fields a body holds, with their types
        if dataclasses.is_dataclass(cls) and cls.__module__ == state.__name__:
            parts[f"state {name}"] = _digest(repr([(f.name, str(f.type)) for f in dataclasses.fields(cls)]))
    parts["state new_state"] = _digest(_code(state.new_state))
    parts["checkpoint skipped fields"] = _digest(repr(checkpoint.SKIPPED_FIELDS))
    # the fold's driver and the helpers the records' folds share (the functions that take the state)
    for name, function in sorted(vars(base).items()):
        if (inspect.isfunction(function) and function.__module__ == base.__name__
                and (name == "fold" or "state" in inspect.signature(function).parameters)):
            parts[f"fold helper {name}"] = _digest(_code(function))
    for type_name, record in sorted(RECORDS.items()):
        parts[f"fold {type_name}"] = _digest(_code(record.fold))
    return parts


def differences(pinned: dict, now: dict) -> tuple[list[str], list[str]]:
    """What changed or went since the pin (a new format), and what is new (a new event type)."""
    return (sorted(name for name in pinned if now.get(name) != pinned[name]),
            sorted(name for name in now if name not in pinned))


def test_the_folded_state_and_the_folds_are_those_of_the_checkpoint_format():
    pins = json.loads(PINS.read_text())
    pinned = pins.get(str(checkpoint.FORMAT))
    assert pinned is not None, (f"checkpoint format {checkpoint.FORMAT} is not pinned: "
                                "run python tests/test_checkpoint_format.py")
    changed, new = differences(pinned, shape())
    assert not changed, (f"changed since checkpoint format {checkpoint.FORMAT}: {', '.join(changed)}; "
                         "raise checkpoint.FORMAT, then run python tests/test_checkpoint_format.py")
    assert not new, f"not pinned yet: {', '.join(new)}; run python tests/test_checkpoint_format.py"


def test_a_changed_fold_changes_the_shape(monkeypatch):
    # the pin can fail: a fold that does something else is seen
    opened = RECORDS["opened"]
    before = shape()

    def fold(self, state, event):
        state.title = "something else"

    monkeypatch.setattr(opened, "fold", fold)
    after = shape()
    assert [name for name in before if before[name] != after[name]] == ["fold opened"]


def pin() -> str:
    pins = json.loads(PINS.read_text()) if PINS.exists() else {}
    key, now = str(checkpoint.FORMAT), shape()
    changed, new = differences(pins.get(key, {}), now)
    if key in pins and changed:
        return f"changed since checkpoint format {key}: {', '.join(changed)}; raise checkpoint.FORMAT first"
    if key in pins and not new:
        return f"checkpoint format {key} is pinned already"
    pins[key] = {**pins.get(key, {}), **{name: now[name] for name in new}}
    PINS.write_text(json.dumps(pins, indent=2, sort_keys=True) + "\n")
    return f"pinned {', '.join(new)} under checkpoint format {key} in {PINS}"


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    print(pin())
