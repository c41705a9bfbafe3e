"""Building the evaluation from the config: the only code under ``evaluation/`` that reads it.

Example:
    >>> task = build_task(cfg, model.task)           # "anomaly_detection", "forecasting", ...
    >>> metrics = task.evaluate(model, test_set, device, out_dir)
"""
from __future__ import annotations

import difflib

from pyanomaly.config import CfgNode, cfg_to_dict
from pyanomaly.errors import ConfigError, RegistryError
from pyanomaly.registry import EVALUATORS, MODELS, TASKS, build
from pyanomaly.scoring.build import build_pipeline, build_scorer, build_video_scorer, check_scorer, describe_error
from pyanomaly.scoring.pipeline import ScorePipeline

from .baselines import Baselines, BaselineSpec
from .outputs import OutputOptions

__all__ = ["build_baselines", "build_evaluators", "build_task", "check_best_metric", "output_options",
           "protocol_settings"]


def build_evaluators(cfg: CfgNode) -> list:
    """The evaluators of ``EVAL.EVALUATORS`` (those taking ``thresholds`` get ``EVAL.THRESHOLDS``)."""
    return [build(EVALUATORS, dict(type=name), thresholds=list(cfg.EVAL.THRESHOLDS)) for name in cfg.EVAL.EVALUATORS]


def output_options(cfg: CfgNode) -> OutputOptions:
    """The files an evaluation writes (``EVAL.PLOTS``, ``NPY``, ``REPORT``, ``THRESHOLDS``, ``MAPS_DOWNSAMPLE``)."""
    return OutputOptions(cfg.EVAL.PLOTS, cfg.EVAL.NPY, cfg.EVAL.REPORT, [float(t) for t in cfg.EVAL.THRESHOLDS],
                         cfg.EVAL.MAPS_DOWNSAMPLE)


def protocol_settings(cfg: CfgNode) -> dict:
    """The settings of a run that ``metrics.json``'s ``protocol`` block states beside the pipeline's."""
    return {"error": describe_error(cfg), "max_val": cfg.SCORE.MAX_VAL, "clip_length": cfg.DATASET.CLIP_LENGTH,
            "image_size": list(cfg.DATASET.IMAGE_SIZE), "thresholds": [float(t) for t in cfg.EVAL.THRESHOLDS]}


def build_task(cfg: CfgNode, task: str = "anomaly_detection", pipeline: ScorePipeline | None = None):
    """The evaluation task named ``task`` (a method's ``task`` attribute), built from ``SCORE.*``,
    ``TEST.*`` and ``EVAL.*``; each task takes the parts it needs of those below.

    ``pipeline`` replaces the one of ``SCORE.*`` (re-scoring errors of another direction).
    """
    scorer = build_scorer(cfg)
    pipeline = pipeline if pipeline is not None else build_pipeline(cfg, scorer.higher_is_anomalous)

    def video_scorer(model, device):  # EVAL.SAVE_MAPS: the loop keeps each frame's error map
        return build_video_scorer(cfg, model, device, pipeline, scorer,
                                  maps="EVAL.SAVE_MAPS" if cfg.EVAL.SAVE_MAPS else None)

    parts = dict(pipeline=pipeline, video_scorer=video_scorer, evaluators=build_evaluators(cfg),
                 protocol=protocol_settings(cfg), outputs=output_options(cfg), chunk=cfg.TEST.CHUNK,
                 top_k=cfg.EVAL.REPORT_TOP_K if cfg.EVAL.REPORT else 0, progress=cfg.LOG.PROGRESS,
                 split=cfg.TEST.SPLIT, baselines=build_baselines(cfg))
    return build(TASKS, dict(type=task), **parts)


def check_best_metric(cfg: CfgNode, task) -> None:
    """Refuse a ``TRAIN.BEST_METRIC`` that ``task`` never produces (a misspelling would make
    ``best.pth`` the final weights and early stopping never stop), listing those it does.

    A task that does not say what it produces (no ``metric_names``) is not checked.
    """
    names = getattr(task, "metric_names", None)
    metric = cfg.TRAIN.BEST_METRIC
    if names is None or metric in names:
        return
    close = ([n for n in names if n.lower() == metric.lower()]
             or difflib.get_close_matches(metric, names, n=1, cutoff=0.5))
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ConfigError(f"config key 'TRAIN.BEST_METRIC' is {metric!r}{hint}, which the {type(task).__name__} "
                      f"evaluation never produces; it produces: {', '.join(names)}")


def build_baselines(cfg: CfgNode) -> Baselines:
    """The baselines of ``EVAL.BASELINES`` (see :mod:`pyanomaly.evaluation.baselines`), each checked
    now (method, arguments, ``score`` keys, a scorer that reads what the method gives), so a
    misnamed one fails before training. Those fitting statistics read the training split of
    ``DATASET.*``."""
    from pyanomaly.datasets.build import build_fit_dataset  # the training split, only if a baseline fits on it
    specs = []
    for n, entry in enumerate(cfg.EVAL.BASELINES):
        where = f"EVAL.BASELINES[{n}]"
        entry = cfg_to_dict(entry) if isinstance(entry, CfgNode) else dict(entry)
        if not isinstance(entry.get("type"), str):
            raise ConfigError(f"{where} {entry}: expected {{type: METHOD, <arguments>, name: NAME, score: "
                              "{SCORE KEY: value}}}")
        name, score = entry.pop("name", None), dict(entry.pop("score", None) or {})
        bcfg = cfg.clone()
        bcfg.defrost()
        try:
            bcfg.merge_from_list([x for k, v in score.items() for x in (f"SCORE.{k}", v)])
        except (KeyError, ValueError, AssertionError) as exc:
            raise ConfigError(f"{where}.score {score}: {exc}") from None
        bcfg.freeze()

        def make(entry=entry, where=where):
            try:
                model = build(MODELS, dict(entry), clip_length=cfg.DATASET.CLIP_LENGTH)
            except (RegistryError, ValueError, TypeError) as exc:
                raise ConfigError(f"{where}: {exc}") from None
            if getattr(model, "has_weights", True):
                raise ConfigError(f"{where}: {entry['type']} has learned weights; a baseline is a method without "
                                  "(CopyLast, FlowSpeed)")
            return model

        scorer = build_scorer(bcfg)
        check_scorer(make(), scorer, bcfg.SCORE.ERROR, f"{where} {entry['type']}")
        pipeline = build_pipeline(bcfg, scorer.higher_is_anomalous)

        def video_scorer(model, device, bcfg=bcfg, scorer=scorer, pipeline=pipeline):
            return build_video_scorer(bcfg, model, device, pipeline, scorer)

        args = ", ".join(f"{k}={v}" for k, v in entry.items() if k != "type")
        specs.append(BaselineSpec(name or f"{entry['type']}{f'({args})' if args else ''}/{bcfg.SCORE.ERROR}",
                                  make, video_scorer, describe_error(bcfg)))
    try:
        return Baselines(specs, training_set=lambda: build_fit_dataset(cfg),
                         progress=cfg.LOG.PROGRESS)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
