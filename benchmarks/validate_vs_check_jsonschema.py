"""Time `runbook validate` against `check-jsonschema` on the same 1,000 generated playbooks.

check-jsonschema does the schema alone; runbook validate does the schema, source positions
and the cross-document lint. Every figure is a fresh process, as a user or CI would run it.
The floors are what schema-checking these files costs at least in Python: one process that
reads each file with PyYAML's C loader and checks it with one validator built once (the
compiled jsonschema-rs one, and jsonschema's). Each round runs all of them, every other round
in reverse order, so runbook and check-jsonschema alternate (A B ... / ... B A) and a slow
spell of the machine hits both; ratios are medians of the per-round ratios.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python benchmarks/validate_vs_check_jsonschema.py [--count 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Python's default: compiled modules are cached as bytecode, as a pip install leaves them (some
# sandboxes set PYTHONDONTWRITEBYTECODE, which would recompile runbook on every start while
# check-jsonschema, installed by pip, keeps its bytecode). A warm-up run of each fills that cache.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

FLOOR = """
import json, sys, yaml
schema = json.load(open(sys.argv[2]))
if sys.argv[1] == "jsonschema-rs":
    import jsonschema_rs
    check = jsonschema_rs.validator_for(schema).is_valid
else:
    from jsonschema import Draft202012Validator
    check = Draft202012Validator(schema).is_valid
bad = [f for f in sys.argv[3:] if not check(yaml.load(open(f), Loader=yaml.CSafeLoader))]
sys.exit(f"invalid: {bad[:3]}" if bad else 0)
"""

WHAT = {
    "runbook": "runbook validate (schema + positions + lint)",
    "check-jsonschema": "check-jsonschema --schemafile (schema only)",
    "floor-rs": "PyYAML C loader + one jsonschema-rs validator",
    "floor-py": "PyYAML C loader + one jsonschema validator",
}


def generate(count: int, out: Path) -> tuple[Path, Path]:
    """Write `count` playbooks (renamed copies of the shipped ones) and the policies they refer to."""
    playbooks, context = out / "playbooks", out / "context"
    playbooks.mkdir()
    context.mkdir()
    templates = []
    for path in sorted((ROOT / "playbooks").glob("*.yaml")):
        text = path.read_text()
        if "\nkind: Playbook\n" in text:
            templates.append(text)
        else:
            shutil.copy(path, context / path.name)
    for i in range(count):
        text = templates[i % len(templates)]
        text = re.sub(r"^id: (.+)$", rf"id: \1-{i:04d}", text, count=1, flags=re.M)
        (playbooks / f"playbook-{i:04d}.yaml").write_text(text)
    return playbooks, context


def run(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if not (BIN / "check-jsonschema").exists():
        sys.exit("check-jsonschema is not installed: .venv/bin/pip install -e '.[bench]'")
    with tempfile.TemporaryDirectory() as tmp:
        playbooks, context = generate(args.count, Path(tmp))
        files = sorted(str(p) for p in playbooks.glob("*.yaml"))
        # the Playbook schema standing alone, as `runbook schema Playbook` prints it (the shipped
        # file takes its step definitions from shared.defs.json)
        schema = Path(tmp) / "playbook.schema.json"
        schema.write_text(subprocess.run([str(BIN / "runbook"), "schema", "Playbook"], check=True,
                                         capture_output=True, text=True).stdout)
        size = sum(Path(f).stat().st_size for f in files)
        commands = {
            "runbook": [str(BIN / "runbook"), "--catalog", str(context), "--plugins-dir", str(ROOT / "plugins"),
                        "validate", "--strict", str(playbooks)],
            "check-jsonschema": [str(BIN / "check-jsonschema"), "--schemafile", str(schema), *files],
            "floor-rs": [sys.executable, "-c", FLOOR, "jsonschema-rs", str(schema), *files],
            "floor-py": [sys.executable, "-c", FLOOR, "jsonschema", str(schema), *files],
        }
        names = list(commands)
        print(f"{len(files)} playbooks, {size / 1e6:.1f} MB of YAML; {args.rounds} rounds, "
              "each command a fresh process, every other round in reverse order")
        for cmd in commands.values():
            run(cmd)  # warm-up: bytecode caches
        times: dict[str, list[float]] = {name: [] for name in names}
        for i in range(args.rounds):
            order = names if i % 2 == 0 else names[::-1]
            for name in order:
                times[name].append(run(commands[name]))
            print(f"  round {i + 1}: " + ", ".join(f"{name} {times[name][-1]:.2f} s" for name in order), flush=True)
    for name in names:
        print(f"{name:17} {WHAT[name]:52} median {statistics.median(times[name]):6.2f} s  "
              f"runs {[round(t, 2) for t in times[name]]}")

    def ratio(a: str, b: str) -> str:
        per_round = sorted(x / y for x, y in zip(times[a], times[b]))
        return f"{a} / {b}: {statistics.median(per_round):.3f} (rounds {per_round[0]:.3f}-{per_round[-1]:.3f})"

    print(ratio("runbook", "check-jsonschema"), " (goal <= 0.2)")
    for a, b in (("runbook", "floor-rs"), ("check-jsonschema", "floor-rs"), ("runbook", "floor-py"),
                 ("check-jsonschema", "floor-py")):
        print(ratio(a, b))


if __name__ == "__main__":
    main()
