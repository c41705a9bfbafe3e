"""Methods: networks + loss + how a video is predicted (see :mod:`pyanomaly.models.base`)."""
from .base import VADModel
from .frame_predictor import FramePredictor
from .prednet_predictor import PredNetPredictor
from .anopcn import AnoPCN
from .classifier import Classifier
from .forecaster import Forecaster
from .streamer import Streamer
from .baseline import Baseline
from .copy_last import CopyLast
from .flow_speed import FlowSpeed
from .local_appearance import LocalAppearance
from .flow_predictor import FlowPredictor
from .flow_conditioned import FlowConditionedPredictor
from .fusion import Fusion
from .object_cue import ObjectCue
from .reconstructor import Reconstructor
from . import losses

__all__ = ["VADModel", "FramePredictor", "PredNetPredictor", "AnoPCN", "Forecaster", "Classifier", "Streamer",
           "Baseline", "CopyLast", "FlowSpeed", "LocalAppearance", "ObjectCue", "FlowPredictor",
           "FlowConditionedPredictor", "Reconstructor"]
