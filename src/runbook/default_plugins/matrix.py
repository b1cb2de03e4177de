"""Built-in plugin: the team's chat on Matrix (matrix-nio), both ways.

Configured by RUNBOOK_MATRIX_HOMESERVER (https://matrix.example.org), RUNBOOK_MATRIX_USER (the
bot's user id, @runbook:example.org), RUNBOOK_MATRIX_TOKEN_FILE (its access token, in a file
only its owner can read) and RUNBOOK_MATRIX_ROOM (the room id or alias where incidents are
announced; the bot joins it). Without them the hooks answer None and runbook posts nowhere.

The client runs on a thread of its own with its own event loop: a slow or absent homeserver, or
a flood of messages in the room, never holds up anything else. Messages are sent with the
transaction id runbook gives them (the same id twice is one message), as `m.notice` with plain
text only and no mentions. Commands are the room's text messages that start with `!`, taken
from the sync stream; on the first sync only those of the last ten minutes are taken.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import stat
import threading
import time

from runbook.errors import UsageError
from runbook.pluginapi import ChatCommand, ChatReceipt, hookimpl
from runbook.text import one_line

log = logging.getLogger("runbook.matrix")

CHANNEL = "matrix"
ENV = ("RUNBOOK_MATRIX_HOMESERVER", "RUNBOOK_MATRIX_USER", "RUNBOOK_MATRIX_TOKEN_FILE", "RUNBOOK_MATRIX_ROOM")
FIRST_SYNC_WINDOW = 600  # seconds of the room's past taken at start: commands written while runbook was down
SEND_TIMEOUT = 8.0


def configured() -> bool:
    return all(os.environ.get(name, "").strip() for name in ENV)


def read_token(path: str) -> str:
    """The access token from its file, refused when others may read it."""
    try:
        info = os.stat(path)
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise UsageError(f"RUNBOOK_MATRIX_TOKEN_FILE {path} can be read by others; chmod 600 it")
        with open(path, encoding="utf-8") as handle:
            token = handle.read().strip()
    except OSError as exc:
        raise UsageError(f"RUNBOOK_MATRIX_TOKEN_FILE {path}: {exc.strerror}") from None
    if not token:
        raise UsageError(f"RUNBOOK_MATRIX_TOKEN_FILE {path} is empty")
    return token


def check_configuration() -> str | None:
    """For `runbook serve` at start: None when Matrix is not configured, else the room; a usage
    error naming what is missing or wrong."""
    given = [name for name in ENV if os.environ.get(name, "").strip()]
    if not given:
        return None
    missing = [name for name in ENV if name not in given]
    if missing:
        raise UsageError(f"Matrix chat needs {', '.join(missing)} too (or unset {', '.join(given)})")
    try:
        import nio  # noqa: F401
    except ImportError:
        raise UsageError("Matrix chat needs matrix-nio: pip install 'runbook[matrix]'") from None
    read_token(os.environ["RUNBOOK_MATRIX_TOKEN_FILE"])
    return os.environ["RUNBOOK_MATRIX_ROOM"]


class Client:
    """The bot's connection: a thread running an event loop, a sync loop collecting commands."""

    def __init__(self, homeserver: str, user: str, token: str, room: str):
        import nio

        self.room_given, self.user = room, user
        self.room: str | None = None
        self.commands: collections.deque[ChatCommand] = collections.deque()  # only `!` messages reach it
        self.loop = asyncio.new_event_loop()
        self.client = nio.AsyncClient(homeserver, user)
        self.client.access_token, self.client.user_id = token, user
        self.ready = threading.Event()
        self.task = None
        self.thread = threading.Thread(target=self._run, name="runbook-matrix", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.task = self.loop.create_task(self._sync_forever())
        try:
            self.loop.run_until_complete(self.task)
        except asyncio.CancelledError:
            pass
        finally:
            self.loop.run_until_complete(self.client.close())
            self.loop.close()

    def stop(self) -> None:
        """End the sync loop and the connection (the thread ends with them)."""
        self.loop.call_soon_threadsafe(lambda: self.task.cancel())
        self.thread.join(timeout=10)

    async def _room(self) -> str:
        if self.room is None:
            import nio

            room = self.room_given
            if room.startswith("#"):
                found = await self.client.room_resolve_alias(room)
                if not isinstance(found, nio.RoomResolveAliasResponse):
                    raise ConnectionError(f"cannot resolve {room}: {getattr(found, 'message', found)}")
                room = found.room_id
            joined = await self.client.join(room)
            if not isinstance(joined, nio.JoinResponse):
                raise ConnectionError(f"cannot join {room}: {getattr(joined, 'message', joined)}")
            self.room = room
        return self.room

    async def _sync_forever(self) -> None:
        import nio

        since, first, pause = None, True, 1.0
        while True:
            try:
                room = await self._room()
                sync_filter = {"room": {"rooms": [room], "timeline": {"limit": 100}},
                               "presence": {"types": []}, "account_data": {"types": []}}
                answer = await self.client.sync(timeout=5000, since=since, sync_filter=sync_filter)
                if not isinstance(answer, nio.SyncResponse):
                    raise ConnectionError(getattr(answer, "message", str(answer)))
                self.ready.set()
                joined = answer.rooms.join.get(room)
                oldest = (time.time() - FIRST_SYNC_WINDOW) * 1000 if first else 0
                events = list(joined.timeline.events) if joined else []
                if joined and joined.timeline.limited:  # more happened than one sync carries: page back
                    events = await self._earlier(room, joined.timeline.prev_batch, since, oldest) + events
                for event in events:
                    self._take(event, room, oldest)
                since, first, pause = answer.next_batch, False, 1.0
            except Exception as exc:  # the homeserver is down or refused: keep runbook going, try again
                log.warning("matrix: %s; trying again in %.0fs", one_line(str(exc))[:200], pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)

    async def _earlier(self, room: str, start: str | None, until: str | None, oldest: float) -> list:
        """The room's events before a limited sync's first one, back to the previous sync (`until`)
        or, on the first sync, to `oldest` (ms); oldest first."""
        import nio

        found: list = []
        while start:
            page = await self.client.room_messages(room, start=start, end=until, limit=100)
            if not isinstance(page, nio.RoomMessagesResponse) or not page.chunk:
                break
            found = list(reversed(page.chunk)) + found
            if until is None and page.chunk[-1].server_timestamp < oldest:
                break
            if page.end == start or len(found) > 10_000:
                break
            start = page.end
        return found

    def _take(self, event, room: str, oldest: float) -> None:
        source = getattr(event, "source", {}) or {}
        content = source.get("content") or {}
        body = content.get("body")
        if (source.get("type") != "m.room.message" or event.sender == self.user or not isinstance(body, str)
                or not body.lstrip().startswith("!") or event.server_timestamp < oldest):
            return
        relates = content.get("m.relates_to") or {}
        if relates.get("rel_type") == "m.replace":
            return  # an edit of a message already taken is not a new command
        thread = relates.get("event_id") if relates.get("rel_type") == "m.thread" else None
        self.commands.append(ChatCommand(CHANNEL, event.event_id, event.sender, body[:2000], thread))

    def send(self, content: dict, txn: str) -> ChatReceipt:
        import nio

        async def go():
            return await self.client.room_send(await self._room(), "m.room.message", content, tx_id=txn)
        try:
            answer = asyncio.run_coroutine_threadsafe(go(), self.loop).result(SEND_TIMEOUT)
        except Exception as exc:  # the homeserver is down: runbook posts it on a later pass
            return ChatReceipt(CHANNEL, False, detail=f"cannot reach the homeserver: {one_line(str(exc))[:200]}")
        if isinstance(answer, nio.RoomSendResponse):
            return ChatReceipt(CHANNEL, True, answer.event_id)
        return ChatReceipt(CHANNEL, False, detail=one_line(getattr(answer, "message", str(answer)))[:200])

    def take(self) -> list[ChatCommand]:
        out = []
        while self.commands:
            out.append(self.commands.popleft())
        return out


_client: Client | None = None
_config: tuple = ()
_lock = threading.Lock()


def client() -> Client | None:
    """The process's one client for the configuration in the environment (a new one when it
    changes), or None when Matrix is not configured."""
    global _client, _config
    if not configured():
        return None
    config = tuple(os.environ[name].strip() for name in ENV)
    with _lock:
        if _client is None or config != _config:
            if _client is not None:
                _client.stop()
            homeserver, user, token_file, room = config
            _client, _config = Client(homeserver, user, read_token(token_file), room), config
        return _client


def close() -> None:
    """At exit (and between tests): stop the client, if one was started."""
    global _client, _config
    with _lock:
        if _client is not None:
            _client.stop()
        _client, _config = None, ()


def content(message) -> dict:
    body = {"msgtype": "m.notice", "body": message.text, "m.mentions": {}}
    if message.replaces:
        return {"msgtype": "m.notice", "body": f"* {message.text}", "m.mentions": {},
                "m.new_content": body, "m.relates_to": {"rel_type": "m.replace", "event_id": message.replaces}}
    if message.thread:
        reply = message.reply_to or message.thread
        body["m.relates_to"] = {"rel_type": "m.thread", "event_id": message.thread, "is_falling_back": not
                                message.reply_to, "m.in_reply_to": {"event_id": reply}}
    elif message.reply_to:
        body["m.relates_to"] = {"m.in_reply_to": {"event_id": message.reply_to}}
    return body


@hookimpl
def chat_announce(settings, message):
    bot = client()
    return bot.send(content(message), message.txn) if bot else None


@hookimpl
def chat_update(settings, message):
    bot = client()
    return bot.send(content(message), message.txn) if bot else None


@hookimpl
def chat_receive(settings):
    bot = client()
    return bot.take() if bot else None
