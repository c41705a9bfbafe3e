"""Building a method from the config: the only code under ``models/`` that reads it.

Example:
    >>> model = build_model(load_cfg("configs/prednet.yaml"))
    >>> meta = model_meta(cfg)            # what a checkpoint stores to be matched on load
"""
from __future__ import annotations

from pyanomaly.config import CfgNode, cfg_to_dict
from pyanomaly.errors import ConfigError
from pyanomaly.flow import OpticalFlow
from pyanomaly.registry import MODELS, NETWORKS, build, default_arguments

__all__ = ["build_model", "model_meta", "with_part_defaults"]


def build_model(cfg: CfgNode, device=None):
    """The method named by ``MODEL.NAME`` with ``MODEL.ARGS`` (+ ``clip_length`` =
    ``DATASET.CLIP_LENGTH`` if it takes one), moved to ``device`` when given."""
    args = dict(type=cfg.MODEL.NAME, **cfg_to_dict(cfg.MODEL.ARGS))
    model = build(MODELS, args, clip_length=cfg.DATASET.CLIP_LENGTH)
    return model if device is None else model.to(device)


def check_training_flow(cfg: CfgNode, model) -> None:
    """Refuse, before any video is read, a method that trains on optical flow without
    ``DATASET.FLOW``, or with another flow than the one it computes at test time (a model
    trained on Farneback flow would be scored on DIS flow)."""
    flow = getattr(model, "training_flow", None)
    if flow is None:
        return
    spec = cfg_to_dict(cfg.DATASET.FLOW)
    if spec.get("type", "none") == "none":
        raise ConfigError(f"{cfg.MODEL.NAME} trains on optical flow: set DATASET.FLOW to the flow it computes at "
                          f"test time, {flow.spec()} (MODEL.ARGS.flow)")
    try:
        given = OpticalFlow(**spec).spec()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"DATASET.FLOW {spec}: {exc}") from None
    if given != flow.spec():
        raise ConfigError(f"DATASET.FLOW {given} differs from the flow {cfg.MODEL.NAME} computes at test time, "
                          f"{flow.spec()} (MODEL.ARGS.flow): it would train on one flow and be scored on another")


def model_meta(cfg: CfgNode) -> dict:
    """Plain-typed identity of the model, stored in checkpoints and compared on load.

    Arguments that only change how a trained model is run (the method's ``inference_args``,
    e.g. a test window) are left out, so they can differ between training and testing.
    """
    cls = MODELS.get(cfg.MODEL.NAME)
    runtime = set(getattr(cls, "inference_args", ()))
    args = {k: v for k, v in cfg_to_dict(cfg.MODEL.ARGS).items() if k not in runtime}
    return {"model_name": cfg.MODEL.NAME, "model_args": args, "model_defaults": _plain_defaults(cls, runtime),
            "image_size": list(cfg.DATASET.IMAGE_SIZE), "channels": cfg.DATASET.CHANNELS}


def _plain_defaults(cls, leave_out: set[str]) -> dict:
    """The constructor defaults of ``cls`` that a checkpoint can store (plain values), so that
    an argument written out at its default compares equal to one left out."""
    plain = (type(None), bool, int, float, str, list, tuple, dict)
    return {k: v for k, v in default_arguments(cls).items() if k not in leave_out and isinstance(v, plain)}


def with_part_defaults(args):
    """``args`` with every nested network part (a dict whose ``type`` names a registered network)
    completed by its constructor's plain defaults, so that an argument of a part left out
    compares equal to one written out at its default (checkpoints, ``check_compatible``)."""
    if isinstance(args, dict):
        out = {k: with_part_defaults(v) for k, v in args.items()}
        cls = NETWORKS.get(out["type"]) if isinstance(out.get("type"), str) else None
        if cls is not None:
            out = {**_plain_defaults(cls, set()), **out}
        return out
    if isinstance(args, (list, tuple)):
        return type(args)(with_part_defaults(v) for v in args)
    return args
