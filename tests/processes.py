"""What the crash tests ask Linux about processes (``/proc``), shared by the test files."""

from __future__ import annotations

__all__ = ["CHILDREN_OF", "children", "running"]

#: Where Linux lists a process's children (one task: the test's processes are single-threaded
#: where it matters).
CHILDREN_OF = "/proc/{pid}/task/{pid}/children"


def children(pid: int) -> set[int]:
    """The pids of ``pid``'s children (none when it is gone, or outside Linux)."""
    try:
        with open(CHILDREN_OF.format(pid=pid), encoding="ascii") as file:
            return {int(part) for part in file.read().split()}
    except OSError:
        return set()


def running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (a dead worker nobody has reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as file:
            state = file.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
