import pytest
import yaml

from pyanomaly.config import ConfigError, load_cfg, save_cfg
from pyanomaly.config.defaults import _C

REPO_DEFAULTS = __import__("pathlib").Path(__file__).resolve().parents[2] / "pyanomaly" / "config" / "defaults.py"


def test_yaml_then_overrides_and_freeze(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("TRAIN:\n  MAX_STEPS: 7\n  LR: 0.01\nMODEL:\n  ARGS:\n    network: {type: PredNet, stack_sizes: [1, 8]}\n")
    cfg = load_cfg(f, ["TRAIN.LR", "2", "TRAIN.BATCH_SIZE", "3"])
    assert cfg.TRAIN.MAX_STEPS == 7
    assert cfg.TRAIN.LR == 2.0 and isinstance(cfg.TRAIN.LR, float)  # int accepted for a float key
    assert cfg.TRAIN.BATCH_SIZE == 3
    assert cfg.MODEL.ARGS.network.stack_sizes == [1, 8]
    assert cfg.is_frozen()
    with pytest.raises(AttributeError):
        cfg.TRAIN.LR = 1.0


def test_unknown_key_in_yaml_is_named(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("TRAIN:\n  MAX_STEP: 7\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'TRAIN.MAX_STEP' \(did you mean 'MAX_STEPS'\?\)"):
        load_cfg(f)


def test_unknown_key_on_command_line_is_named():
    with pytest.raises(ConfigError, match="unknown config key 'DATASET.ROOTS'"):
        load_cfg(None, ["DATASET.ROOTS", "x"])


@pytest.mark.parametrize("key,value", [("TRAIN.MAX_STEPS", "ten"), ("TRAIN.LR", "fast"),
                                       ("DATASET.IMAGE_SIZE", "64"), ("TRAIN.TENSORBOARD", "1")])
def test_wrong_type_is_named(key, value):
    with pytest.raises(ConfigError, match=f"config key '{key}' expects"):
        load_cfg(None, [key, value])


def test_bad_choice_and_odd_overrides():
    with pytest.raises(ConfigError, match="SYSTEM.DEVICE"):
        load_cfg(None, ["SYSTEM.DEVICE", "tpu"])
    with pytest.raises(ConfigError, match="KEY VALUE pairs"):
        load_cfg(None, ["TRAIN.LR"])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_cfg(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("TRAIN: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_cfg(bad)


def test_saved_config_round_trips(tmp_path):
    cfg = load_cfg(None, ["TRAIN.MAX_STEPS", "5"])
    save_cfg(cfg, tmp_path / "config.yaml")
    again = load_cfg(tmp_path / "config.yaml")
    assert again == cfg
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["TRAIN"]["MAX_STEPS"] == 5


def test_every_default_key_has_a_comment():
    lines = [l for l in REPO_DEFAULTS.read_text().splitlines() if l.startswith("_C.") and " = " in l]
    keys = [l for l in lines if "CN()" not in l or "new_allowed" in l]
    assert keys, "no keys found"
    undocumented = [l for l in keys if "#" not in l]
    assert not undocumented, undocumented


def test_shipped_configs_load():
    from pathlib import Path
    for path in sorted((Path(__file__).resolve().parents[2] / "configs").rglob("*.yaml")):
        load_cfg(path)


def test_base_files_merge_first_in_order_then_the_file(tmp_path):
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "root.yaml").write_text("TRAIN:\n  MAX_STEPS: 5\n  LR: 0.1\n  BATCH_SIZE: 2\n")
    (tmp_path / "common" / "a.yaml").write_text("_BASE_: root.yaml\nTRAIN:\n  LR: 0.2\n")  # relative to itself
    (tmp_path / "b.yaml").write_text("TRAIN:\n  LR: 0.3\n  BATCH_SIZE: 8\n")
    (tmp_path / "c.yaml").write_text("_BASE_: [common/a.yaml, b.yaml]\nTRAIN:\n  MAX_STEPS: 9\n")
    cfg = load_cfg(tmp_path / "c.yaml", ["TRAIN.BATCH_SIZE", "3"])
    assert (cfg.TRAIN.MAX_STEPS, cfg.TRAIN.LR, cfg.TRAIN.BATCH_SIZE) == (9, 0.3, 3)  # file > later base > earlier
    assert load_cfg(tmp_path / "common" / "a.yaml").TRAIN.LR == 0.2
    save_cfg(cfg, tmp_path / "saved.yaml")  # the merged config, standing alone
    assert "_BASE_" not in yaml.safe_load((tmp_path / "saved.yaml").read_text())
    assert load_cfg(tmp_path / "saved.yaml") == cfg


def test_a_recipe_and_its_base_give_the_config_written_out(tmp_path):
    repo = __import__("pathlib").Path(__file__).resolve().parents[2]
    recipe = load_cfg(repo / "configs" / "ped2_unet_small.yaml")
    base = yaml.safe_load((repo / "configs" / "baselines" / "cells8.yaml").read_text())
    assert [dict(b) for b in recipe.EVAL.BASELINES] == base["EVAL"]["BASELINES"]
    assert recipe.MODEL.NAME == "FramePredictor" and recipe.DATASET.IMAGE_SIZE == [128, 192]


@pytest.mark.parametrize("base,match", [
    ("missing.yaml", r"c.yaml: _BASE_ file not found: 'missing.yaml' \(looked for .*missing.yaml\)"),
    ("[]", r"c.yaml: _BASE_ must be a YAML file path \(relative to c.yaml\) or a list of them, got \[\]"),
    ("{TRAIN: 1}", r"_BASE_ must be a YAML file path .* got \{'TRAIN': 1\}"),
    ("c.yaml", r"c.yaml: _BASE_ 'c.yaml' includes a file that includes it: .*c.yaml -> .*c.yaml"),
    ("d.yaml", r"d.yaml: _BASE_ 'c.yaml' includes a file that includes it: .*c.yaml -> .*d.yaml -> .*c.yaml"),
    ("bad.yaml", r"bad.yaml: unknown config key 'TRAIN.MAX_STEP'"),
])
def test_bad_base_is_named(tmp_path, base, match):
    (tmp_path / "d.yaml").write_text("_BASE_: c.yaml\n")
    (tmp_path / "bad.yaml").write_text("TRAIN:\n  MAX_STEP: 1\n")
    (tmp_path / "c.yaml").write_text(f"_BASE_: {base}\nTRAIN:\n  MAX_STEPS: 2\n")
    with pytest.raises(ConfigError, match=match):
        load_cfg(tmp_path / "c.yaml")
