"""Building the scoring parts from the config: the only code under ``scoring/`` that reads it.

``SCORE.*`` is the offline protocol (evaluation, ``tools/test.py``, re-scoring); ``STREAM.*``
is the protocol of live scoring (``tools/score_video.py``): a causal normaliser, causal
smoothing and the alarm rule. Both are written to every run's ``config.yaml``.

Example:
    >>> scorer = build_scorer(cfg)                                   # (pred, frame) -> (N,)
    >>> offline = build_pipeline(cfg, scorer.higher_is_anomalous)    # SCORE.*
    >>> live = build_stream_pipeline(cfg, scorer.higher_is_anomalous)  # STREAM.*, causal
"""
from __future__ import annotations

from pyanomaly.config import CfgNode, cfg_to_dict
from pyanomaly.errors import ConfigError
from pyanomaly.networks.fast import FastPath, set_fast_path
from pyanomaly.registry import NORMALIZERS, SCORERS, accepted_arguments, build, registered_names

from .pipeline import ScorePipeline
from .video import VideoScorer, has_error_map

__all__ = ["build_scorer", "build_normalizer", "build_pipeline", "build_stream_pipeline", "build_video_scorer",
           "check_scorer", "check_method_scorer", "check_maps", "describe_error"]


def build_scorer(cfg: CfgNode):
    """The raw-error scorer named by ``SCORE.ERROR`` (``(pred, frame) -> (N,)``); it gets
    ``SCORE.PIXEL_THRESHOLD`` as ``threshold`` and ``SCORE.TOP_FRACTION`` as ``top_fraction``
    when it takes them."""
    try:
        return build(SCORERS, dict(type=cfg.SCORE.ERROR, max_val=cfg.SCORE.MAX_VAL, patch=cfg.SCORE.PATCH),
                     threshold=cfg.SCORE.PIXEL_THRESHOLD, top_fraction=cfg.SCORE.TOP_FRACTION)
    except ValueError as exc:
        raise ConfigError(f"SCORE.ERROR {cfg.SCORE.ERROR}: {exc}") from None


def build_normalizer(spec: CfgNode | dict, key: str = "SCORE.NORMALIZE"):
    """The normaliser of a spec ``{type: NAME, <arguments>}`` (``key`` names it in errors)."""
    spec = cfg_to_dict(spec) if isinstance(spec, CfgNode) else dict(spec)
    try:
        return build(NORMALIZERS, spec)
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"{key} {spec}: {exc}") from None


def build_pipeline(cfg: CfgNode, higher_is_anomalous: bool) -> ScorePipeline:
    """The offline protocol of ``SCORE.*`` for errors of the given direction."""
    s = cfg.SCORE
    return ScorePipeline(build_normalizer(s.NORMALIZE), higher_is_anomalous, s.SMOOTH_SIGMA, s.SMOOTH_MODE, s.MISSING)


def build_stream_pipeline(cfg: CfgNode, higher_is_anomalous: bool) -> ScorePipeline:
    """The live protocol of ``STREAM.*``: its normaliser must be causal; smoothing is one-sided."""
    pipeline = ScorePipeline(build_normalizer(cfg.STREAM.NORMALIZE, "STREAM.NORMALIZE"), higher_is_anomalous,
                             cfg.STREAM.SMOOTH_SIGMA, "causal", "exclude")
    if not pipeline.causal:
        raise ConfigError(f"STREAM.NORMALIZE {cfg.STREAM.NORMALIZE.type!r} needs the whole video before it scores a "
                          "frame; a stream needs a causal normaliser ('causal' or 'none')")
    return pipeline


