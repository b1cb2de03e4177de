"""The Textual application and its factory (the same factory the tests use)."""

from __future__ import annotations

import gc

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.notifications import Notification, Notify
from textual.screen import Screen

from runbook.errors import RunbookError
from runbook.text import shown
from runbook.tui.gateway import EngineGateway
from runbook.tui.keys import palette_commands
from runbook.tui.screens.incident import IncidentScreen


class RunbookApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "runbook"
    ENABLE_COMMAND_PALETTE = True
    # the palette's key, on every screen; each screen declares its own keys (see tui/keys.py)
    BINDINGS = [Binding("ctrl+p", "command_palette", "Palette", priority=True,
                        tooltip="Command palette: every action of this screen, by name")]

    def __init__(self, gateway: EngineGateway, catalog, actor: str, incident: str | None = None, live: bool = True,
                 opening: dict | None = None, preload=None, settle: bool = False):
        super().__init__()
        self.gateway, self.actor = gateway, actor
        # called on this thread once the first frame is drawn (loads the plugins: some must load
        # on the main thread, e.g. to set a signal handler, and the engines are made on workers)
        self.preload = preload
        self.fatal: Exception | None = None  # why the app ended early (raised by whoever ran it)
        gateway.unavailable = self.end_with
        self.start_incident, self.live = incident, live
        # `runbook resume`: the incident as typed (None: the latest open one), to be found and
        # settled before its screen shows it (IncidentScreen.settle)
        self.settle = settle
        self.opening = opening  # engine.open's arguments when parameters must be asked for first
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
        start-up, leaving what start-up built out of later collections; run `preload`."""
        if not gc.isenabled():
            gc.freeze()
            gc.enable()
        preload, self.preload = self.preload, None
        if preload is not None:
            preload()

    def end_with(self, error: Exception) -> None:
        """From any thread: the screen cannot work (the engines could not be made, the incident
        to resume is not there or its record is damaged). The app ends and whoever ran it raises
        `error`, as the command would have before the screen was drawn; the first error wins."""
        if self.fatal is None:
            self.fatal = error
        try:
            self.call_from_thread(self.exit)
        except RuntimeError:  # on the app's own thread, or the app is closing
            self.exit()

    def deliver(self, fetch, then) -> None:
        """From a worker thread: call `fetch()` (engine work) and hand its result to `then` on the
        UI thread; a RunbookError is shown as a notification instead."""
        try:
            result = fetch()
        except RunbookError as exc:
            self.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.call_from_thread(then, result)

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = False) -> Notification:
        """Every toast, made safe here: messages carry notes, step titles and error text, so
        control characters are escaped and markup is off (a note's "[b]" stays two brackets).
        Returns the toast, so that whoever raised it can `withdraw` it once it is handled."""
        notification = Notification(shown(message), shown(title), severity,
                                     self.NOTIFICATION_TIMEOUT if timeout is None else timeout, markup=markup)
        self.post_message(Notify(notification))
        return notification

    def withdraw(self, notification: Notification) -> None:
        """Take a toast down before its timeout (what it announced has been handled)."""
        if notification in self._notifications:
            self._unnotify(notification)
        else:  # not shown yet (its Notify message is still queued): take it down once it is
            self.call_later(lambda: notification in self._notifications and self._unnotify(notification))

    def write_raw(self, sequence: str) -> None:
        """An escape sequence straight to the terminal (a clipboard for tmux); nothing when headless."""
        if self._driver is not None:
            self._driver.write(sequence)

    def get_default_screen(self) -> Screen:
        """Straight into an incident when asked: its screen is the first one, not one pushed over
        Textual's empty default screen (which would be mounted, laid out and restyled for nothing
        before the incident's first frame)."""
        if self.settle:
            return IncidentScreen(None, typed=self.start_incident)
        if not self.start_incident:
            return super().get_default_screen()
        try:  # the incident's view now, so that the first frame shows it rather than an empty screen
            first = self.gateway.view(self.start_incident)
        except RunbookError:
            first = None
        return IncidentScreen(self.start_incident, first)

    def on_ready(self) -> None:
        """The first frame is on the terminal (Textual's start-up batch has ended). Resuming, the
        plugins load now, on this thread, then the incident screen's worker fills it."""
        if self.settle:
            self.started()
            self.screen_stack[0].settle()  # the default screen (see get_default_screen)

    def on_mount(self) -> None:
        self.set_timer(2, self.started)  # at the latest; screens call it after their first frame
        if self.start_incident or self.settle:
            return  # its screen is the default screen
        from runbook.tui.screens.home import HomeScreen  # built (and imported) when wanted

        self.push_screen(HomeScreen())
        if self.opening:
            self.ask_parameters(**self.opening)

    def go_home(self) -> None:
        from runbook.tui.screens.home import HomeScreen

        if any(isinstance(screen, HomeScreen) for screen in self.screen_stack):
            while not isinstance(self.screen, HomeScreen):
                self.pop_screen()
        elif len(self.screen_stack) > 1:
            self.switch_screen(HomeScreen())
        else:
            # the incident the app started on is its default screen, which Textual cannot switch
            # away from: home goes over it, for good (going home again pops back to that home)
            self.screen.retire()
            self.push_screen(HomeScreen())

    def ask_parameters(self, playbook: str, params: dict | None = None, labels: dict | None = None,
                       typed: str = "", **options) -> None:
        """The parameter form for `playbook` (pre-filled from --param, labels and defaults, then
        from the symptom `typed` on home), then open the incident with what was typed; Esc opens nothing."""
        from runbook.catalog import preview
        from runbook.catalog.parameters import ParameterError, resolve
        from runbook.tui.dialogs import ParameterForm

        pb = self.catalog.models("Playbook")[playbook]
        try:
            known = resolve(pb, params, labels).values
        except ParameterError as exc:
            self.notify(str(exc), severity="error")
            known = {}
        offered = offer(pb.parameters, typed, known)
        form = ParameterForm(f"Open an incident on “{shown(preview.title(pb))}”",
                             f"Severity {pb.severity}; escalation {pb.escalation} starts paging when it opens.",
                             pb.parameters, {**known, **offered}, offered=set(offered))
        self.push_screen(form, lambda values: values is not None and self._open_with(
            playbook, params, labels, values, options))

    def _open_with(self, playbook, params, labels, form, options) -> None:
        def opened():
            return self.gateway.call("open", playbook, self.actor, params=params, labels=labels, form=form,
                                     **options).id
        self.run_worker(lambda: self.deliver(opened, self.open_incident), thread=True, exit_on_error=False)

    def on_unmount(self) -> None:
        self.gateway.close()

    def open_incident(self, incident: str, view=None) -> None:
        self.push_screen(IncidentScreen(incident, view))

    def action_help(self) -> None:
        from runbook.tui.screens.help import HelpScreen

        self.push_screen(HelpScreen(type(self.screen)))

    def get_system_commands(self, screen):
        """The screen's bindings, by name, then Textual's own commands that are not one of them."""
        ours = [SystemCommand(*command) for command in palette_commands(screen)]
        yield from ours
        titles = {command.title for command in ours}
        yield from (command for command in super().get_system_commands(screen) if command.title not in titles)


def offer(parameters: dict, typed: str, known: dict) -> dict[str, str]:
    """Values for the parameters not known yet, from the words of the symptom typed on home ("video
    freezing in eu-west-1" offers region=eu-west-1): the first word that fits the parameter, else,
    for a parameter with a pattern, the first word with a dash or a digit (most likely the value,
    half typed: the form says why it does not fit yet). The responder sees and can change each one."""
    from runbook.catalog.parameters import problem

    words = [w.strip(".,;:!?()\"'") for w in typed.split()]
    words = [w for w in words if w]
    out = {}
    for name, parameter in parameters.items():
        if known.get(name) or not words:
            continue
        fits = [w for w in words if problem(parameter, w) is None and (parameter.pattern or parameter.type != "string")]
        near = [w for w in words if parameter.pattern and any(c == "-" or c.isdigit() for c in w)]
        if fits or near:
            out[name] = (fits or near)[0]
    return out


def build_app(service, catalog, actor: str, incident: str | None = None, live: bool = True,
              opening: dict | None = None, preload=None, settle: bool = False) -> RunbookApp:
    """The app on the engine service `service` (its engine may be made when first needed: see
    EngineGateway), which the app closes when it ends."""
    return RunbookApp(EngineGateway(service, catalog), catalog, actor, incident, live, opening, preload, settle)
