"""Optical flow: dense flow between consecutive frames (:mod:`.optical`, OpenCV's classical
algorithms, no weights to fetch) and its colour-wheel picture (:mod:`.colour`)."""
from .colour import flow_to_rgb
from .optical import FLOW_ALGORITHMS, OpticalFlow, to_gray_uint8

__all__ = ["OpticalFlow", "FLOW_ALGORITHMS", "flow_to_rgb", "to_gray_uint8"]
