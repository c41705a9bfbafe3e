"""The machine's own limit (large matmul and 3x3 convolution GFLOP/s) and its description."""
from __future__ import annotations

import os
import platform
import time

import torch

from .timing import _median_time, _sync


def machine_limits(device: torch.device, repeats: int = 5, n: int = 2048) -> dict:
    """Achieved GFLOP/s of an ``n x n`` matmul (fp32, bf16) and a 3x3 conv (fp32 NCHW/NHWC, bf16 NHWC)."""
    out, sync = {}, _sync(device)
    for dtype, name in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
        out[f"matmul_{name}_gflops"] = 2 * n ** 3 / _median_time(lambda: a @ b, repeats, sync) / 1e9
    x = torch.randn(8, 64, 128, 128, device=device)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1, bias=False).to(device)
    flops = 2 * 8 * 64 * 64 * 9 * 128 * 128
    with torch.inference_mode():
        for name, fmt, dtype in (("conv3x3_fp32_nchw", torch.contiguous_format, torch.float32),
                                 ("conv3x3_fp32_nhwc", torch.channels_last, torch.float32),
                                 ("conv3x3_bf16_nhwc", torch.channels_last, torch.bfloat16)):
            xc, cc = x.to(dtype=dtype, memory_format=fmt), conv.to(dtype=dtype, memory_format=fmt)
            out[f"{name}_gflops"] = flops / _median_time(lambda: cc(xc), repeats, sync) / 1e9
    return out


def environment(device: torch.device) -> dict:
    cpu = platform.processor()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    env = {"torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
           "cpu": cpu, "cores": os.cpu_count(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "device": str(device), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
           "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        # torch's defaults: cuDNN convolutions in fp32 use TensorFloat-32, matmuls do not
        env["tf32"] = {"conv": torch.backends.cudnn.allow_tf32, "matmul": torch.backends.cuda.matmul.allow_tf32}
    return env


def fp32_limit(limits: dict) -> float:
    """The best fp32 rate of ``machine_limits``: a matmul or a convolution, whichever ran faster (on
    a GPU cuDNN runs fp32 convolutions in TensorFloat-32 by default, faster than an fp32 matmul)."""
    return max(v for k, v in limits.items() if "_fp32" in k)


def _load() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []
