"""Every plugin hook, in one place. Hooks are called with keyword arguments only.

Plugins implement them with `@hookimpl` from this module. Built-in behaviour lives in
`runbook.default_plugins` and is registered exactly like third-party plugins.
"""

from __future__ import annotations

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("runbook")
hookimpl = HookimplMarker("runbook")


@hookspec(firstresult=True)
def set_flag(settings, name, value, drill):
    """Set flag `name` to `value`; return a FlagChange with the previous state. First result wins."""


@hookspec(firstresult=True)
def get_flag(settings, name, drill):
    """Return the FlagState of flag `name` (exists=False when unknown). First result wins."""


@hookspec(firstresult=True)
def set_flag_share(settings, name, value, share, by, normal, drill):
    """Give `value` to `share` percent of evaluation contexts (bucketed on the context key `by`),
    the rest keeping the flag's current value (`normal` when the flag does not exist yet; None:
    unknown): one stage of a staged degradation. share 100 is set_flag. Return a FlagChange.
    First result wins."""


@hookspec(firstresult=True)
def restore_flag(settings, name, previous, drill):
    """Put flag `name` back to the FlagState `previous` (remove it if it did not exist); return a FlagChange."""


@hookspec
def register_actions(register):
    """Declare the actions this plugin runs: register(name, summary)."""


@hookspec(firstresult=True)
def run_action(settings, request):
    """Run an ActionRequest (a command or a named action); return an ActionResult, or None if not yours."""


@hookspec
def notify(settings, notice):
    """Deliver an EscalationNotice to people; return a NotifyResult. Every plugin is called."""


@hookspec
def notify_update(settings, update):
    """Tell a pager that the incident was acknowledged or resolved (a PagerUpdate naming the alerts
    this plugin opened); return a NotifyResult, or None if not yours. Called only on plugins
    whose notify result named a dedup_key."""


@hookspec(firstresult=True)
def chat_announce(settings, message):
    """Start an incident's thread in the team's chat with `message` (a ChatMessage); return a
    ChatReceipt naming the chat's id of it (later messages go under it), or None if no chat is
    configured. First result wins."""


@hookspec(firstresult=True)
def chat_update(settings, message):
    """Post `message` in its incident's thread (message.thread), or edit an earlier message
    (message.replaces); return a ChatReceipt, or None if no chat is configured. A message with
    a txn already posted must not be posted again. First result wins."""


@hookspec
def chat_receive(settings):
    """Return the ChatCommands people wrote in the chat since the last call (a list; [] or None
    when there are none). Every plugin is called; runbook takes each command once."""


@hookspec(firstresult=True)
def notify_subscriber(settings, message):
    """Send a SubscriberMessage (a public status update, or an email's confirmation link) to one
    subscriber of the public page; return a NotifyResult, or None if its kind is not yours."""


@hookspec
def event_appended(settings, event):
    """Observe every event appended to an incident's log. Every plugin is called; results are ignored."""


@hookspec
def register_commands(cli):
    """Add click commands to the `runbook` command group."""