def build_video_scorer(cfg: CfgNode, model, device, pipeline: ScorePipeline | None = None,
                       scorer=None, maps: str | None = None) -> VideoScorer:
    """The scoring loop of ``model``: ``SCORE.ERROR``'s scorer, the offline pipeline unless one
    is given, ``TEST.PRECISION``; with ``TEST.FUSED_UPDATE`` the model's fast path is switched
    to the compiled LSTM update (the switch is held by the model from then on). ``maps``: the
    setting that asks for per-pixel error maps (``"EVAL.SAVE_MAPS"``, ``"--maps"``), named in the
    error if the scorer has none; None: no maps."""
    scorer = scorer if scorer is not None else build_scorer(cfg)
    pipeline = pipeline if pipeline is not None else build_pipeline(cfg, scorer.higher_is_anomalous)
    check_scorer(model, scorer, cfg.SCORE.ERROR, cfg.MODEL.NAME)
    if maps is not None:
        check_maps(scorer, cfg.SCORE.ERROR, maps)
    if cfg.TEST.FUSED_UPDATE:
        set_fast_path(model, FastPath(fused=True))
    return VideoScorer(model, scorer, pipeline, device, cfg.TEST.PRECISION, maps=maps is not None)


def check_maps(scorer, error: str, asked_by: str) -> None:
    """Refuse per-pixel maps (asked for by the setting ``asked_by``) from a scorer without
    ``error_map`` (FRAME_ERROR: one number per frame), naming the scorers that have one."""
    if not has_error_map(scorer):
        fit = sorted(n for n in registered_names(SCORERS) if has_error_map(SCORERS.get(n)))
        raise ConfigError(f"{asked_by}: SCORE.ERROR {error} gives one error per frame and no per-pixel map; anomaly "
                          f"maps come from a scorer of a frame or a map ({', '.join(fit)}): turn {asked_by} off")


def check_method_scorer(cfg: CfgNode, model) -> None:
    """:func:`check_scorer` for ``MODEL.NAME``'s method and ``SCORE.ERROR``'s scorer (methods of the
    anomaly-detection task; the other tasks score no frames), and :func:`check_maps` with
    ``EVAL.SAVE_MAPS``."""
    if getattr(model, "task", "anomaly_detection") == "anomaly_detection":
        scorer = build_scorer(cfg)
        check_scorer(model, scorer, cfg.SCORE.ERROR, cfg.MODEL.NAME)
        if cfg.EVAL.SAVE_MAPS:
            check_maps(scorer, cfg.SCORE.ERROR, "EVAL.SAVE_MAPS")


def check_scorer(model, scorer, error: str, method: str) -> None:
    """Refuse a scorer that reads something else than the method predicts (a frame scorer
    such as PSNR given an anomaly map, or a cell scorer given a frame), naming both."""
    output, reads = getattr(model, "output", "frame"), getattr(scorer, "reads", "frame")
    if output != reads:
        fit = sorted(n for n in registered_names(SCORERS) if getattr(SCORERS.get(n), "reads", "frame") == output)
        words = {"frame": "a predicted frame", "anomaly_map": "an anomaly map", "frame_error": "an error per frame"}
        raise ConfigError(f"SCORE.ERROR {error} reads {words.get(reads, reads)}, but {method} gives "
                          f"{words.get(output, output)}; use one of {', '.join(fit)}")


def describe_error(cfg: CfgNode) -> str:
    """What the raw error of ``SCORE.*`` is, in words (written into every protocol)."""
    s = cfg.SCORE
    where = f" (worst {s.PATCH}x{s.PATCH} patch)" if s.PATCH > 0 else " (frame mean)"
    if getattr(SCORERS.get(s.ERROR), "reads", "frame") == "anomaly_map":
        cells = f"{s.PATCH}x{s.PATCH} cells" if s.PATCH > 0 else "the frame as one cell"
        top = f"mean of the top {s.TOP_FRACTION:g} of" if "top_fraction" in (accepted_arguments(SCORERS.get(s.ERROR))
                                                                              or ()) else "largest of"
        where = f" (anomaly map: {top} its means over {cells})"
    if getattr(SCORERS.get(s.ERROR), "reads", "frame") == "frame_error":
        where = " (the method's own error per frame)"
    if "threshold" in (accepted_arguments(SCORERS.get(s.ERROR)) or ()):
        where = f", pixels with |error| > {s.PIXEL_THRESHOLD * s.MAX_VAL:g}" + where
    return s.ERROR + where + (f", {cfg.TEST.PRECISION} prediction" if cfg.TEST.PRECISION != "fp32" else "")
