"""The `runbook` command's entry point (also `python -m runbook`).

Start-up allocates tens of thousands of long-lived objects (modules, classes, the widgets of
the first screen) and frees almost none, so the cyclic garbage collector's passes over them
during imports are wasted work: about a tenth of the time to the TUI's first frame. It is
paused while the program loads, and what was loaded is then frozen out of later collections
(`gc.freeze`), which keeps the screen's own collections short for the rest of the session.

`runbook resume` in a terminal forks before anything else is loaded (runbook/launch.py): the
child parses the command line and prepares the incident's view while this process loads the TUI.
"""

import gc
import os
import sys


def main() -> None:
    gc.disable()
    try:
        from runbook.launch import Preparation, forking_allowed, guarded, resume_requested

        argv = sys.argv[1:]
        child = None
        if resume_requested(argv) and os.isatty(0) and os.isatty(1) and forking_allowed():
            child = Preparation.fork(lambda: _cli_main(argv))
    finally:
        gc.freeze()
        gc.enable()
    if child is not None and guarded(child.run):
        return  # the TUI ran on the child's view; otherwise the command runs the usual way
    from runbook.cli import main as cli_main

    cli_main()


def _cli_main(argv: list[str]) -> None:
    """The CLI in resume's child: it prepares a resume, and gives up on anything else (cli/__init__.py)."""
    from runbook.cli import cli

    cli.main(args=argv, prog_name="runbook")


if __name__ == "__main__":
    main()
