"""The Textual application and its factory (the same factory the tests use)."""

from __future__ import annotations

import gc

from textual.app import App, SystemCommand

from runbook.errors import RunbookError
from runbook.tui.gateway import EngineGateway
from runbook.tui.screens.incident import ACTIONS, IncidentScreen


class RunbookApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "runbook"
    ENABLE_COMMAND_PALETTE = True

    def __init__(self, gateway: EngineGateway, catalog, actor: str, incident: str | None = None, live: bool = True):
        super().__init__()
        self.gateway, self.actor = gateway, actor
        self.start_incident, self.live = incident, live
        # the catalog may be a loader, called on first use off the UI thread (the incident
        # screen runs from the snapshot and never needs it)
        self._catalog, self._catalog_loader = (None, catalog) if callable(catalog) else (catalog, None)

    @property
    def catalog(self):
        if self._catalog is None and self._catalog_loader is not None:
            self._catalog = self.gateway.set_catalog(self._catalog_loader())
        return self._catalog

    def started(self) -> None:
        """The first screen is drawn: resume garbage collection if the command paused it for
        start-up, leaving what start-up built out of later collections."""
        if not gc.isenabled():
            gc.freeze()
            gc.enable()

    def deliver(self, fetch, then) -> None:
        """From a worker thread: call `fetch()` (engine work) and hand its result to `then` on the
        UI thread; a RunbookError is shown as a notification instead."""
        try:
            result = fetch()
        except RunbookError as exc:
            self.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.call_from_thread(then, result)

    def on_mount(self) -> None:
        self.set_timer(2, self.started)  # at the latest; screens call it after their first frame
        # Straight into an incident when asked: the home screen is built only when wanted.
        if self.start_incident:
            # The command that started us has just read the incident (to settle a crash), so
            # its view is cheap now and the first frame can show it instead of an empty screen.
            try:
                first = self.gateway.view(self.start_incident)
            except RunbookError:
                first = None
            self.open_incident(self.start_incident, first)
        else:
            from runbook.tui.screens.home import HomeScreen  # built (and imported) when wanted

            self.push_screen(HomeScreen())

    def go_home(self) -> None:
        from runbook.tui.screens.home import HomeScreen

        if any(isinstance(screen, HomeScreen) for screen in self.screen_stack):
            while not isinstance(self.screen, HomeScreen):
                self.pop_screen()
        else:
            self.switch_screen(HomeScreen())

    def on_unmount(self) -> None:
        self.gateway.close()

    def open_incident(self, incident: str, view=None) -> None:
        self.push_screen(IncidentScreen(incident, view))

    def action_help(self) -> None:
        from runbook.tui.screens.help import HelpScreen

        self.push_screen(HelpScreen())

    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        if isinstance(screen, IncidentScreen):
            for _, action, label, help_text in ACTIONS:
                yield SystemCommand(label, help_text, getattr(screen, f"action_{action}"))


def build_app(engine, catalog, actor: str, incident: str | None = None, live: bool = True) -> RunbookApp:
    return RunbookApp(EngineGateway(engine, catalog), catalog, actor, incident, live)
