"""Timing, memory and FLOP counting for the benchmarks.

Timings on shared machines are noisy: callables are timed in turns (:func:`interleaved`) and
medians reported; memory is the process's peak resident set (or CUDA max allocated) around
one call; FLOPs come from ``torch.utils.flop_counter``.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import resource
import statistics
import time
from contextlib import nullcontext
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from pyanomaly.networks.fast import FastPath, using_fast_path


def _sync(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def _timed(fn: Callable[[], object], sync: Callable[[], None]) -> float:
    t = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t


def interleaved(fns: dict[str, Callable[[], object]], repeats: int, sync: Callable[[], None] = lambda: None,
                warmup: bool = True) -> dict[str, list[float]]:
    """Seconds per call of each function, timed in turns (``a b c a b c ...``) so that a change
    in the machine's load hits every variant alike."""
    if warmup:
        for fn in fns.values():
            fn()
        sync()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            times[k].append(_timed(fn, sync))
    return times


def _median_time(fn: Callable[[], object], repeats: int, sync: Callable[[], None] = lambda: None) -> float:
    return statistics.median(interleaved({"f": fn}, repeats, sync)["f"])


def tune_malloc(enable: bool = True) -> bool:
    """Keep freed memory in the process (glibc ``mallopt``): no ``mmap``/page faults per tensor.

    torch allocates CPU tensors with ``malloc``; glibc serves big blocks with ``mmap`` and
    returns them at ``free``, so every large temporary of a step costs fresh page faults (at
    256x256 this halves the ConvLSTM's speed). ``enable=False`` restores glibc's defaults.
    Returns False where there is no glibc.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4
        ok = libc.mallopt(m_mmap_max, 0 if enable else 65536) == 1
        ok = ok and libc.mallopt(m_trim_threshold, 2 ** 30 if enable else 128 * 1024) == 1
        if not enable:
            libc.malloc_trim(0)  # hand back what was kept, so that the default behaviour shows
        return ok
    except (OSError, AttributeError):
        return False


def _reset_peak_rss() -> None:  # VmHWM := current RSS
    try:  # Linux: "5" resets the peak resident set size of the process
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_rss_mb() -> float:
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_memory_mb(fn: Callable[[], object], device: torch.device) -> tuple[float, float]:
    """``(peak, before)`` memory in MiB around one call of ``fn``: CUDA max allocated, or on
    CPU the process's resident set (malloc's kept memory handed back first, so that the peak
    is what ``fn`` needs on top of what is live; it includes torch itself, ~0.5 GB)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device) / 2 ** 20
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) / 2 ** 20, before
    tuned = tune_malloc(False)
    try:
        _reset_peak_rss()
        before = _peak_rss_mb()
        fn()
        return _peak_rss_mb(), before
    finally:
        if tuned:
            tune_malloc(True)


def count_flops(fn: Callable[[], object], executed: bool = False, model: torch.nn.Module | None = None) -> int:
    """Floating-point operations of one call of ``fn`` (convolutions and matmuls).

    ``model`` (the one ``fn`` runs): by default counted on its plain code: the model's FLOPs,
    the same for every variant (the figure utilisation is computed from). ``executed``: on
    the optimised path as it runs (which skips provably-zero work and computes the upsampled
    part of PredNet's gates on the small map), with prepacking off so that the counter sees
    its convolutions. The model's own switches are restored after the count.
    """
    switches = FastPath(packed=False) if executed else FastPath.reference()
    held = using_fast_path(model, switches) if model is not None else nullcontext()
    with held, FlopCounterMode(display=False) as counter:
        with torch.no_grad():
            fn()
    return counter.get_total_flops()
