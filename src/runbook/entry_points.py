"""The installed packages' entry points, remembered between commands.

Finding them means importing importlib.metadata and reading the metadata of every installed
package: about a twentieth of a short command's run. The answer is kept in the cache directory
with a stamp of what it was read from, and asked again when that changes.
"""

from __future__ import annotations

import importlib
import os
import sys

from runbook.settings import read_cache, write_cache

ENTRY_POINTS_CACHE = "entry-points.json"


def installed_entry_points(group: str) -> list[tuple[str, str]]:
    """(name, "module:attr") of the installed packages' entry points in `group`.

    The stamp is each path entry's metadata directories and their entry_points.txt (an
    archive's own time), which any install, upgrade, removal or rewrite changes.
    RUNBOOK_PLUGIN_CACHE=0 turns the cache off, and a cache that cannot be read or written only
    costs the scan.
    """
    if os.environ.get("RUNBOOK_PLUGIN_CACHE", "1") == "0":
        return _scan_entry_points(group)
    try:
        stamp = _path_stamp()
        kept = read_cache(ENTRY_POINTS_CACHE)
        kept = [k for k in kept.get("paths", []) if isinstance(k, dict) and "stamp" in k and "groups" in k] \
            if isinstance(kept, dict) else []
        for known in kept:
            if known["stamp"] == stamp and group in known["groups"]:
                return [tuple(point) for point in known["groups"][group]]
        points = _scan_entry_points(group)
        # one entry per Python path seen lately (`runbook` and `python -m runbook` differ in theirs)
        kept = [{"stamp": stamp, "groups": {group: points}}] + [k for k in kept if k.get("stamp") != stamp][:7]
        write_cache(ENTRY_POINTS_CACHE, {"paths": kept})
        return points
    except Exception:  # the cache is an optimisation: it must never stop a command
        return _scan_entry_points(group)


def load_entry_point(value: str):
    """What importlib.metadata's EntryPoint.load does: import "module" or "module:attr.attr"."""
    module_name, _, attrs = value.split("[", 1)[0].strip().partition(":")
    target = importlib.import_module(module_name.strip())
    for attr in filter(None, attrs.strip().split(".")):
        target = getattr(target, attr)
    return target


def _text_path() -> list[str]:
    """sys.path as text: plugins may append Path or bytes entries, which importlib.metadata
    cannot read."""
    return [entry if isinstance(entry, str) else os.fsdecode(entry) if isinstance(entry, bytes) else str(entry)
            for entry in sys.path]


def _scan_entry_points(group: str) -> list[tuple[str, str]]:
    """What importlib.metadata.entry_points(group=...) answers, over sys.path as text: the first
    distribution of each name wins, as there."""
    import importlib.metadata

    seen, points = set(), []
    for dist in importlib.metadata.distributions(path=_text_path()):
        name = getattr(dist, "_normalized_name", None) or (dist.metadata["Name"] or "").lower()
        if name in seen:
            continue
        seen.add(name)
        points += [(ep.name, ep.value) for ep in dist.entry_points.select(group=group)]
    return points


def _path_stamp() -> list:
    """What the installed metadata on sys.path looks like, cheaply: for a directory, its
    *.dist-info, *.egg-info and *.egg entries with their times and their entry_points.txt's
    (setuptools rewrites that file in place); for an archive, its own time."""
    return [[entry, _entry_stamp(entry)] for entry in _text_path()]


def _entry_stamp(entry: str):
    if not os.path.isdir(entry or "."):
        return _mtime(entry)
    try:
        with os.scandir(entry or ".") as items:
            return sorted([item.name, _mtime(item.path),
                           _mtime(os.path.join(item.path, "EGG-INFO" if item.name.endswith(".egg") else "",
                                               "entry_points.txt"))]
                          for item in items if item.name.endswith((".dist-info", ".egg-info", ".egg")))
    except OSError:
        return None


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None
