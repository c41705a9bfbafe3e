"""Configuration: yacs defaults + a YAML file + ``KEY VALUE`` overrides, checked and frozen.

A YAML file may start from others: ``_BASE_: path.yaml`` (or a list of paths, relative to the
file) merges those first, in order, each as if it were the file, then the file over them, so a
key shared by several recipes is written once.

Example:
    >>> from pyanomaly.config import load_cfg
    >>> cfg = load_cfg("configs/prednet.yaml", ["TRAIN.MAX_STEPS", "10"])
    >>> cfg.TRAIN.MAX_STEPS
    10
"""
from __future__ import annotations

import difflib
from ast import literal_eval
from pathlib import Path
from typing import Any, Sequence

import yaml
from yacs.config import CfgNode

from pyanomaly.errors import ConfigError
from pyanomaly.utils import atomic_write_text

from .defaults import ABOVE, AT_LEAST, CHOICES, SPEC_LISTS, get_defaults

__all__ = ["CfgNode", "ConfigError", "get_cfg", "load_cfg", "cfg_from_dict", "cfg_to_dict", "save_cfg"]


def get_cfg() -> CfgNode:
    """The defaults (mutable copy)."""
    return get_defaults()


def load_cfg(path: str | Path | None = None, opts: Sequence[str] = (), freeze: bool = True) -> CfgNode:
    """Defaults, then the YAML at ``path``, then ``opts`` (``["KEY", "VALUE", ...]``)."""
    cfg = get_cfg()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        for source, data in _read_with_bases(path, ()):
            _merge(cfg, data, [], source)
    return _finish(cfg, opts, freeze)


BASE_KEY = "_BASE_"


def _read_with_bases(path: Path, including: tuple[Path, ...]) -> list[tuple[str, dict]]:
    """``[(file, mapping), ...]`` to merge in order: ``path``'s ``_BASE_`` files (each with its
    own bases before it), then ``path`` itself without the ``_BASE_`` key."""
    data = _read_yaml(path)
    bases = data.pop(BASE_KEY, None)
    if bases is None:
        return [(str(path), data)]
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not bases or not all(isinstance(b, str) and b for b in bases):
        raise ConfigError(f"{path}: {BASE_KEY} must be a YAML file path (relative to {path.name}) or a list of "
                          f"them, got {bases!r}")
    chain = including + (path.resolve(),)
    out = []
    for base in bases:
        base_path = path.parent / base
        if base_path.resolve() in chain:
            cycle = " -> ".join(str(p) for p in chain + (base_path.resolve(),))
            raise ConfigError(f"{path}: {BASE_KEY} '{base}' includes a file that includes it: {cycle}")
        if not base_path.is_file():
            raise ConfigError(f"{path}: {BASE_KEY} file not found: '{base}' (looked for {base_path})")
        out += _read_with_bases(base_path, chain)
    return out + [(str(path), data)]


def _read_yaml(path: Path) -> dict:
    """The mapping of sections a config file holds (``{}`` for an empty file)."""
    try:
        data = yaml.safe_load(path.read_bytes().decode("utf-8-sig")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not a UTF-8 text file (byte {exc.start}); a config is YAML text") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {_yaml_problem(exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of sections, got {type(data).__name__}")
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What the YAML parser found and where, on one line."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{getattr(exc, 'problem', None) or ' '.join(str(exc).split())}{where}"


def cfg_from_dict(data: dict, opts: Sequence[Any] = (), freeze: bool = True, source: str = "config") -> CfgNode:
    """Defaults, then the nested mapping ``data`` (as a YAML file would hold it, e.g. the
    config a checkpoint carries), then ``opts``; ``source`` names ``data`` in errors."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be a mapping of sections, got {type(data).__name__}")
    cfg = get_cfg()
    _merge(cfg, data, [], source)
    return _finish(cfg, opts, freeze)


def _finish(cfg: CfgNode, opts: Sequence[Any], freeze: bool) -> CfgNode:
    """Apply ``opts`` (``KEY VALUE`` pairs; a value is a string as typed, or a Python value), validate, freeze."""
    opts = list(opts)
    if len(opts) % 2:
        raise ConfigError(f"overrides must be KEY VALUE pairs; '{opts[-1]}' has no value")
    for key, raw in zip(opts[0::2], opts[1::2]):
        node, leaf = _locate(cfg, key)
        value = _decode(raw)
        if leaf in node and is_spec(node[leaf]):
            value = _spec(value, node[leaf], key, "override")
        elif leaf in node:
            value = _coerce(value, node[leaf], key)
        node[leaf] = _to_node(value)
    _validate(cfg)
    if freeze:
        cfg.freeze()
    return cfg


def _merge(node: CfgNode, data: dict, keys: list[str], source: str) -> None:
    for k, v in data.items():
        full = ".".join(keys + [str(k)])
        if k not in node:
            if node.is_new_allowed():
                node[k] = _to_node(v)
                continue
            raise ConfigError(f"{source}: unknown config key '{full}'{_suggest(k, node)}")
        if is_spec(node[k]):
            node[k] = _spec(v, node[k], full, source)
        elif isinstance(node[k], CfgNode):
            if not isinstance(v, dict):
                raise ConfigError(f"{source}: '{full}' is a section; expected a mapping, got {v!r}")
            _merge(node[k], v, keys + [str(k)], source)
        else:
            node[k] = _coerce(v, node[k], full)


def _locate(cfg: CfgNode, key: str) -> tuple[CfgNode, str]:
    parts = key.split(".")
    node = cfg
    for i, p in enumerate(parts[:-1]):
        if p not in node or not isinstance(node[p], CfgNode):
            if p not in node and node.is_new_allowed():
                node[p] = CfgNode(new_allowed=True)
            else:
                raise ConfigError(f"unknown config key '{key}'{_suggest(p, node)}")
        node = node[p]
    leaf = parts[-1]
    if leaf not in node and not node.is_new_allowed():
        raise ConfigError(f"unknown config key '{key}'{_suggest(leaf, node)}")
    if leaf in node and isinstance(node[leaf], CfgNode) and not is_spec(node[leaf]):
        raise ConfigError(f"'{key}' is a section; override one of its keys: {', '.join(node[leaf])}")
    return node, leaf


def is_spec(node: Any) -> bool:
    """True for a *spec* key: a part built from a registry, ``{type: NAME, <its arguments>}``."""
    return isinstance(node, CfgNode) and node.is_new_allowed() and "type" in node


def _spec(value: Any, default: CfgNode, key: str, source: str) -> CfgNode:
    """A new value of a spec key. A bare name stands for ``{type: NAME}``; a mapping without a
    ``type`` changes the arguments of the current one; one with another ``type`` replaces it
    whole (the old part's arguments do not carry over to a part that may not take them)."""
    if isinstance(value, str):
        value = {"type": value}
    if isinstance(value, CfgNode):
        value = cfg_to_dict(value)
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: '{key}' names a registered part: give its name or a mapping "
                          f"{{type: NAME, <arguments>}}, got {value!r}")
    if "type" not in value or value["type"] == default["type"]:
        value = {**cfg_to_dict(default), **value}
    return _to_node(value)


