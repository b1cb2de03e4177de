"""A real Matrix homeserver (Synapse, from the package index) on loopback for the chat tests.

`./scripts/test` installs Synapse into its own virtualenv, `.venv-synapse/` (its dependencies
are not runbook's); RUNBOOK_SYNAPSE_PYTHON names another interpreter that has it. The homeserver
keeps its state in SQLite under the test session's temporary directory, trusts no key server,
federates with nobody, has its rate limits lifted and registers users through the shared-secret
admin API. It can be killed (-9) and started again on the same port and database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVER_NAME = "localhost"
SECRET = "runbook-tests-registration-secret"
UNLIMITED = {"per_second": 10000, "burst_count": 100000}


def interpreter() -> Path | None:
    given = os.environ.get("RUNBOOK_SYNAPSE_PYTHON")
    candidate = Path(given) if given else ROOT / ".venv-synapse" / "bin" / "python"
    return candidate if candidate.is_file() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Synapse:
    def __init__(self, python: Path, workdir: Path):
        self.python, self.dir = python, workdir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.config = workdir / "homeserver.yaml"
        self._configure()

    def _configure(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(self.python), "-m", "synapse.app.homeserver", "--server-name", SERVER_NAME,
                        "--config-path", str(self.config), "--generate-config", "--report-stats=no",
                        "--data-directory", str(self.dir)], check=True, capture_output=True, cwd=self.dir)
        config = yaml.safe_load(self.config.read_text())
        config.update({
            "listeners": [{"port": self.port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
                           "x_forwarded": False, "resources": [{"names": ["client"], "compress": False}]}],
            "trusted_key_servers": [], "suppress_key_server_warning": True,
            "registration_shared_secret": SECRET, "enable_registration": False,
            "database": {"name": "sqlite3", "args": {"database": str(self.dir / "homeserver.db")}},
            "rc_message": UNLIMITED, "rc_registration": UNLIMITED, "rc_joins": {"local": UNLIMITED},
            "rc_login": {"address": UNLIMITED, "account": UNLIMITED, "failed_attempts": UNLIMITED},
            "rc_invites": {"per_room": UNLIMITED, "per_user": UNLIMITED},
            "rc_admin_redaction": UNLIMITED, "rc_3pid_validation": UNLIMITED,
            "presence": {"enabled": False}, "url_preview_enabled": False,
        })
        log_config = self.dir / f"{SERVER_NAME}.log.config"
        log_config.write_text("version: 1\nroot: {level: WARNING, handlers: []}\ndisable_existing_loggers: false\n")
        config["log_config"] = str(log_config)
        self.config.write_text(yaml.safe_dump(config))

    def start(self, timeout: float = 90.0) -> None:
        self.proc = subprocess.Popen([str(self.python), "-m", "synapse.app.homeserver", "-c", str(self.config)],
                                     cwd=self.dir, stdout=subprocess.DEVNULL, stderr=open(self.dir / "stderr", "ab"),
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # bounded: the homeserver answers within seconds
            if self.proc.poll() is not None:
                raise RuntimeError(f"synapse exited {self.proc.returncode}: "
                                   f"{(self.dir / 'stderr').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/_matrix/client/versions", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("synapse did not answer within 90 s")

    def kill(self) -> None:
        """kill -9, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def call(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Content-Type": "application/json",
                                                  **({"Authorization": f"Bearer {token}"} if token else {})})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: HTTP {exc.code} {exc.read()[:300]!r}") from None

    def register(self, name: str, admin: bool = False) -> tuple[str, str]:
        """A new user: (user id, access token)."""
        nonce = self.call("GET", "/_synapse/admin/v1/register")["nonce"]
        password = f"pw-{name}-0123456789"
        mac = hmac.new(SECRET.encode(), "\0".join([nonce, name, password, "admin" if admin else "notadmin"]).encode(),
                       hashlib.sha1).hexdigest()
        done = self.call("POST", "/_synapse/admin/v1/register",
                         {"nonce": nonce, "username": name, "password": password, "admin": admin, "mac": mac})
        return done["user_id"], done["access_token"]

    def create_room(self, token: str, invite: list[str]) -> str:
        return self.call("POST", "/_matrix/client/v3/createRoom", {"preset": "private_chat", "invite": invite},
                         token)["room_id"]

    def join(self, token: str, room: str) -> None:
        self.call("POST", f"/_matrix/client/v3/join/{room}", {}, token)

    def say(self, token: str, room: str, text: str, txn: str | None = None) -> str:
        txn = txn or f"t{time.monotonic_ns()}"
        return self.call("PUT", f"/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}",
                         {"msgtype": "m.text", "body": text}, token)["event_id"]

    def messages(self, token: str, room: str, limit: int = 200) -> list[dict]:
        """The room's message events, oldest first."""
        chunk = self.call("GET", f"/_matrix/client/v3/rooms/{room}/messages?dir=b&limit={limit}", None,
                          token)["chunk"]
        return [e for e in reversed(chunk) if e.get("type") == "m.room.message"]
