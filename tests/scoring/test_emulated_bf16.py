"""TEST.PRECISION: bf16 where the CPU only emulates it is warned about, once."""
import logging

import pytest
import torch

from pyanomaly.scoring import video
from pyanomaly.scoring.video import inference_precision, native_bf16_cpu


@pytest.fixture
def cpuinfo(tmp_path, monkeypatch):
    def write(flags: str | None):
        path = tmp_path / "cpuinfo"
        if flags is not None:
            path.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 avx2 {flags}\n")
        monkeypatch.setattr(video, "CPUINFO", path)
        native_bf16_cpu.cache_clear()
        video._warn_emulated_bf16.cache_clear()
    yield write
    native_bf16_cpu.cache_clear()
    video._warn_emulated_bf16.cache_clear()


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_emulated_bf16_is_warned_once(cpuinfo, caplog):
    cpuinfo("fma")
    assert native_bf16_cpu() is False
    with caplog.at_level(logging.WARNING, logger="pyanomaly"):
        for _ in range(3):
            with inference_precision("bf16", torch.device("cpu")):
                y = torch.nn.functional.linear(torch.ones(2, 4), torch.ones(3, 4))
        with inference_precision("fp32", torch.device("cpu")):
            pass
    assert y.dtype == torch.bfloat16
    assert len(_warnings(caplog)) == 1 and "without native bfloat16" in _warnings(caplog)[0]
    assert "TEST.PRECISION fp32" in _warnings(caplog)[0]


@pytest.mark.parametrize("flags,native", [("avx512_bf16", True), ("amx_bf16 amx_tile", True), (None, None)])
def test_native_or_unknown_bf16_is_not_warned(cpuinfo, caplog, flags, native):
    cpuinfo(flags)
    assert native_bf16_cpu() is native
    with caplog.at_level(logging.WARNING, logger="pyanomaly"):
        with inference_precision("bf16", torch.device("cpu")):
            pass
    assert _warnings(caplog) == []
