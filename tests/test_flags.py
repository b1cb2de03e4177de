"""Degradation flags in a flagd file: what `runbook flags` writes is what an OpenFeature client reads,
other content survives, and concurrent writers never lose each other's flags."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from runbook import flagd
from runbook.cli import cli
from runbook.plugins import PluginHost
from runbook.settings import Settings

EXISTING = {
    "$schema": flagd.SCHEMA_URL,
    "flags": {
        "rtc.video.enabled": {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "on",
                              "metadata": {"owner": "media-team"}},
        "messaging.read-receipts.enabled": {
            "state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "on",
            "targeting": {"if": [{"in": ["@example.com", {"var": "email"}]}, "off", None]}},
        "gifts.theme": {"state": "DISABLED", "variants": {"winter": "winter", "plain": "plain"},
                        "defaultVariant": "plain"},
    },
    "$evaluators": {"internal": {"in": ["@example.com", {"var": "email"}]}},
    "metadata": {"flagSetId": "rtc"},
}


@pytest.fixture
def flag_file(tmp_path):
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(EXISTING, indent=2))
    return path


def run(*args, cwd=None):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


def test_set_flips_default_variant_and_keeps_everything_else(flag_file):
    result = run("flags", "set", "--file", str(flag_file), "rtc.video.enabled", "false")
    assert result.exit_code == 0
    assert result.output == f"rtc.video.enabled: true → false  ({flag_file})\n"
    data = json.loads(flag_file.read_text())
    flag = data["flags"]["rtc.video.enabled"]
    assert flag["defaultVariant"] == "off" and flag["variants"] == {"on": True, "off": False}
    assert flag["metadata"]["owner"] == "media-team"
    for key in ("messaging.read-receipts.enabled", "gifts.theme"):
        assert data["flags"][key] == EXISTING["flags"][key]
    assert data["$evaluators"] == EXISTING["$evaluators"] and data["metadata"] == EXISTING["metadata"]


def test_restore_puts_back_the_original_file_content(flag_file):
    run("flags", "set", "--file", str(flag_file), "rtc.video.enabled", "false")
    run("flags", "set", "--file", str(flag_file), "rtc.video.enabled", "true")
    run("flags", "set", "--file", str(flag_file), "rtc.video.enabled", "false")
    result = run("flags", "restore", "--file", str(flag_file), "rtc.video.enabled")
    assert result.output == f"rtc.video.enabled: false → true  ({flag_file})\n"
    assert json.loads(flag_file.read_text()) == EXISTING


def test_new_flag_is_created_and_restore_removes_it(tmp_path):
    path = tmp_path / "new" / "flags.json"
    assert run("flags", "set", "--file", str(path), "rtc.video.max-bitrate-kbps", "300").exit_code == 0
    flag = json.loads(path.read_text())["flags"]["rtc.video.max-bitrate-kbps"]
    assert (flag["variants"], flag["defaultVariant"], flag["state"]) == ({"300": 300}, "300", "ENABLED")
    run("flags", "restore", "--file", str(path), "rtc.video.max-bitrate-kbps")
    assert json.loads(path.read_text())["flags"] == {}


def test_setting_a_disabled_or_targeted_flag_says_what_happens(flag_file):
    out = run("flags", "set", "--file", str(flag_file), "gifts.theme", "winter").output
    assert "note: the flag was DISABLED; it is ENABLED now so the value takes effect" in out
    out = run("flags", "set", "--file", str(flag_file), "messaging.read-receipts.enabled", "false").output
    assert "note: the flag has targeting rules" in out


def test_wrong_type_is_refused_and_file_untouched(flag_file):
    before = flag_file.read_text()
    result = CliRunner().invoke(cli, ["flags", "set", "--file", str(flag_file), "rtc.video.enabled", "maybe"])
    assert result.exit_code == 4
    assert "flag rtc.video.enabled holds boolean values; cannot set it to \"maybe\" (string)" in result.output
    assert flag_file.read_text() == before


@pytest.mark.parametrize("content, message", [
    ("{not json", "1:2: not valid JSON"),
    ('{"flags": {"a": {"state": "ON", "variants": {"x": 1}, "defaultVariant": "x"}}}',
     "flags['a'].state: must be \"ENABLED\" or \"DISABLED\""),
    ('{"flags": {"a": {"state": "ENABLED", "variants": {"x": 1, "y": "one"}, "defaultVariant": "x"}}}',
     "all variants must have one type, found number, string"),
    ('{"flags": {"a": {"state": "ENABLED", "variants": {"x": 1}, "defaultVariant": "z"}}}',
     "flags['a'].defaultVariant: \"z\" is not one of its variants (x)"),
])
def test_invalid_flag_file_is_reported_and_never_overwritten(tmp_path, content, message):
    path = tmp_path / "flags.json"
    path.write_text(content)
    result = CliRunner().invoke(cli, ["flags", "set", "--file", str(path), "a", "2"])
    assert result.exit_code == 4 and message in result.output
    assert path.read_text() == content


def test_sandbox_file_is_separate(flag_file, monkeypatch):
    monkeypatch.setenv("RUNBOOK_FLAGS", str(flag_file))
    run("flags", "set", "--sandbox", "rtc.video.enabled", "false")
    assert json.loads(flag_file.read_text()) == EXISTING
    sandbox = flag_file.with_name("flags.sandbox.json")
    assert json.loads(sandbox.read_text())["flags"]["rtc.video.enabled"]["defaultVariant"] == "off"


def test_list_and_get_json(flag_file):
    run("flags", "set", "--file", str(flag_file), "rtc.video.enabled", "false")
    listed = json.loads(run("flags", "list", "--file", str(flag_file), "--json").output)
    row = next(r for r in listed["flags"] if r["name"] == "rtc.video.enabled")
    assert (row["value"], row["changed_by_runbook"], row["previous"]["value"]) == (False, True, True)
    got = json.loads(run("flags", "get", "--file", str(flag_file), "gifts.theme", "--json").output)
    assert got == {"name": "gifts.theme", "exists": True, "value": "plain", "variant": "plain", "enabled": False}


def test_write_is_atomic_and_keeps_permissions(flag_file):
    os.chmod(flag_file, 0o600)
    run("flags", "set", "--file", str(flag_file), "rtc.video.enabled", "false")
    assert oct(os.stat(flag_file).st_mode & 0o777) == "0o600"
    leftovers = [p.name for p in flag_file.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def _writer(path, worker, count):
    host = PluginHost(Settings(flags_file=path, plugins_dir=None), entry_points=False)
    for i in range(count):
        host.set_flag(f"worker{worker}.flag{i}", i % 2 == 0)


def test_concurrent_writers_never_lose_a_flag(tmp_path):
    path = str(tmp_path / "flags.json")
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_writer, args=(path, w, 25)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(120)
        assert p.exitcode == 0
    data = flagd.read(path)
    assert flagd.check(data) == []
    assert len(data["flags"]) == 100
    assert data["flags"]["worker3.flag24"]["defaultVariant"] == "on"


def test_openfeature_client_sees_runbook_flags_set(flag_file, repo_root):
    """The real OpenFeature SDK with the flagd provider in file mode reads our file."""
    from openfeature import api
    from openfeature.contrib.provider.flagd import FlagdProvider
    from openfeature.contrib.provider.flagd.config import ResolverType

    provider = FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=str(flag_file),
                             deadline_ms=50)
    api.set_provider_and_wait(provider)
    try:
        client = api.get_client()
        assert client.get_boolean_value("rtc.video.enabled", False) is True
        proc = subprocess.run([sys.executable, "-m", "runbook", "flags", "set", "--file", str(flag_file),
                               "rtc.video.enabled", "false"], cwd=repo_root, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        deadline = time.monotonic() + 10
        seen = True
        while time.monotonic() < deadline:  # bounded polling for the provider's file watcher
            seen = client.get_boolean_value("rtc.video.enabled", True)
            if seen is False:
                break
            time.sleep(0.05)
        assert seen is False
        # a targeting rule that runbook left untouched still works through the SDK
        from openfeature.evaluation_context import EvaluationContext

        ctx = EvaluationContext(attributes={"email": "ana@example.com"})
        assert client.get_boolean_value("messaging.read-receipts.enabled", True, ctx) is False
    finally:
        api.shutdown()
