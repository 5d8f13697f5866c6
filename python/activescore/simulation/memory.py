"""Memory checked before allocation: what a run needs (from N, the frames kept and the dtype) against what the
machine has, so that a run too large for it is refused in one line instead of being killed by the kernel.

The per-particle cost of a simulation was measured on the compiled core (peak resident memory of a 10⁶-particle
run streaming to a GSD file: 840 B per particle in float64, 755 B in float32: the state, forces, cell list, the
initial draw and the frame being written); the figures below round it up.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Bytes per particle of a running simulation (state, forces, cell list, initial draw, one frame being written).
SIMULATION_BYTES = {"float64": 1024, "float32": 896}


def available_memory() -> int | None:
    """Bytes this process can still allocate: the memory the kernel reports available (``MemAvailable``), or less
    under a cgroup memory limit (a container, a batch job). None where neither can be read."""
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
                break
    except (OSError, ValueError, IndexError):
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            pass
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),  # v1
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            if limit != "max" and int(limit) < 2**60:
                found.append(max(0, int(limit) - int(Path(usage_file).read_text().strip())))
            break
        except (OSError, ValueError):
            continue
    return min(found) if found else None


def simulation_bytes(n_particles: int, components: int, frames_in_memory: int = 0, dtype: str = "float64") -> int:
    """Bytes a simulation of ``n_particles`` needs: the running simulator, plus ``frames_in_memory`` saved frames
    of positions and ``components`` propulsion numbers in float64 (a trajectory returned in memory)."""
    return n_particles * (SIMULATION_BYTES.get(dtype, 1024) + frames_in_memory * (2 + components) * 8)


def gigabytes(n_bytes: float) -> str:
    """``n_bytes`` for a person: "2.05 TB", "3.2 GB", "410 MB"."""
    for unit, size in (("TB", 1e12), ("GB", 1e9)):
        if n_bytes >= size:
            return f"{n_bytes / size:.3g} {unit}"
    return f"{n_bytes / 1e6:.3g} MB"


def check_memory(need: int, what: str, remedy: str) -> None:
    """Refuse a run that needs more memory than the machine has available.

    Parameters
    ----------
    need : int
        The estimate, in bytes.
    what : str
        What needs it, with the sizes it comes from (e.g. ``"n_particles=2000000000 (1024 B per particle)"``).
    remedy : str
        What to change, in the caller's terms (parameter or configuration key names).

    Raises
    ------
    ValueError
        ``"{what} needs about X GB of memory, more than the Y GB available here: {remedy}"``.
    """
    available = available_memory()
    if available is not None and need > available:
        raise ValueError(
            f"{what} needs about {gigabytes(need)} of memory, more than the {gigabytes(available)} available "
            f"here: {remedy}"
        )
