"""The Textual application and its factory (the same factory the tests use)."""

from __future__ import annotations

from textual.app import App, SystemCommand

from runbook.tui.gateway import EngineGateway
from runbook.tui.screens.help import HelpScreen
from runbook.tui.screens.home import HomeScreen
from runbook.tui.screens.incident import ACTIONS, IncidentScreen


class RunbookApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "runbook"
    ENABLE_COMMAND_PALETTE = True

    def __init__(self, gateway: EngineGateway, catalog, actor: str, incident: str | None = None, live: bool = True):
        super().__init__()
        self.gateway, self.catalog, self.actor = gateway, catalog, actor
        self.start_incident, self.live = incident, live

    def on_mount(self) -> None:
        self.push_screen(HomeScreen())
        if self.start_incident:
            self.open_incident(self.start_incident)

    def open_incident(self, incident: str) -> None:
        self.push_screen(IncidentScreen(incident))

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        if isinstance(screen, IncidentScreen):
            for _, action, label, help_text in ACTIONS:
                yield SystemCommand(label, help_text, getattr(screen, f"action_{action}"))


def build_app(engine, catalog, actor: str, incident: str | None = None, live: bool = True) -> RunbookApp:
    return RunbookApp(EngineGateway(engine, catalog), catalog, actor, incident, live)
