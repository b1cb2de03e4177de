"""The form that asks for a playbook's parameters before an incident opens on it, or for the one
parameter an ask step asks for."""

from __future__ import annotations

import re

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Label, Static

from runbook.catalog.parameters import problem
from runbook.text import one_line
from runbook.tui.dialogs.base import Dialog


class ParameterForm(Dialog[dict | None]):
    """One input per parameter, pre-filled with what is known (--param, labels, defaults); Enter
    checks every value against its type and pattern and, when all fit, returns the values the
    responder typed or changed. Escape cancels: nothing is opened."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, detail: str, parameters: dict, known: dict, offered: set[str] = frozenset(),
                 submit: str = "open"):
        super().__init__()
        self.title_text, self.detail, self.submit = title, detail, submit
        self.parameters, self.known = parameters, dict(known)
        self.offered = offered  # names whose value came from the symptom typed on home

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            if self.detail:
                yield Static(self.detail, classes="dialog-detail", markup=False)
            for name, parameter in self.parameters.items():
                # whole, wrapped: the summary is how a responder knows what to type
                head = Text(f"{name}", style="bold")
                head.append("  required" if parameter.required else "  optional (Enter without it is fine)",
                            style="bold yellow" if parameter.required else "green")
                if name in self.offered:
                    head.append("  · from what you typed", style="cyan")
                head.append("\n" + one_line(parameter.summary or f"the value of {name}"), style="dim")
                yield Static(head, classes="param-help")
                # the cursor after what is offered: typing goes on from it, rather than replacing it
                yield Input(value=self.known.get(name, ""), select_on_focus=False,
                            placeholder=(parameter.label and f"alert label {parameter.label}") or name,
                            id=f"param-{name}", classes="param-input")
            yield Static("", id="param-error", markup=False)
            yield Label(f"[b]Enter[/b] {self.submit}   [b]Tab[/b] next field   [b]Esc[/b] cancel",
                        classes="dialog-keys")

    def on_mount(self) -> None:
        empty = [i for i in self.query(".param-input").results(Input) if not i.value]
        (empty or list(self.query(".param-input").results(Input)))[0].focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        values, errors = {}, []
        for name, parameter in self.parameters.items():
            value = self.query_one(f"#param-{name}", Input).value.strip()
            if not value:
                if parameter.required:
                    errors.append(f"{name} is required")
                continue
            why = problem(parameter, value)
            if why:
                errors.append(f"{name}: {value!r} {why}. {explain(parameter)}")
            elif value != self.known.get(name) or name in self.offered:  # offered: typed by the responder
                values[name] = value
        if errors:
            self.query_one("#param-error", Static).update(Text("\n".join(one_line(e) for e in errors),
                                                               style="bold red"))
            return
        self.dismiss(values)

    def action_cancel(self) -> None:
        self.dismiss(None)


_EXAMPLE = re.compile(r"\b(?:like|e\.g\.|for example|such as)\s+(\S+?)[.,;)]?(?:\s|$)")


def explain(parameter) -> str:
    """What the parameter is, with an example: its summary (which often has one, "like eu-central-1"),
    else its default; and, when it is optional, that it can be left out."""
    summary = parameter.summary or f"the value of {parameter.name}"
    example = _EXAMPLE.search(summary)
    out = summary.rstrip(".") + "."
    if not example and parameter.default:
        out += f" For example {parameter.default}."
    if not parameter.required:
        out += " Optional: clear it to open without it."
    return out
