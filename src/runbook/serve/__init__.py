"""`runbook serve`: a long-running server for what reaches runbook over the network (alert
intake from Alertmanager). It drives the engine like the TUI and the CLI do; see serve/app.py."""

from __future__ import annotations

import os
import stat

from runbook.errors import RunbookError, UsageError

MIN_TOKEN = 16


class ServeError(RunbookError):
    """The server cannot start: its address is taken or not allowed."""

    exit_code = 8


def read_token(variable: str, token_file: str | None, what: str) -> str:
    """The bearer token from `token_file` (owner-only, like an SSH key) or the environment."""
    if token_file:
        try:
            info = os.stat(token_file)
            if stat.S_ISDIR(info.st_mode):
                raise UsageError(f"the {what} file {token_file} is a directory")
            if info.st_mode & 0o077:
                raise UsageError(f"the {what} file {token_file} can be read by others (mode "
                                 f"{stat.S_IMODE(info.st_mode):o}); run chmod 600 {token_file}")
            with open(token_file, encoding="utf-8") as handle:
                token = handle.read().strip()
        except UnicodeDecodeError:
            raise UsageError(f"the {what} file {token_file} is not UTF-8 text") from None
        except OSError as exc:
            raise UsageError(f"cannot read the {what} file {token_file}: {exc.strerror or exc}") from None
        source = token_file
    else:
        token = (os.environ.get(variable) or "").strip()
        source = variable
        if not token:
            raise UsageError(f"no {what}: set {variable} or pass --token-file FILE (owner-only); make one with "
                             "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`")
    if len(token) < MIN_TOKEN:
        raise UsageError(f"the {what} in {source} is {len(token)} characters; use at least {MIN_TOKEN} "
                         "(random, e.g. secrets.token_urlsafe(32))")
    if any(ch.isspace() or not ch.isprintable() for ch in token):
        raise UsageError(f"the {what} in {source} holds spaces or control characters")
    return token
