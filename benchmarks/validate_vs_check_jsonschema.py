"""Time `runbook validate` against `check-jsonschema` on the same 1,000 generated playbooks.

check-jsonschema does the schema alone; runbook validate does the schema, source positions
and the cross-document lint. Both run as fresh processes, as a user or CI would run them.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python benchmarks/validate_vs_check_jsonschema.py [--count 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
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
SCHEMA = ROOT / "src" / "runbook" / "catalog" / "schemas" / "playbook.schema.json"


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


def timed(cmd: list[str], repeat: int) -> tuple[float, list[float]]:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        runs.append(time.perf_counter() - start)
        if proc.returncode != 0:
            sys.exit(f"{cmd[0]} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return statistics.median(runs), runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not (BIN / "check-jsonschema").exists():
        sys.exit("check-jsonschema is not installed: .venv/bin/pip install -e '.[bench]'")
    with tempfile.TemporaryDirectory() as tmp:
        playbooks, context = generate(args.count, Path(tmp))
        files = sorted(str(p) for p in playbooks.glob("*.yaml"))
        size = sum(Path(f).stat().st_size for f in files)
        print(f"{len(files)} playbooks, {size / 1e6:.1f} MB of YAML; median of {args.repeat} runs each")
        ours, our_runs = timed([str(BIN / "runbook"), "--catalog", str(context), "--plugins-dir",
                                str(ROOT / "plugins"), "validate", "--strict",
                                str(playbooks)], args.repeat)
        theirs, their_runs = timed([str(BIN / "check-jsonschema"), "--schemafile", str(SCHEMA), *files],
                                   args.repeat)
    print(f"runbook validate (schema + positions + lint): {ours:6.2f} s  runs {[round(r, 2) for r in our_runs]}")
    print(f"check-jsonschema (schema only):               {theirs:6.2f} s  runs {[round(r, 2) for r in their_runs]}")
    print(f"ratio runbook / check-jsonschema: {ours / theirs:.2f}  (goal <= 1.0)")


if __name__ == "__main__":
    main()
