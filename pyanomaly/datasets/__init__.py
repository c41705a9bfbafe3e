"""Datasets: videos with per-frame labels, cut into clips (see :mod:`pyanomaly.datasets.base`)."""
from .base import DatasetError, VideoDataset, VideoRecord
from .build import build_dataset, build_fit_dataset, build_test_dataset, build_train_dataset
from .pseudo import FastObjectAnomalies, FrameSkipAnomalies, PseudoAnomalies
from .avenue import AvenueDataset
from .folder import FolderDataset
from . import kth, moving_digits  # noqa: F401  registers kth, motion_digits and moving_digits
from .shanghaitech import ShanghaiTechDataset
from .synthetic import SyntheticDataset, make_synthetic
from .ucsd import Ped1Dataset, Ped2Dataset

__all__ = ["DatasetError", "VideoDataset", "VideoRecord", "build_dataset", "build_fit_dataset", "build_test_dataset",
           "build_train_dataset",
           "FrameSkipAnomalies", "FastObjectAnomalies", "PseudoAnomalies", "FolderDataset",
           "SyntheticDataset", "make_synthetic", "Ped1Dataset", "Ped2Dataset", "AvenueDataset",
           "ShanghaiTechDataset"]
