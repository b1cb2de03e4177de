"""A step's command output and exit code are shown: `incident show` (text and --json) and the
Markdown export, escaped, the tail only."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent

PLAYBOOK = """\
apiVersion: runbook/v1
kind: Playbook
id: outputs
title: Outputs
service: rtc
severity: SEV2
escalation: ladder
symptoms: [{id: s, summary: Something}]
steps:
  - id: look
    kind: action
    title: Look at the processes
    run: ["{python}", "-c", "{code}"]
    with:
      python: PYTHON
      code: "import sys; print('pid 4242'); print('~~~ not a fence \\\\x1b]0;pwned\\\\x07'); sys.exit(3)"
  - {id: fix, title: Fix it}
"""


@pytest.fixture
def rb(rb, tmp_path):
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "policies.yaml").write_text((HERE / "engine_catalog" / "policies.yaml").read_text())
    (tmp_path / "playbooks" / "outputs.yaml").write_text(PLAYBOOK.replace("PYTHON", sys.executable))
    rb.cwd = tmp_path
    return rb


def test_output_and_exit_code_are_shown_escaped_in_show_json_and_export(rb):
    iid = rb("incident", "open", "outputs").strip()
    rb("incident", "step", iid, "--run", expect=4)  # the action exited 3
    shown = rb("incident", "show", iid)
    assert "look (failed, exit 3):" in shown
    assert "| pid 4242" in shown
    assert "\x1b" not in shown and "\\x1b]0;pwned\\x07" in shown
    data = json.loads(rb("incident", "show", iid, "--json"))
    assert data["steps"]["look"]["exit_code"] == 3
    assert data["steps"]["look"]["output"].startswith("pid 4242\n")
    md = rb("incident", "export", iid)
    block = md[md.index("## Command output"):md.index("## Notes")]
    assert "“Look at the processes” (attempt 1, exit 3):" in block  # the step by its title
    assert "\n~~~~\npid 4242\n~~~ not a fence" in block  # the fence is longer than any ~ run inside
    assert "\x1b" not in md
