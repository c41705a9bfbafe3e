"""Plugin registries, one per kind of part, and the one function that builds from them.

Every part of a run (network, method, dataset, loss, scorer, evaluator, hook, LR schedule,
pseudo-anomaly kind) is a class registered in one of these registries, right where it is
defined::

    from pyanomaly.registry import NETWORKS

    @NETWORKS.register_module()
    class MyNet(torch.nn.Module):
        ...

and built from a plain dict whose ``type`` names it::

    net = build(NETWORKS, dict(type="MyNet", channels=16))

Built-in parts import lazily (``locations``) the first time a registry is searched. A
user's module outside the package is imported by listing it in ``SYSTEM.IMPORTS`` (see
:func:`import_plugins`); nobody edits the package to add a part.
"""
from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import re
import sys
from pathlib import Path
from typing import Any, Iterable

from mmengine.registry import Registry

from pyanomaly.errors import RegistryError

__all__ = [
    "NETWORKS", "MODELS", "DATASETS", "TRANSFORMS", "LOSSES", "SCORERS", "NORMALIZERS", "EVALUATORS", "TASKS",
    "HOOKS", "DEMARCATIONS", "LR_SCHEDULES", "PSEUDO_ANOMALIES", "build", "accepted_arguments", "import_plugins",
    "RegistryError",
]

_SCOPE = "pyanomaly"

# Meta parts: plain nn.Modules taking typed keyword arguments (never the config).
NETWORKS = Registry("network", scope=_SCOPE,
                    locations=["pyanomaly.networks.meta", "pyanomaly.networks.meta.streamer"])
# Methods: meta parts + loss + how a video is predicted and scored (see models/base.py).
MODELS = Registry("model", scope=_SCOPE, locations=["pyanomaly.models"])
# Datasets of videos with per-frame labels (see datasets/base.py).
DATASETS = Registry("dataset", scope=_SCOPE, locations=["pyanomaly.datasets"])
# Training-time transforms of a batch of clips (B, T, C, H, W) (see datasets/transforms.py).
TRANSFORMS = Registry("transform", scope=_SCOPE, locations=["pyanomaly.datasets.transforms"])
# Loss modules: (prediction, target) -> scalar tensor.
LOSSES = Registry("loss", scope=_SCOPE, locations=["pyanomaly.models.losses"])
# Frame scorers: (prediction, target) (N, C, H, W) -> per-frame raw error (N,).
SCORERS = Registry("scorer", scope=_SCOPE, locations=["pyanomaly.scoring"])
# Normalisers: raw errors of one video -> anomaly scores (offline min-max, causal running, ...).
NORMALIZERS = Registry("normalizer", scope=_SCOPE, locations=["pyanomaly.scoring"])
# Evaluators: per-video scores and labels -> dict of metrics.
EVALUATORS = Registry("evaluator", scope=_SCOPE, locations=["pyanomaly.evaluation"])
# Evaluation tasks: (method, split) -> metrics and files (anomaly detection, forecasting, classification).
TASKS = Registry("task", scope=_SCOPE, locations=["pyanomaly.evaluation.tasks"])
# Trainer hooks (see engine/hooks.py).
HOOKS = Registry("hook", scope=_SCOPE, locations=["pyanomaly.engine.hooks"])
# STREAMER event-demarcation rules: (loss, buffer length) -> why the event closes, or None.
DEMARCATIONS = Registry("demarcation", scope=_SCOPE, locations=["pyanomaly.networks.meta.streamer.demarcation"])
# LR schedules: optimizer step (0-based) -> factor of TRAIN.LR (see engine/lr_schedules.py).
LR_SCHEDULES = Registry("LR schedule", scope=_SCOPE, locations=["pyanomaly.engine.lr_schedules"])
# Pseudo-anomaly kinds: a split's videos -> the same videos with labelled anomalies made in them (datasets/pseudo.py).
PSEUDO_ANOMALIES = Registry("pseudo-anomaly kind", scope=_SCOPE, locations=["pyanomaly.datasets.pseudo"])


def registered_names(registry: Registry) -> list[str]:
    """Sorted names registered in ``registry`` (built-in parts imported first)."""
    registry.import_from_location()
    return sorted(registry.module_dict)


