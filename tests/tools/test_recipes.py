"""Every Ped2 recipe trains and scores another benchmark with only DATASET.NAME / DATASET.ROOT changed.

The benchmarks are tiny fakes in their published layouts (``tests/datasets/fake_layouts.py``);
the other overrides only make the run small (steps, frame size, no plots).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from pyanomaly.config import cfg_to_dict, load_cfg
from pyanomaly.engine.launch import train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "datasets"))
from fake_layouts import make_avenue, make_shanghaitech  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted(p.name for p in (REPO / "configs").glob("ped2_*.yaml"))
SMALL = ["TRAIN.MAX_STEPS", "2", "TRAIN.EVAL_PERIOD", "0", "DATASET.IMAGE_SIZE", "[16, 16]", "EVAL.PLOTS", "False",
         "EVAL.REPORT", "False", "TRAIN.TENSORBOARD", "False"]


def small_overrides(recipe: Path) -> list:
    """``SMALL``, and training crops sized for its frames where the recipe crops."""
    small = list(SMALL)
    if load_cfg(str(recipe)).DATASET.TRAIN_TRANSFORMS:
        small += ["DATASET.TRAIN_TRANSFORMS", "[{'type': 'RandomCrop', 'size': [8, 8]}]"]
    return small


@pytest.fixture(scope="module")
def benchmarks(tmp_path_factory):
    root = tmp_path_factory.mktemp("benchmarks")
    # long enough for PredNet's 9 frames of history, with anomalies after them (1-based for Avenue)
    avenue = make_avenue(root / "avenue", lengths=(18, 20), intervals=([(12, 15)], [(2, 3), (14, 18)]), train_length=12)
    shanghaitech = make_shanghaitech(root / "shanghaitech", tests={"01_0014": [(12, 15)], "01_0015": [],
                                                                   "02_0128": [(10, 19)]},
                                     lengths={"01_0014": 18, "01_0015": 16, "02_0128": 20}, train_length=12)
    return {"avenue": (root / "avenue", avenue), "shanghaitech": (root / "shanghaitech", shanghaitech)}


def test_there_are_ped2_recipes():
    assert {"ped2_convlstm.yaml", "ped2_prednet.yaml", "ped2_anopcn.yaml", "ped2_flow_speed.yaml",
            "ped2_copy_last.yaml"} <= set(RECIPES)


# a fusion's run writes each of its cues alone beside it (cues/ in the run directory), its no-learning ones among them
@pytest.mark.parametrize("recipe", [r for r in RECIPES if load_cfg(str(REPO / "configs" / r)).MODEL.NAME
                                    not in ("CopyLast", "FlowSpeed", "Fusion")])
def test_every_learned_ped2_recipe_scores_the_baselines_beside_it(recipe):
    names = [b["name"] for b in load_cfg(str(REPO / "configs" / recipe)).EVAL.BASELINES]
    assert {"copy_last", "flow_speed_max", "flow_speed_top1", "flow_speed_excess"} <= set(names), recipe


@pytest.mark.parametrize("dataset", ["avenue", "shanghaitech"])
@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_runs_on_another_benchmark(recipe, dataset, benchmarks, tmp_path):
    root, labels = benchmarks[dataset]
    out = tmp_path / "run"
    small = small_overrides(REPO / "configs" / recipe)
    if load_cfg(str(REPO / "configs" / recipe)).MODEL.NAME == "ObjectCue":  # regions sized for the small frames
        small += ["MODEL.ARGS.foreground.min_area", "2", "MODEL.ARGS.foreground.kernel", "0",
                  "MODEL.ARGS.foreground.close", "3"]
    recipe_cfg = load_cfg(str(REPO / "configs" / recipe))
    if recipe_cfg.MODEL.NAME == "Fusion":  # a cue trained on this benchmark first: as small
        cues = [dict(c, train={"config": c["train"], "opts": small_overrides(REPO / c["train"])}) if c.get("train")
                else c for c in cfg_to_dict(recipe_cfg.MODEL.ARGS)["cues"]]
        small += ["MODEL.ARGS.cues", cues]
    cfg = load_cfg(str(REPO / "configs" / recipe),
                   ["DATASET.NAME", dataset, "DATASET.ROOT", str(root), "SYSTEM.OUTPUT_DIR", str(out), *small])
    metrics = train(cfg)
    for c in cfg.MODEL.ARGS.get("cues", []):  # trained here, on this benchmark, not the Ped2 checkpoint used
        if c.get("train"):
            members = len(c["checkpoint"]) if isinstance(c.get("checkpoint"), list) else 0  # an ensemble's
            runs = [out / "cue_runs" / c["name"] / f"member{j}" for j in range(members)] or [out / "cue_runs" / c["name"]]
            for run in runs:
                assert (run / "checkpoints" / "last.pth").is_file()
                assert load_cfg(run / "config.yaml").DATASET.NAME == dataset
    written = json.loads((out / "metrics.json").read_text())
    assert written["auc_micro"] == metrics["auc_micro"] and 0.0 <= metrics["auc_micro"] <= 1.0
    assert written["frames_evaluated"] + written["frames_unscored"] == sum(len(v) for v in labels.values())
    assert 0 < written["frames_anomalous"] <= sum(int(v.sum()) for v in labels.values())
    # the no-learning baselines the recipe lists, scored in the same run on the same videos
    assert list(written.get("baselines", {})) == [b["name"] for b in cfg.EVAL.BASELINES]
    for name, row in written.get("baselines", {}).items():
        assert 0.0 <= row["auc_micro"] <= 1.0, name
