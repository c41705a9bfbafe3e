"""A fusion's learned cue with a train recipe: used as it is on the dataset its checkpoint was
trained on, trained first (an ordinary run in cue_runs/<name>/) on any other, resumed when that
training was cut short, used again when it finished; bad recipes are refused before any training."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from pyanomaly.config import load_cfg
from pyanomaly.engine.checkpoint import CheckpointError
from pyanomaly.engine.cue_training import why_train
from pyanomaly.engine.launch import train
from pyanomaly.datasets.synthetic import make_synthetic
from pyanomaly.errors import ConfigError
from pyanomaly.models.fusion import Fusion
from testutils import VideoList

QUIET = ["EVAL.PLOTS", "False", "EVAL.REPORT", "False", "LOG.PROGRESS", "False", "TRAIN.TENSORBOARD", "False"]
NETWORK = {"type": "UNet", "in_channels": 1, "base_channels": 4, "depth": 1}

RECIPE = """
DATASET:
  IMAGE_SIZE: [16, 16]
  CLIP_LENGTH: 3
MODEL:
  NAME: FramePredictor
  ARGS:
    network: {type: UNet, in_channels: 1, base_channels: 4, depth: 1}
TRAIN:
  MAX_STEPS: 2
  BATCH_SIZE: 2
  EVAL_PERIOD: 0
  TENSORBOARD: False
SCORE:
  ERROR: AREA
EVAL:
  PLOTS: False
  REPORT: False
LOG:
  PROGRESS: False
