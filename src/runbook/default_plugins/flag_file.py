"""Default flag backend: a flagd JSON flag file (the sandbox file for drills)."""

from __future__ import annotations

import os

from runbook import flagd
from runbook.pluginapi import FlagChange, hookimpl

BACKEND = "flagd-file"


@hookimpl(trylast=True)
def set_flag(settings, name, value, drill):
    path = settings.flag_file(drill)
    previous, current, notes = flagd.update(path, lambda data: flagd.set_value(data, name, value))
    return FlagChange(name, previous, current, BACKEND, os.path.abspath(path), tuple(notes))


@hookimpl(trylast=True)
def set_flag_share(settings, name, value, share, by, normal, drill):
    path = settings.flag_file(drill)
    previous, current, notes = flagd.update(path, lambda data: flagd.set_share(data, name, value, share, by, normal))
    return FlagChange(name, previous, current, BACKEND, os.path.abspath(path), tuple(notes))


@hookimpl(trylast=True)
def get_flag(settings, name, drill):
    return flagd.state(flagd.read(settings.flag_file(drill)), name)


@hookimpl(trylast=True)
def restore_flag(settings, name, previous, drill):
    path = settings.flag_file(drill)

    def change(data):
        target = previous or flagd.recorded_previous(data, name)
        if target is None:
            raise flagd.FlagFileError(f"flag {name} was not changed by runbook, so there is nothing to restore")
        return flagd.restore_value(data, name, target)

    replaced, current = flagd.update(path, change)
    return FlagChange(name, replaced, current, BACKEND, os.path.abspath(path))
