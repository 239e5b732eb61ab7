"""How much memory this process can still take, and refusing what would not fit before it is allocated.

Linux says it in ``/proc/meminfo`` (``MemAvailable``: free memory plus caches it can drop) and, inside a
container, in the cgroup's limit less its usage; elsewhere ``os.sysconf`` gives the free pages, else all of
them. No dependency (psutil) is needed for that.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["SMALL", "available", "check", "gigabytes", "short_of"]

SMALL = 16 * 2**20  # needs up to this are not checked: asking the system costs ~50 us, more than a small fit
_UNKNOWN = 10**12  # where the system says nothing: 1 TB, so that only absurd sizes are refused
_MEMINFO = Path("/proc/meminfo")
_CGROUP = Path("/sys/fs/cgroup")


def available() -> int:
    """Bytes of memory this process could still allocate, as the system says now."""
    known = [amount for amount in (_meminfo_available(), _cgroup_room()) if amount is not None]
    if known:
        return min(known)
    for pages in ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES"):
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf(pages)
        except (AttributeError, ValueError, OSError):
            continue
    return _UNKNOWN


def short_of(needed: int) -> int | None:
    """The bytes available now where ``needed`` is more, else None (for up to :data:`SMALL`, without asking)."""
    if needed <= SMALL:
        return None
    room = available()
    return room if needed > room else None


def check(needed: int, what: str) -> None:
    """Refuse, with a ValueError, ``needed`` bytes for ``what`` (a phrase like "these weights") where the
    memory available now is less."""
    room = short_of(needed)
    if room is not None:
        raise ValueError(f"{what} needs {gigabytes(needed)} GB of memory, more than the {gigabytes(room)} GB "
                         f"available on this machine now")


def gigabytes(amount: int) -> str:
    """Bytes as gigabytes for a message: ``12.3``, or ``1.2e400`` past float's range."""
    if amount < 10**300:
        return f"{amount / 1e9:,.1f}"
    digits = str(amount // 10**9)
    return f"{digits[0]}.{digits[1]}e{len(digits) - 1}"


def _meminfo_available() -> int | None:
    try:
        for line in _MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    """A cgroup v2 limit less what the group uses already (None: no limit, or not Linux)."""
    try:
        limit = (_CGROUP / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((_CGROUP / "memory.current").read_text()))
    except (OSError, ValueError):
        return None