def _suggest(key: str, node: CfgNode) -> str:
    close = difflib.get_close_matches(str(key), [str(k) for k in node], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _decode(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return literal_eval(raw)
    except (ValueError, SyntaxError):
        pass
    if raw.lstrip().startswith(("{", "[")):  # YAML flow style, as in a config file: {type: causal, window: 100}
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {raw!r} is neither a Python literal nor YAML: {exc}") from None
    return raw  # a plain string such as a path


def _coerce(value: Any, default: Any, key: str) -> Any:
    """Accept ``value`` for a key whose default is ``default``, or raise naming the key."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif isinstance(default, (list, tuple)):
        if isinstance(value, (list, tuple)):
            return list(value)
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    else:
        return value
    raise ConfigError(
        f"config key '{key}' expects {type(default).__name__} (default {default!r}), got {value!r}"
    )


def _to_node(value: Any) -> Any:
    if isinstance(value, dict):
        node = CfgNode(new_allowed=True)
        for k, v in value.items():
            node[k] = _to_node(v)
        return node
    return value


def _validate(cfg: CfgNode) -> None:
    """Refuse values outside ``CHOICES``, ``AT_LEAST``, ``ABOVE`` and ``SPEC_LISTS`` (defaults.py), naming the key."""
    def value(key):
        section, leaf = key.split(".")
        return cfg[section][leaf]
    for key, choices in CHOICES.items():
        if value(key) not in choices:
            raise ConfigError(f"config key '{key}' must be one of {', '.join(map(str, choices))}; got "
                              f"{value(key)!r}{_suggest_value(value(key), choices)}")
    for bounds, word in ((AT_LEAST, ">="), (ABOVE, ">")):
        for key, bound in bounds.items():
            v = value(key)
            if not (v >= bound if word == ">=" else v > bound):  # also refuses NaN
                raise ConfigError(f"config key '{key}' must be {word} {bound}, got {v!r}")
    for key in SPEC_LISTS:
        for i, spec in enumerate(value(key)):
            if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
                raise ConfigError(f"config key '{key}': entry {i} must be a mapping {{type: NAME, <arguments>}}, "
                                  f"got {cfg_to_dict(spec) if isinstance(spec, CfgNode) else spec!r}")
    size = cfg.DATASET.IMAGE_SIZE
    if len(size) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size):
        raise ConfigError(f"config key 'DATASET.IMAGE_SIZE' must be [H, W] positive ints, got {size!r}")
    if not 0.0 < cfg.SCORE.PIXEL_THRESHOLD < 1.0:
        raise ConfigError("config key 'SCORE.PIXEL_THRESHOLD' must be in (0, 1) (a fraction of SCORE.MAX_VAL), "
                          f"got {cfg.SCORE.PIXEL_THRESHOLD!r}")


def _suggest_value(value: Any, choices: Sequence) -> str:
    names = [str(c) for c in choices]
    close = [n for n in names if n.lower() == str(value).lower()] or difflib.get_close_matches(str(value), names, n=1,
                                                                                               cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def cfg_to_dict(cfg: CfgNode) -> dict:
    """Plain nested dict of a config."""
    return {k: cfg_to_dict(v) if isinstance(v, CfgNode) else v for k, v in cfg.items()}


def save_cfg(cfg: CfgNode, path: str | Path) -> None:
    """Write the merged config as YAML (atomically)."""
    atomic_write_text(path, yaml.safe_dump(cfg_to_dict(cfg), sort_keys=False))
