"""Evaluation tasks, registered in ``TASKS``: what "how good is this method" means for it.

A method declares its task by name (``task = "anomaly_detection"`` on the class, the
default of :class:`~pyanomaly.models.base.VADModel`); the task's ``evaluate(model, dataset,
device, out_dir) -> metrics`` runs the method on a split and writes ``metrics.json`` and the
task's plots and files. Methods compute nothing of their own evaluation.
"""
from .anomaly import AnomalyDetection
from .classification import Classification
from .forecasting import Forecasting

__all__ = ["AnomalyDetection", "Forecasting", "Classification"]
