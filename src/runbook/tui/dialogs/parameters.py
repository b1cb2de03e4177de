"""The form that asks for a playbook's parameters before an incident opens on it, or for the one
parameter an ask step asks for."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from runbook.catalog.parameters import problem
from runbook.text import one_line


class ParameterForm(ModalScreen[dict | None]):
    """One input per parameter, pre-filled with what is known (--param, labels, defaults); Enter
    checks every value against its type and pattern and, when all fit, returns the values the
    responder typed or changed. Escape cancels: nothing is opened."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, detail: str, parameters: dict, known: dict, submit: str = "open"):
        super().__init__()
        self.title_text, self.detail, self.submit = title, detail, submit
        self.parameters, self.known = parameters, dict(known)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            if self.detail:
                yield Static(self.detail, classes="dialog-detail", markup=False)
            for name, parameter in self.parameters.items():
                hint = " · ".join(x for x in (parameter.summary, parameter.pattern,
                                              "required" if parameter.required else "optional") if x)
                yield Label(Text(f"{name}  ", style="bold") + Text(one_line(hint), style="dim"), markup=False)
                yield Input(value=self.known.get(name, ""), placeholder=(parameter.label and f"alert label "
                            f"{parameter.label}") or name, id=f"param-{name}", classes="param-input")
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
                errors.append(f"{name}: {value!r} {why}")
            elif value != self.known.get(name):
                values[name] = value
        if errors:
            self.query_one("#param-error", Static).update(Text(one_line("; ".join(errors)), style="bold red"))
            return
        self.dismiss(values)

    def action_cancel(self) -> None:
        self.dismiss(None)
