"""Deployment: a trained method's network exported to ONNX and run by onnxruntime.

* :mod:`.graphs`: which network of each method is exported, as what graph, and the stand-in
  network that runs the graph in its place;
* :mod:`.onnx`: :func:`~.onnx.export_onnx` (export, checked against PyTorch),
  :func:`~.onnx.onnxruntime_method` (the method with its network run by onnxruntime).

``pyanomaly export --format onnx CHECKPOINT OUT.onnx`` and ``pyanomaly score --backend
onnxruntime`` use them (``docs/export.md``).
"""