def build(registry: Registry, cfg: dict[str, Any], **defaults: Any) -> Any:
    """Build the object named by ``cfg["type"]`` with the other items as keyword arguments.

    ``defaults`` are extra keyword arguments used when ``cfg`` does not give them.
    An unknown name raises :class:`RegistryError` listing the registered names and the
    closest match; arguments the class does not accept are named in the error.
    """
    if not isinstance(cfg, dict) or "type" not in cfg:
        raise RegistryError(f"cannot build a {registry.name}: expected a dict with a 'type' key, got {cfg!r}")
    kwargs = {str(k): _plain(v) for k, v in cfg.items() if k != "type"}
    name = cfg["type"]
    if not isinstance(name, str):
        obj_cls = name  # a class passed directly
    else:
        obj_cls = registry.get(name)
        if obj_cls is None:
            names = registered_names(registry)
            close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise RegistryError(
                f"unknown {registry.name} '{name}'.{hint} Registered {registry.name}s: "
                f"{', '.join(names) or '(none)'}. A part defined outside pyanomaly must be "
                "imported first: list its module in SYSTEM.IMPORTS."
            )
    accepted = accepted_arguments(obj_cls)
    for key, value in defaults.items():
        if accepted is None or key in accepted:
            kwargs.setdefault(key, value)
    _check_arguments(obj_cls, kwargs, registry.name)
    try:
        return obj_cls(**kwargs)
    except TypeError as exc:  # a class taking **kwargs passed on an argument its base does not take
        unexpected = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        if unexpected is None or unexpected.group(1) not in kwargs:
            raise
        raise RegistryError(f"{registry.name} '{getattr(obj_cls, '__name__', obj_cls)}' got unknown argument "
                            f"'{unexpected.group(1)}' ({exc})") from None


def accepted_arguments(obj_cls: Any) -> set[str] | None:
    """Keyword names ``obj_cls`` accepts, or None when it takes ``**kwargs``."""
    try:
        params = inspect.signature(obj_cls).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def default_arguments(obj_cls: Any) -> dict[str, Any]:
    """Keyword names of ``obj_cls`` that have a default, with it (``{}`` when not inspectable)."""
    try:
        params = inspect.signature(obj_cls).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in params if p.default is not p.empty}


def _check_arguments(obj_cls: Any, kwargs: dict[str, Any], kind: str) -> None:
    try:
        sig = inspect.signature(obj_cls)
    except (TypeError, ValueError):
        return
    params = sig.parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    accepted = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise RegistryError(
            f"{kind} '{obj_cls.__name__}' got unknown argument(s) {unknown}; "
            f"it accepts: {', '.join(sorted(accepted)) or '(none)'}"
        )
    missing = [p.name for p in params
               if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
               and p.name not in kwargs]
    if missing:
        raise RegistryError(f"{kind} '{obj_cls.__name__}' needs argument(s) {missing}")


def _plain(value: Any) -> Any:
    """yacs nodes -> dicts (recursively) so that parts never see a CfgNode."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def import_plugins(modules: Iterable[str], search_dirs: Iterable[str | Path] = ()) -> None:
    """Import the user's plugin modules so their decorators register their parts.

    ``modules`` are importable module names (``"my_pkg.my_net"``) or paths to ``.py`` files.
    ``search_dirs`` are added to ``sys.path`` first (the config file's folder and the working
    directory, so a module beside the YAML is found).
    """
    for d in search_dirs:
        d = str(Path(d).resolve())
        if d not in sys.path:
            sys.path.append(d)
    for name in modules:
        try:
            if name.endswith(".py"):
                path = Path(name)
                if not path.is_file():
                    raise ModuleNotFoundError(f"no file {path}")
                spec = importlib.util.spec_from_file_location(path.stem, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[path.stem] = module
                spec.loader.exec_module(module)
            else:
                importlib.import_module(name)
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(
                f"SYSTEM.IMPORTS: cannot import plugin module '{name}' ({exc}). "
                "Give an importable module name (on PYTHONPATH, or beside the config file) "
                "or a path to a .py file."
            ) from exc
