"""The flag file the staged-degradation tests start from: video and screen sharing on for everyone."""

from __future__ import annotations

from pathlib import Path

from runbook import flagd


def video_on(folder: Path) -> Path:
    """Write `folder`/flags.json with rtc.video.enabled and rtc.screen-share.enabled true (no
    metadata), as a service's flag file would hold them before any incident; its path."""
    flags = folder / "flags.json"
    data = flagd.empty()
    for name in ("rtc.video.enabled", "rtc.screen-share.enabled"):
        flagd.set_value(data, name, True)
        data["flags"][name].pop("metadata")
    flagd.write_atomic(str(flags), data)
    return flags
