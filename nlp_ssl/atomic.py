"""Outputs that are never half-written, never leak temporary folders, and never replace what another made.

A `kill -9` may strike at any moment, so every output is either absent, the previous complete version, or
the new complete version:

- `atomic_dir(final)`: build a directory under `.NAME.tmp-PID` beside it; when the block succeeds, write the
  completeness marker last and move the whole directory into place (two renames; a kill between them leaves
  `.NAME.old-PID`, which the next run moves back).
- `atomic_write_text(path)`: the same for one file (`.NAME.tmp-PID`, then one rename).
- `scratch_dir(beside)`: a work folder `.NAME.work-PID` removed at the end.
- `clean_stale(final)`: what killed runs left beside `final` (their PID is no longer alive) is removed (or, for
  `.old-PID`, restored) by the next run that writes `final`, so nothing leaks for ever.
- `write_marker` / `is_complete`: a manifest (`nlp_ssl_complete.json`: every file and its size) written last
  into a directory whose files are written in place (checkpoints, the pretraining output); "finished" means the
  marker is there and every file it lists has its size, not that some file exists.
- `check_output_target`: before any work, refuse an output path that is a file, is unwritable, sits on a full
  disk, or is a non-empty folder that the same command did not write (unless `overwrite`).

No library does this for directories (`tempfile` cleans up only on a normal exit), hence this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Iterable, Iterator

from nlp_ssl.errors import OutputError
from nlp_ssl.faults import fault_point
from nlp_ssl.layout import RUN_INFO_FILE

MARKER = "nlp_ssl_complete.json"
MIN_FREE_BYTES = 64 << 20  # refuse to start on a disk with less free space than this
_STALE = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old|work)-(?P<pid>\d+)$")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def clean_stale(final: str | Path) -> list[Path]:
    """Remove the temporary files/folders that killed runs left beside `final`; restore `final` from a
    `.old-PID` copy when a kill struck between the two renames of `atomic_dir`. Returns what was removed."""
    final = Path(final)
    parent = final.parent
    if not parent.is_dir():
        return []
    removed = []
    for entry in sorted(parent.iterdir()):
        m = _STALE.match(entry.name)
        if not m or m["name"] != final.name or _pid_alive(int(m["pid"])):
            continue
        if m["kind"] == "old" and not final.exists() and not final.is_symlink():
            os.replace(entry, final)  # the previous complete output: put it back
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _manifest(root: Path, files: Iterable[str] | None) -> dict[str, int]:
    if files is None:
        names = [str(p.relative_to(root)) for p in sorted(root.rglob("*")) if p.is_file() and p.name != MARKER]
    else:
        names = sorted(files)
    return {n: (root / n).stat().st_size for n in names}


def write_marker(directory: str | Path, files: Iterable[str] | None = None, **info) -> None:
    """Record `directory` as complete: its files (all, or the relative paths given) with their sizes. Written
    last and atomically, so a directory with a valid marker holds every listed file in full."""
    directory = Path(directory)
    data = {"files": _manifest(directory, files), **info}
    atomic_write_text(directory / MARKER, json.dumps(data, indent=1, sort_keys=True) + "\n")


def refresh_marker(directory: str | Path) -> None:
    """After rewriting one of a complete directory's own files on purpose (a model card), record the files its
    marker lists with their new sizes. Call it only when `is_complete` held before the rewrite."""
    directory = Path(directory)
    data = json.loads((directory / MARKER).read_text(encoding="utf-8"))
    files = data.pop("files")
    write_marker(directory, files=[n for n in files if (directory / n).is_file()], **data)


def remove_marker(directory: str | Path) -> None:
    (Path(directory) / MARKER).unlink(missing_ok=True)


def is_complete(directory: str | Path) -> bool:
    """True when `directory` holds a marker and every file it lists, each with the recorded size."""
    directory = Path(directory)
    try:
        files = json.loads((directory / MARKER).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    for name, size in files.items():
        try:
            if (directory / name).stat().st_size != size:
                return False
        except OSError:
            return False
    return True


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Write a file under a temporary name beside it and rename it into place (never half-written)."""
    path = Path(path)
    clean_stale(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding=encoding) as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(final: str | Path, marker: bool = True) -> Iterator[Path]:
    """Yield a fresh temporary directory beside `final`; on success it replaces `final` as a whole.

    On any exception the temporary directory is removed and `final` is left exactly as it was; after a kill,
    the next `atomic_dir(final)` (or `clean_stale`) removes the leftovers. With `marker`, the completeness
    marker is written last, before the move.

    Example:
        >>> with atomic_dir("runs/tok") as tmp:                # doctest: +SKIP
        ...     (tmp / "vocab.txt").write_text("...")
    """
    final = Path(final)
    tmp = _fresh_sibling(final, "tmp")
    try:
        yield tmp
        if marker:
            write_marker(tmp)
        fault_point("atomic_dir_before_rename")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = final.parent / f".{final.name}.old-{os.getpid()}"
    if final.exists() or final.is_symlink():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink(missing_ok=True)


