"""Files and folders private to the service's user (0700 folders, 0600 files), whatever the umask.

The data dir holds the store, the chain's state, raw provider statements and key material: none
of it is for other users of the machine. Everything the service creates there goes through
:func:`private_dir` / :func:`private_file` / :func:`write_private`, which set the mode explicitly
(``open``'s mode is filtered by the umask, so a permissive umask would otherwise leave files
0644 or 0666). :func:`tighten` is run at start on what an older version (or another tool) left
behind: it removes the group and other bits of the entries the service owns and reports each
change, so the caller can warn. It never follows a symlink and never adds a bit.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = [
    "PRIVATE_DIR_MODE", "PRIVATE_FILE_MODE", "TIGHTEN_ENTRIES_MAX", "Tightened", "copy_private", "fsync_dir",
    "private_dir", "private_file", "write_private", "tighten",
]

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
# Entries looked at by one tighten() call (a data dir holds tens of files, plus one per statement
# upload): a bound, so a wrong LEDGER_HOME cannot turn the start into a walk of a whole disk.
TIGHTEN_ENTRIES_MAX = 100_000
_OTHERS = 0o077


def private_dir(path: Path) -> Path:
    """``path`` as a folder only its owner can enter (created if missing, parents included; an
    existing folder is made private too)."""
    path.mkdir(parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != PRIVATE_DIR_MODE:
        os.chmod(path, PRIVATE_DIR_MODE)
    return path


@contextmanager
def private_file(path: Path, mode: str = "wb", *, exclusive: bool = False) -> Iterator[IO[Any]]:
    """Open ``path`` for writing as a 0600 file (truncated, or refused if it exists when
    ``exclusive``). ``mode`` is ``wb``, ``w``, ``ab`` or ``a``."""
    if mode not in ("wb", "w", "ab", "a"):
        raise ValueError(f"private_file writes only, got mode {mode!r}")
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode.startswith("a") else os.O_TRUNC)
    if exclusive:
        flags |= os.O_EXCL
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)  # the umask may have removed bits from open's mode, or a file existed
        stream = os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"}))
    except BaseException:
        os.close(fd)
        raise
    with stream:
        yield stream


def write_private(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file beside it, then a rename) as a 0600 file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with private_file(tmp, "wb") as out:
        out.write(data.encode("utf-8") if isinstance(data, str) else data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def copy_private(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` as a 0600 file whose bytes are on disk (fsync) when this
    returns: a rename of ``target`` over a file that matters (:func:`fsync_dir` after it) then
    never leaves a name pointing at data the disk never got, whatever the power does."""
    with source.open("rb") as inp, private_file(target, "wb") as out:
        shutil.copyfileobj(inp, out, 1 << 20)
        out.flush()
        os.fsync(out.fileno())


def fsync_dir(path: Path) -> None:
    """Make the entries of folder ``path`` durable (a rename into it, a new file in it)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Tightened:
    path: Path
    mode_before: int
    mode_after: int


def _tighten_one(path: Path, is_dir: bool, uid: int, out: list[Tightened]) -> None:
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode) or st.st_uid != uid:
        return  # never through a link; another user's file is not ours to change
    before = stat.S_IMODE(st.st_mode)
    after = before & ~_OTHERS
    if is_dir:
        after |= 0o700  # the service must still enter it
    if after != before:
        os.chmod(path, after)
        out.append(Tightened(path, before, after))


def tighten(home: Path, *, files: Iterable[str], dirs: Iterable[str] = (),
            entries_max: int = TIGHTEN_ENTRIES_MAX) -> list[Tightened]:
    """Remove group and other permissions from ``home``, from the files named in ``files`` (names
    directly in ``home``; a name ending in ``*`` is a prefix) and from the folders in ``dirs``
    and everything under them. Returns what was changed. Missing entries are skipped."""
    uid = os.getuid()
    changed: list[Tightened] = []
    if not home.is_dir():
        return changed
    _tighten_one(home, True, uid, changed)
    exact = {n for n in files if not n.endswith("*")}
    prefixes = tuple(n[:-1] for n in files if n.endswith("*"))
    seen = 0
    with os.scandir(home) as it:
        for entry in it:
            seen += 1
            if seen > entries_max:
                break
            if entry.is_file(follow_symlinks=False) and (entry.name in exact or entry.name.startswith(prefixes)):
                _tighten_one(Path(entry.path), False, uid, changed)
    for name in dirs:
        top = home / name
        if not top.is_dir() or top.is_symlink():
            continue
        _tighten_one(top, True, uid, changed)
        for root, subdirs, names in os.walk(top):  # os.walk does not follow links by default
            for sub in subdirs:
                seen += 1
                _tighten_one(Path(root) / sub, True, uid, changed)
            for n in names:
                seen += 1
                _tighten_one(Path(root) / n, False, uid, changed)
            if seen > entries_max:
                break
    return changed
