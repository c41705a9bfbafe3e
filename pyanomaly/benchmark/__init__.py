"""Speed of the machine, the networks and the data path, measured in one run.

Every model figure is set against the machine's own measured limit, so that "fast" means
"close to what this hardware can do", and every optimisation is set against the plain code
it replaced, in the same run (timings on shared machines are noisy: variants are timed
interleaved, repeated, and medians reported):

* machine: GFLOP/s of a large matmul (fp32, bf16) and of a 3x3 convolution, at the start
  and at the end of the run;
* per named model and variant (``reference`` = the plain fp32 code, ``fp32`` and ``bf16`` =
  the optimised inference path, ``fused``/``fused-bf16`` = the same with the LSTM update as one
  compiled pass, ``compile``/``compile-bf16`` = ``torch.compile`` of the plain code) and per
  test mode (``window``: each frame predicted from a fresh state over the ``clip_length - 1``
  frames before it; ``stream``: one carried state): model FLOPs per
  frame (``torch.utils.flop_counter``, the plain code's count), frames/s, streaming latency
  per frame (p50/p95), training clips/s, peak memory, utilisation = achieved GFLOP/s /
  matmul GFLOP/s;
* frames/s against ``clip_length`` (4, 10, 20) in both modes;
* an ablation: PredNet-KITTI frames/s with each optimisation of the fast path switched off;
* bf16 against fp32 on a briefly trained synthetic model: prediction change, PSNR change, AUC;
* data: decoded frames/s from a JPEG folder and from a video file, without and with the cache;
* onnxruntime beside PyTorch: frames/s of the Ped2 recipes' ONNX export and its largest
  difference from PyTorch;
* multi-stream: N live streams through one model (their frames batched) against one process
  per stream, and how many 10 frames/s streams are scored in real time.

One file per concept: ``timing`` (interleaved timing, memory, FLOPs), ``machine`` (the
limits), ``models`` (the benchmark models and their figures), ``numerics`` (bf16 against
fp32), ``data`` (the data path and end-to-end streaming), ``runtimes`` (onnxruntime beside
PyTorch), ``multistream`` (several streams in one process), ``concurrency`` (jobs side by
side), ``gpu_check`` (the GPU path end to end), ``report`` (a run and its tables).

Example:
    >>> from pyanomaly.benchmark import run_benchmarks, format_report
    >>> print(format_report(run_benchmarks(models=["prednet_synthetic"], ablation=False, data=False)))
"""
from .data import SHARED_DATA, benchmark_data, stream_end_to_end
from .machine import environment, machine_limits
from .models import (ABLATION, ABLATION_RUNS, MODEL_CONFIGS, VARIANTS, BenchConfig, ablation, benchmark_model,
                     build_model, clip_length_sweep)
from .multistream import multi_stream
from .numerics import precision_check
from .report import Options, format_report, run_benchmarks
from .runtimes import ONNXRUNTIME_MODELS, onnxruntime_rows
from .timing import count_flops, interleaved, peak_memory_mb, tune_malloc

__all__ = ["ABLATION", "ABLATION_RUNS", "MODEL_CONFIGS", "ONNXRUNTIME_MODELS", "SHARED_DATA", "VARIANTS", "BenchConfig", "Options", "ablation",
           "benchmark_data", "benchmark_model", "build_model", "clip_length_sweep", "count_flops", "environment",
           "format_report", "interleaved", "machine_limits", "multi_stream", "onnxruntime_rows", "peak_memory_mb",
           "precision_check", "run_benchmarks",
           "stream_end_to_end", "tune_malloc"]