"""


def fusion_cfg(root, out, recipe, checkpoint, **cue):
    unet = {"name": "unet", "method": {"type": "FramePredictor", "network": dict(NETWORK)},
            "error": {"type": "AREA"}, "train": str(recipe), **cue}
    if checkpoint is not None:
        unet["checkpoint"] = checkpoint if isinstance(checkpoint, list) else str(checkpoint)
    cues = [{"name": "copy", "method": {"type": "CopyLast"}, "error": {"type": "AREA"}}, unet]
    return load_cfg(None, ["MODEL.NAME", "Fusion", "MODEL.ARGS.cues", cues, "SCORE.ERROR", "FRAME_ERROR",
                           "DATASET.ROOT", str(root), "DATASET.IMAGE_SIZE", "[16, 16]", "DATASET.CLIP_LENGTH", "3",
                           "SYSTEM.OUTPUT_DIR", str(out), *QUIET])


def unet_weights(state: dict, prefix: str = "") -> dict:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


@pytest.fixture(scope="module")
def setting(tmp_path_factory, tiny_synthetic):
    """The recipe, a checkpoint it made on the tiny scene, and another scene (same NAME, another ROOT)."""
    tmp = tmp_path_factory.mktemp("cue_training")
    recipe = tmp / "unet.yaml"
    recipe.write_text(RECIPE)
    train(load_cfg(recipe, ["DATASET.ROOT", str(tiny_synthetic), "SYSTEM.OUTPUT_DIR", str(tmp / "own")]))
    other = make_synthetic(tmp / "other_scene", seed=2, size=32, num_train=2, num_test=4, frames_per_video=60)
    return recipe, tmp / "own" / "checkpoints" / "last.pth", tiny_synthetic, other


def test_a_checkpoint_trained_on_this_dataset_is_used_as_it_is(setting, tmp_path):
    recipe, own, scene, _ = setting
    out = tmp_path / "fused"
    train(fusion_cfg(scene, out, recipe, own))
    assert not (out / "cue_runs").exists()
    fused = torch.load(out / "checkpoints" / "last.pth", weights_only=True)["model"]
    trained = torch.load(own, weights_only=True)["model"]
    for k, v in trained.items():
        assert torch.equal(fused[f"cues.1.{k}"], v), k
    assert "used as it is" in (out / "log.txt").read_text()


def test_on_another_dataset_the_cue_is_trained_there_first(setting, tmp_path):
    recipe, own, _, other = setting
    out = tmp_path / "fused"
    train(fusion_cfg(other, out, recipe, own))
    cue_run = out / "cue_runs" / "unet"
    last = torch.load(cue_run / "checkpoints" / "last.pth", weights_only=True)
    assert last["step"] == 2
    saved = load_cfg(cue_run / "config.yaml")
    assert saved.DATASET.ROOT == str(other) and saved.DATASET.IMAGE_SIZE == [16, 16]
    assert not (cue_run / "metrics.json").exists()  # not evaluated: the fusion scores the cue alone (cues/unet)
    assert (out / "cues" / "unet" / "frame_scores.csv").is_file()
    fused = torch.load(out / "checkpoints" / "last.pth", weights_only=True)["model"]
    first = torch.load(own, weights_only=True)["model"]
    assert all(torch.equal(fused[f"cues.1.{k}"], v) for k, v in last["model"].items())
    assert not all(torch.equal(fused[f"cues.1.{k}"], v) for k, v in first.items())
    log = (out / "log.txt").read_text()
    assert f"because {own} was trained on synthetic at" in log
    # the fusion's own log goes on after the cue's run, which logged to its folder
    assert "final:" in log.split("cue unet: trained in")[-1]
    assert "test split not read (TRAIN.EVAL_PERIOD -1)" in (cue_run / "log.txt").read_text()


def test_a_finished_cue_training_is_used_again_and_a_cut_short_one_resumed(setting, tmp_path):
    recipe, _, _, other = setting
    out = tmp_path / "fused"
    # cut short: the cue's run holds step 1 of its 2
    short = load_cfg(recipe, ["DATASET.ROOT", str(other), "SYSTEM.OUTPUT_DIR", str(out / "cue_runs" / "unet"),
                              "TRAIN.MAX_STEPS", "1", "SYSTEM.SEED", "0", *QUIET])
    train(short)
    train(fusion_cfg(other, out, recipe, None))  # no checkpoint named: trained (here: resumed)
    last = out / "cue_runs" / "unet" / "checkpoints" / "last.pth"
    assert torch.load(last, weights_only=True)["step"] == 2
    assert "resuming from" in (out / "cue_runs" / "unet" / "log.txt").read_text()
    # the fusion run started again (its checkpoints gone): the finished cue training is not run twice
    stamp = last.stat().st_mtime_ns
    shutil.rmtree(out / "checkpoints")
    with pytest.raises(CheckpointError, match="stopped while training a cue .*without --resume"):
        train(fusion_cfg(other, out, recipe, None), resume=True)
    train(fusion_cfg(other, out, recipe, None))
    assert last.stat().st_mtime_ns == stamp
    assert "cue unet: trained in" in (out / "log.txt").read_text().split("used again")[0]


def test_an_ensemble_is_trained_whole_one_seed_per_member(setting, tmp_path):
    recipe, own, _, other = setting
    out = tmp_path / "fused"
    # one member fits (it does not: trained on the first scene), the other file is missing: all are trained here
    train(fusion_cfg(other, out, recipe, [str(own), str(tmp_path / "missing.pth")], ensemble="mean"))
    runs = [out / "cue_runs" / "unet" / f"member{j}" for j in range(2)]
    seeds = [load_cfg(r / "config.yaml").SYSTEM.SEED for r in runs]
    assert seeds == [0, 1]
    members = [torch.load(r / "checkpoints" / "last.pth", weights_only=True)["model"] for r in runs]
    fused = torch.load(out / "checkpoints" / "last.pth", weights_only=True)["model"]
    for j, member in enumerate(members):
        assert all(torch.equal(fused[f"cues.1.members.{j}.{k}"], v) for k, v in member.items())
    assert not all(torch.equal(members[0][k], members[1][k]) for k in members[0])  # two seeds, two trainings
    assert "because" in (out / "log.txt").read_text()


def test_why_train(setting, tmp_path):
    _, own, scene, other = setting
    cfg = load_cfg(None, ["DATASET.ROOT", str(scene)])
    assert why_train(str(own), cfg) is None
    assert why_train(None, cfg) == "no checkpoint is named"
    assert "does not exist" in why_train(str(tmp_path / "nothing.pth"), cfg)
    assert "at" in why_train(str(own), load_cfg(None, ["DATASET.ROOT", str(other)]))
    assert "trained on synthetic, this run reads folder" in why_train(
        str(own), load_cfg(None, ["DATASET.NAME", "folder", "DATASET.ROOT", str(scene)]))


def test_bad_train_recipes_are_refused_before_any_training(setting, tmp_path):
    recipe, own, _, other = setting
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(RECIPE.replace("NAME: FramePredictor", "NAME: CopyLast").replace(
        "network: {type: UNet, in_channels: 1, base_channels: 4, depth: 1}", "{}"))
    out = tmp_path / "fused"
    with pytest.raises(ConfigError, match=r"cues\[1\]\.train: .*trains MODEL.NAME CopyLast, the cue's method is "
                                          "FramePredictor"):
        train(fusion_cfg(other, out, wrong, own))
    assert not (out / "cue_runs").exists()
    with pytest.raises(ConfigError, match=r"cues\[1\]\.train: config file not found"):
        train(fusion_cfg(other, tmp_path / "fused2", tmp_path / "missing.yaml", own))
    with pytest.raises(ConfigError, match=r"cues\[1\]\.train: .*unknown config key 'TRAIN.STEPS'"):
        train(fusion_cfg(other, tmp_path / "fused3", recipe, own, train={"config": str(recipe),
                                                                          "opts": ["TRAIN.STEPS", 3]}))


@pytest.mark.parametrize("train_value, match", [
    (["a.yaml"], "expected a config file path"),
    ({"config": "a.yaml", "opts": ["TRAIN.MAX_STEPS"]}, r"overrides in pairs\)"),
    ({"config": "a.yaml", "steps": 3}, r"overrides in pairs\)"),
])
def test_a_malformed_train_value_names_its_key(train_value, match):
    cues = [{"name": "unet", "method": {"type": "FramePredictor", "network": dict(NETWORK)},
             "error": {"type": "AREA"}, "train": train_value}]
    with pytest.raises(ValueError, match=rf"Fusion cues\[0\]\.train: .*{match}"):
        Fusion(cues=cues, clip_length=3)


def test_train_is_for_one_learned_model():
    copy = {"name": "copy", "method": {"type": "CopyLast"}, "error": {"type": "AREA"}, "train": "a.yaml"}
    with pytest.raises(ValueError, match=r"cues\[0\]\.train: CopyLast learns no weights"):
        Fusion(cues=[copy])
    # without a checkpoint a learned cue needs its recipe
    alone = {"name": "unet", "method": {"type": "FramePredictor", "network": dict(NETWORK)}, "error": {"type": "AREA"}}
    with pytest.raises(ValueError, match=r"cues\[0\]\.checkpoint: .*or a train recipe that makes it"):
        Fusion(cues=[alone], clip_length=3)
    # with only its recipe, a fusion fitted outside tools/train.py says where the recipe is run
    model = Fusion(cues=[dict(alone, train="a.yaml")], clip_length=3)
    with pytest.raises(ValueError, match=r"cues\[0\] \(unet\) has no checkpoint yet: its train recipe is run by "
                                         "tools/train.py"):
        model.fit(VideoList(torch.rand(6, 1, 16, 16)), torch.device("cpu"), progress=False)


def test_the_recipe_opts_come_last_and_may_ask_for_the_cue_run_to_be_evaluated(setting, tmp_path):
    recipe, own, _, other = setting
    out = tmp_path / "fused"
    train(fusion_cfg(other, out, recipe, own, train={"config": str(recipe), "opts": ["TRAIN.EVAL_PERIOD", 0,
                                                                                    "TRAIN.MAX_STEPS", 3]}))
    cue_run = out / "cue_runs" / "unet"
    assert torch.load(cue_run / "checkpoints" / "last.pth", weights_only=True)["step"] == 3
    assert 0.0 <= json.loads((cue_run / "metrics.json").read_text())["auc_micro"] <= 1.0
