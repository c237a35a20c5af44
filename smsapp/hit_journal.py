"""The redirect's hit journal (pack §9, §16): the durable record each `GET /s/{token}` makes
before its 302, as lines appended to files in the data directory (`<data dir>/hits/`).

A process journals into segments of its own, `<owner>.<seq>.jsonl`, and holds `<owner>.lock`
(an flock) for as long as it lives. The hit writer (smsapp/hit_writer.py) folds the segments
into the database, remembering in the database how far each has been folded, and deletes a
segment once it is folded whole and no longer written. A process that died leaves its lock file
unheld: the next process to look (at start-up, then at each fold) adopts its segments, folds them
and deletes them.

A write that fails part-way (a full disk), or a process that dies in the middle of one, may leave
a last line without its newline, whose hits were never answered: readers stop at the last
newline, and the next write goes to a new segment.

The data directory is the host's own: file locks do not reach across hosts (NFS), so processes
on different hosts need a data directory each, as they do for SQLite.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

SEGMENT_BYTES = 8 * 1024 * 1024  # a segment folded whole past this size is replaced by a new one
READ_BYTES = 1024 * 1024  # the most one fold reads of a segment


@dataclass(frozen=True)
class Chunk:
    """Whole lines of a segment, from byte `start` to byte `end`: `data`, each line ending in a
    newline, kept as read (a fold passes them on whole; only a failed one splits them)."""

    data: bytes
    start: int
    end: int

    @property
    def lines(self) -> list[bytes]:
        return self.data.splitlines()

    @property
    def count(self) -> int:
        return self.data.count(b"\n")


def read_chunk(path: Path, start: int, until: int | None = None) -> Chunk:
    """The whole lines of `path` from byte `start`: about READ_BYTES of them at most (always at
    least one line when one is there), none past byte `until` when it is given. A missing file
    reads as empty."""
    limit = READ_BYTES if until is None else min(READ_BYTES, until - start)
    if limit <= 0:
        return Chunk(b"", start, start)
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return Chunk(b"", start, start)
    with fh:
        fh.seek(start)
        data = fh.read(limit)
        while data and b"\n" not in data and until is None:  # one line longer than the limit
            more = fh.read(READ_BYTES)
            if not more:
                break
            data += more
    end = data.rfind(b"\n") + 1  # 0 when there is no whole line
    return Chunk(data[:end], start, start + end)


class HitJournal:
    """This process's segments in `directory`: appends go to the newest one (`write`)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.owner = uuid.uuid4().hex
        self._lock = open(directory / f"{self.owner}.lock", "wb")
        fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._seq = 0
        self.active = self._segment(0)
        self._fd = os.open(self.active, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._size = 0
        self._torn = False  # a write failed part-way: the next goes to a new segment

    def _segment(self, seq: int) -> Path:
        return self.directory / f"{self.owner}.{seq:06d}.jsonl"

    @property
    def closed(self) -> bool:
        return self._lock.closed

    @property
    def size(self) -> int:
        """Bytes written to the active segment."""
        return self._size

    def write(self, data: bytes) -> None:
        """Append whole lines to the active segment, or raise OSError. Called on the event loop:
        a write into the page cache takes microseconds, less than a hand-off to a thread would.
        A write that fails part-way (a full disk) may leave a torn line, so the next write
        starts a new segment; readers never pass a line without its newline."""
        if self._torn:
            self.roll()
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError:
            self._torn = True
            raise
        self._size += len(data)

    def segments(self) -> list[Path]:
        """This process's segments, oldest first (the active one last)."""
        return sorted(self.directory.glob(f"{self.owner}.*.jsonl"))

    def roll(self) -> Path:
        """Start a new active segment; the previous one (returned) is written no more."""
        old = self.active
        fd = os.open(self._segment(self._seq + 1), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.close(self._fd)
        self._seq += 1
        self.active, self._fd, self._size, self._torn = self._segment(self._seq), fd, 0, False
        return old

    def close(self, *, folded: bool) -> None:
        """Stop writing; when every segment has been folded, remove them and the lock file.
        Otherwise they stay, and the next process adopts them."""
        os.close(self._fd)
        if folded:
            for path in self.segments():
                path.unlink(missing_ok=True)
            (self.directory / f"{self.owner}.lock").unlink(missing_ok=True)
        self._lock.close()  # releases the flock


def orphans(directory: Path, own: str) -> list[Path]:
    """Lock files in `directory` of other owners (alive or not)."""
    return sorted(p for p in directory.glob("*.lock") if p.stem != own)


class Orphan:
    """`with Orphan(lock) as segments:` the segments of a dead process, held so that no other
    process adopts them at the same time; None when their owner still lives (or another
    process is adopting them). `done()` inside removes the lock file once they are folded."""

    def __init__(self, lock: Path) -> None:
        self._lock = lock
        self._fh: BinaryIO | None = None

    def __enter__(self) -> list[Path] | None:
        try:
            fh = open(self._lock, "rb")
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            return None
        self._fh = fh
        return sorted(self._lock.parent.glob(f"{self._lock.stem}.*.jsonl"))

    def done(self) -> None:
        self._lock.unlink(missing_ok=True)

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()
