"""Small helpers shared across the package: atomic file writes, seeding, devices."""
from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from pyanomaly.errors import ConfigError


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename the temp file over ``path`` (fsynced).

    A crash at any moment leaves either the old file or the new one, never a partial file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); give it the mode open() would have, so a run
        # directory stays readable by whoever may read the user's other files.
        with contextlib.suppress(OSError):  # a file system without modes
            os.fchmod(fd, 0o666 & ~_UMASK)
    finally:
        os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read_umask() -> int:
    mask = os.umask(0o022)  # reading it means setting it: done once, at import, before any thread writes
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)
    atomic_write(path, write)


@contextlib.contextmanager
def atomic_folder(out: str | Path, marker: str):
    """Yield a temporary folder beside ``out``; when the block succeeds it becomes ``out`` in one rename.

    A folder appears complete or not at all. ``out`` must not exist or be empty. ``marker``: a
    file, relative to the folder, that only a complete one holds: when another process renamed
    its own folder first, ours is dropped. The temporary folder is ``.<name>.<host>.<pid>.partial``:
    one left by a killed process (``kill -9``) is removed by the next call for ``out`` on that
    host once its process is gone. Folders get the modes ``mkdir`` gives (0o777 less the umask).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in _stale_partials(out):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = out.parent / f".{out.name}.{_HOST}.{os.getpid()}.partial"
    if tmp.exists():  # left by an earlier process that had this pid: not in use
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        if out.exists():
            if any(out.iterdir()):
                raise FileExistsError(f"{out} exists and is not empty")
            out.rmdir()
        try:
            os.rename(tmp, out)
        except OSError:
            if not (out / marker).is_file():  # another process did not win the race
                raise
            shutil.rmtree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


_HOST = "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname()) or "host"


def _stale_partials(out: Path) -> list[Path]:
    """Temporary folders of :func:`atomic_folder` for ``out`` whose process (on this host) has ended."""
    prefix = f".{out.name}.{_HOST}."
    stale = []
    for entry in out.parent.iterdir():
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(".partial") and entry.is_dir()):
            continue
        pid = name[len(prefix):-len(".partial")]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            stale.append(entry)
    return stale


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> cuda when available else cpu; ``"cuda"`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("SYSTEM.DEVICE is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device(name)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. under ``taskset`` or a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def choose_threads(configured: int) -> tuple[int, str] | None:
    """The intra-op thread count to use and why, or None to leave torch's own choice.

    ``configured`` > 0 (``SYSTEM.NUM_THREADS``) wins; else ``OMP_NUM_THREADS`` in the
    environment (torchrun sets it) is left alone; else the usable cores, shared among the
    processes torchrun started on this machine (``LOCAL_WORLD_SIZE``).
    """
    if configured > 0:
        return configured, "SYSTEM.NUM_THREADS"
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    local = max(int(os.environ.get("LOCAL_WORLD_SIZE", "1")), 1)
    cores = usable_cores()
    return max(cores // local, 1), f"{cores} usable core(s)" + (f" shared by {local} processes" if local > 1 else "")
