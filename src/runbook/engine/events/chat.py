"""The team's chat as a projection of the log: what was posted there, and the commands taken from it."""

from __future__ import annotations

from runbook.engine.events.base import EventRecord, record


@record("chat_posted")
class ChatPosted(EventRecord):
    """Events up to `upto` are in the chat: `remote` is the chat's id of the message that carries
    them (the incident's thread root when `root`)."""

    channel: str  # the plugin's channel: "matrix"
    upto: int  # the seq of the last event this message carries
    remote: str
    root: bool = False

    def fold(self, state, event):
        state.chat_upto = max(state.chat_upto, self.upto)
        if self.root:
            state.chat_root = self.remote

    def describe(self):
        return f"{self.channel}: posted up to event {self.upto}"


@record("chat_received", tone="note")
class ChatReceived(EventRecord):
    """A command someone wrote in the chat, taken once: the chat's id for their message is kept,
    so the same message delivered again does nothing."""

    channel: str
    remote: str  # the chat's event id
    sender: str  # the chat's id of who wrote it (@amira:example.org)
    command: str  # what they wrote, as received (at most 500 characters)

    def fold(self, state, event):
        state.chat_received.add(self.remote)

    def describe(self):
        return f"{self.channel}: {self.command} (from {self.sender})"
