"""Prometheus for the metric check tests: a fake query endpoint with scripted answers, and the real
server (Debian's `prometheus`, which scripts/test installs) started on loopback over samples
written as OpenMetrics and turned into blocks by `promtool tsdb create-blocks-from openmetrics`."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from helpers.components import missing


def vector(*series) -> dict:
    """A success answer holding an instant vector: each series is (labels, value)."""
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": labels, "value": [1767603600.0, str(value)]} for labels, value in series]}}


def scalar(value) -> dict:
    return {"status": "success", "data": {"resultType": "scalar", "result": [1767603600.0, str(value)]}}


def query_error(kind: str, message: str, status: int = 400) -> tuple[int, dict]:
    return status, {"status": "error", "errorType": kind, "error": message}


class FakePrometheus:
    """`GET /api/v1/query` on 127.0.0.1, answering from `answers`: query text → an answer (a dict
    sent with 200, or (status, body) with body a dict or raw bytes). Unknown queries get an empty
    vector. Every request is kept in `requests` (its query parameters and Authorization header)."""

    def __init__(self):
        self.answers: dict = {}
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                params = dict(urllib.parse.parse_qsl(url.query))
                fake.requests.append({"path": url.path, **params,
                                      "authorization": self.headers.get("Authorization")})
                if url.path != "/api/v1/query":
                    return self._send(404, b"404 page not found")
                answer = fake.answers.get(params.get("query"), vector())
                status, body = answer if isinstance(answer, tuple) else (200, answer)
                self._send(status, body if isinstance(body, bytes) else json.dumps(body).encode())

            def _send(self, status, body):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # a short poll interval: shutdown() waits for the serving loop to notice, once per test
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openmetrics(samples: dict[str, list[tuple[dict, float]]], now: float, span: int = 600,
                step: int = 15) -> str:
    """Gauges as OpenMetrics text: each (labels, value) series repeats its value every `step`
    seconds over the `span` seconds before `now` (and at `now`), so an instant query at now finds it."""
    lines = []
    for name, series in samples.items():
        lines.append(f"# TYPE {name} gauge")
        for labels, value in series:
            inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            for t in range(int(now) - span, int(now) + 1, step):
                lines.append(f"{name}{{{inner}}} {value} {t}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


class RealPrometheus:
    """A real Prometheus on loopback over the samples given, with nothing to scrape."""

    def __init__(self, tmp_path, samples: dict, now: float, text: str | None = None):
        if shutil.which("prometheus") is None or shutil.which("promtool") is None:
            missing("Prometheus (prometheus and promtool)",
                    "run ./scripts/test (it installs the Debian package prometheus)")
        self.data = tmp_path / "prometheus-data"
        self.data.mkdir()
        source = tmp_path / "samples.om"
        source.write_text(text if text is not None else openmetrics(samples, now))  # text: OpenMetrics as given
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(self.data)],
                       check=True, capture_output=True, timeout=120)
        config = tmp_path / "prometheus.yml"
        config.write_text("global: {scrape_interval: 1h, evaluation_interval: 1h}\nscrape_configs: []\n")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(tmp_path / "prometheus.log", "wb")
        self.process = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={self.data}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=100y",
             "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self._ready()

    def _ready(self, within: float = 60.0):
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.process.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)  # waiting for a real server to start, not timing the code under test
        raise RuntimeError(f"prometheus not ready within {within}s; see {self.log.name}")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
