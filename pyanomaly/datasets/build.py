"""Build a dataset split from the config (the one place that reads ``DATASET.*`` and
``TEST.PSEUDO_ANOMALY``, and the training split's frame budgets ``TRAIN.MAX_FRAMES`` and
``TRAIN.FIT_MAX_FRAMES``)."""
from __future__ import annotations

import inspect
import logging

from yacs.config import CfgNode

from pyanomaly.config import cfg_to_dict
from pyanomaly.errors import ConfigError
from pyanomaly.registry import DATASETS, PSEUDO_ANOMALIES, RegistryError, build

from .array_cache import showing_progress
from .base import DatasetError, VideoDataset
from .first_frames import limit_frames
from .pseudo import PseudoAnomalies
from .video import accepting_truncated

logger = logging.getLogger(__name__)


def build_dataset(cfg: CfgNode, split: str, accept_truncated: bool | None = None, **extra) -> VideoDataset:
    """The ``split`` (``"training"`` / ``"testing"``) of ``DATASET.NAME`` at ``DATASET.ROOT``.

    Truncated media are accepted as ``DATASET.ACCEPT_TRUNCATED`` says (``accept_truncated``
    overrides it: ``tools/prepare_data.py`` reads every video before it judges). ``extra``:
    further constructor arguments (``max_frames``: :func:`build_train_dataset`, :func:`build_fit_dataset`).
    """
    d = cfg.DATASET
    args = dict(type=d.NAME, root=d.ROOT, split=split, clip_length=d.CLIP_LENGTH,
                image_size=tuple(d.IMAGE_SIZE), channels=d.CHANNELS, clip_stride=d.CLIP_STRIDE,
                frame_step=d.FRAME_STEP, cache_dir=d.CACHE_DIR)
    flow = cfg_to_dict(d.FLOW)
    if flow.get("type", "none") != "none":
        if d.TRAIN_TRANSFORMS:
            raise ConfigError(f"DATASET.FLOW {flow} with DATASET.TRAIN_TRANSFORMS: the transforms change the frames "
                              "only (a crop would have to crop the flow alike, a flip negate its dx); use one or the "
                              "other")
        args["flow"] = flow
    args.update(d.ARGS)
    args.update(extra)
    if d.ACCEPT_TRUNCATED:
        logger.warning("DATASET.ACCEPT_TRUNCATED is on: truncated videos and frame files of the '%s' split are "
                       "used as decoded (each is logged)", split)
    with accepting_truncated(d.ACCEPT_TRUNCATED if accept_truncated is None else accept_truncated), \
            showing_progress(cfg.LOG.PROGRESS):
        return build(DATASETS, args)


def build_train_dataset(cfg: CfgNode, accept_truncated: bool | None = None):
    """The training split as a step-trained method reads it: at most about ``TRAIN.MAX_FRAMES``
    frames, the first ``ceil(N / videos)`` of each video beyond that (:class:`VideoDataset`'s
    ``max_frames``: the rest is never decoded, cached nor indexed as clips). A registered
    dataset whose constructor takes no ``max_frames`` is built whole (a log line says so when it
    holds more). ``accept_truncated``: as for :func:`build_dataset`."""
    budget = int(cfg.TRAIN.MAX_FRAMES)
    if budget > 0 and _takes_max_frames(cfg):
        return build_dataset(cfg, "training", accept_truncated, max_frames=budget)
    data = build_dataset(cfg, "training", accept_truncated)
    if 0 < budget < sum(data.lengths):
        logger.info("TRAIN.MAX_FRAMES %d does not apply to DATASET.NAME %s (its constructor takes no max_frames): "
                    "its whole training split of %d frames is read", budget, cfg.DATASET.NAME, sum(data.lengths))
    return data


def build_fit_dataset(cfg: CfgNode, accept_truncated: bool | None = None):
    """The training split as a method fitted by reading it once reads it: at most about
    ``TRAIN.FIT_MAX_FRAMES`` frames, the first ``ceil(N / videos)`` of each video beyond that
    (:class:`VideoDataset`'s ``max_frames``: the rest is never decoded). A registered dataset
    whose constructor takes no ``max_frames`` is built whole and then cut the same way
    (:func:`~pyanomaly.datasets.first_frames.limit_frames`). ``accept_truncated``: as for
    :func:`build_dataset`."""
    budget = int(cfg.TRAIN.FIT_MAX_FRAMES)
    if budget > 0 and _takes_max_frames(cfg):
        return build_dataset(cfg, "training", accept_truncated, max_frames=budget)
    return limit_frames(build_dataset(cfg, "training", accept_truncated), budget)


def _takes_max_frames(cfg: CfgNode) -> bool:
    cls = DATASETS.get(cfg.DATASET.NAME)
    return cls is not None and _takes(cls, "max_frames")


def _takes(cls: type, name: str) -> bool:
    """Whether building ``cls`` accepts the argument ``name``: an ``__init__`` that names it, or
    one that passes ``**kwargs`` on to a parent class's that does."""
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        params = inspect.signature(init).parameters
        if name in params:
            return True
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return False
    return False


def build_test_dataset(cfg: CfgNode) -> VideoDataset | PseudoAnomalies:
    """The split scored by ``tools/test.py``: ``TEST.SPLIT`` (``"training"`` as a step-trained
    method reads it, under ``TRAIN.MAX_FRAMES``), with the pseudo-anomalies of the
    ``TEST.PSEUDO_ANOMALY`` spec (a kind registered in ``PSEUDO_ANOMALIES``, built with the split
    as ``base`` and ``seed`` = ``SYSTEM.SEED`` unless the spec gives one); ``none`` = the split
    as it is. Unknown kinds and arguments raise :class:`RegistryError` naming the key."""
    spec = cfg_to_dict(cfg.TEST.PSEUDO_ANOMALY)
    if PSEUDO_ANOMALIES.get(spec["type"]) is None:
        _build_pseudo(spec)  # raises the unknown-name error before the split is read
    # the training split is scored as training reads it (TRAIN.MAX_FRAMES): a large one is not decoded whole
    base = build_train_dataset(cfg) if cfg.TEST.SPLIT == "training" else build_dataset(cfg, cfg.TEST.SPLIT)
    data = _build_pseudo(spec, base=base, seed=cfg.SYSTEM.SEED)
    if isinstance(data, PseudoAnomalies) and all(a is None for a in data.starts):
        # each video too short for a segment stays normal: with all of them, every metric would be n/a
        raise DatasetError(f"TEST.PSEUDO_ANOMALY {spec}: no video of split '{cfg.TEST.SPLIT}' is long enough for a "
                           f"segment after {data.margin} normal frames (the longest has {max(base.lengths)} "
                           "frames); lower its length (or margin)")
    return data


def _build_pseudo(spec: dict, **defaults) -> VideoDataset | PseudoAnomalies:
    try:
        return build(PSEUDO_ANOMALIES, spec, **defaults)
    except RegistryError as exc:
        raise RegistryError(f"TEST.PSEUDO_ANOMALY: {exc}") from None
