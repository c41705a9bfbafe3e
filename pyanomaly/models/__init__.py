"""Methods: networks + loss + how a video is predicted (see :mod:`pyanomaly.models.base`)."""
from .base import VADModel
from .frame_predictor import FramePredictor
from .prednet_predictor import PredNetPredictor
from .anopcn import AnoPCN
from . import classifier, forecaster  # noqa: F401  registers Classifier and Forecaster
from . import losses

__all__ = ["VADModel", "FramePredictor", "PredNetPredictor", "AnoPCN"]