def _fresh_sibling(path: Path, tag: str) -> Path:
    """An empty folder `.NAME.TAG-PID` beside `path`, after removing what killed runs left there (`clean_stale`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    sib = path.parent / f".{path.name}.{tag}-{os.getpid()}"
    shutil.rmtree(sib, ignore_errors=True)
    sib.mkdir()
    return sib


@contextlib.contextmanager
def scratch_dir(beside: str | Path) -> Iterator[Path]:
    """A work folder `.NAME.work-PID` beside `beside`, removed at the end (and by the next run after a kill)."""
    work = _fresh_sibling(Path(beside), "work")
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def written_by(directory: str | Path) -> str | None:
    """The nlp-ssl command recorded in `directory/run_info.json`, or None."""
    try:
        return json.loads((Path(directory) / RUN_INFO_FILE).read_text(encoding="utf-8")).get("command")
    except (OSError, ValueError, AttributeError):
        return None


def check_output_target(path: str | Path, command: str, overwrite: bool = False, key: str = "output_dir",
                        accept: Iterable[str] = (), files_ok: bool = False) -> None:
    """Refuse, before any work, an output directory that cannot or must not be written.

    Refused: a path that is a file; a parent that cannot be created or written; a disk with less than
    MIN_FREE_BYTES free; a non-empty folder that is not a previous output of `command` (its run_info.json
    names another command or none), unless `overwrite`. `accept`: other commands whose outputs may be replaced.
    `files_ok`: a folder of files that no nlp-ssl command wrote is accepted (the command adds its own files to
    it), while another command's output is still refused.
    """
    path = Path(path)
    fix = f"choose another {key}"
    if path.is_file() or (path.exists() and not path.is_dir()):
        raise OutputError(f"{key}: {path} is a file, not a folder; {fix} (nothing was changed)")
    existing = path if path.is_dir() else next((p for p in path.parents if p.exists()), Path("."))
    if not existing.is_dir():
        raise OutputError(f"{key}: {path} cannot be created because {existing} is a file; {fix}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{key}: no permission to write in {existing}; {fix} or fix the folder's permissions")
    free = shutil.disk_usage(existing).free
    if free < MIN_FREE_BYTES:
        raise OutputError(f"{key}: the disk holding {existing} is full ({free >> 20} MiB free); free some space "
                          f"or {fix}")
    if path.is_dir() and any(os.scandir(path)) and not overwrite:
        owner = written_by(path)
        if owner not in (command, *accept) and not (files_ok and owner is None):
            what = f"the output of `nlp-ssl {owner}`" if owner else "files that nlp-ssl did not write"
            raise OutputError(f"{key}: {path} already holds {what}; `nlp-ssl {command}` replaces only its own "
                              f"outputs. Set overwrite=true to replace it, or {fix}")


def refuse_input_overlap(output: str | Path, inputs: dict[str, str | list | None], data_dir: str | None = None) -> None:
    """Refuse an output folder that is, contains or lies inside one of the run's input folders (replacing it would
    destroy them; writing into them would change them)."""
    out = Path(output).resolve()
    for key, value in inputs.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if not item or "://" in str(item):
                continue
            p = Path(item)
            if not p.is_absolute() and data_dir and not p.exists():
                p = Path(data_dir) / p
            p = p.resolve()
            if p == out or out in p.parents or p in out.parents:
                raise OutputError(f"output_dir: {output} holds this run's input ({key}: {item}); writing there would "
                                  "destroy it. Choose another output_dir (nothing was changed)")


def check_output_file(path: str | Path, key: str) -> None:
    """Refuse, before any work, an output file path that is a folder, in an unwritable folder or on a full disk."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{key}: {path} is a folder; give a file name (e.g. {path / 'predictions.json'})")
    parent = path.parent
    if not parent.is_dir():
        raise OutputError(f"{key}: the folder {parent} does not exist; create it or choose another path")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputError(f"{key}: no permission to write {path}; choose another path")
    free = shutil.disk_usage(parent).free
    if free < MIN_FREE_BYTES:
        raise OutputError(f"{key}: the disk holding {parent} is full ({free >> 20} MiB free); free some space")

