"""The `runbook` command's entry point (also `python -m runbook`).

Start-up allocates tens of thousands of long-lived objects (modules, classes, the widgets of
the first screen) and frees almost none, so the cyclic garbage collector's passes over them
during imports are wasted work: about a tenth of the time to the TUI's first frame. It is
paused while the program loads, and what was loaded is then frozen out of later collections
(`gc.freeze`), which keeps the screen's own collections short for the rest of the session.
"""

import gc


def main() -> None:
    gc.disable()
    try:
        from runbook.cli import main as cli_main
    finally:
        gc.freeze()
        gc.enable()
    cli_main()


if __name__ == "__main__":
    main()
