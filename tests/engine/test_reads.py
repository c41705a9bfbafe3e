"""What a run of a config reads (``engine/reads.py``), as ``tools/prepare_data.py`` decodes and checks
it ahead: the training split under the budget its method reads it with, and a fused cue's training."""
from __future__ import annotations

import io

import numpy as np

from pyanomaly.config import load_cfg
from pyanomaly.datasets.summary import main
from pyanomaly.engine.launch import train
from pyanomaly.engine.reads import run_reads

QUIET = ["EVAL.PLOTS", "False", "EVAL.REPORT", "False", "LOG.PROGRESS", "False", "TRAIN.TENSORBOARD", "False"]
RECIPE = """
DATASET:
  IMAGE_SIZE: [8, 16]
  CLIP_LENGTH: 3
MODEL:
  NAME: FramePredictor
  ARGS:
    network: {type: UNet, in_channels: 1, base_channels: 4, depth: 1}
TRAIN:
  MAX_STEPS: 1
  BATCH_SIZE: 2
  MAX_FRAMES: 30
SCORE:
  ERROR: AREA
"""


def fusion_opts(root, tmp_path, recipe, checkpoint=None):
    unet = {"name": "unet", "method": {"type": "FramePredictor",
                                       "network": {"type": "UNet", "in_channels": 1, "base_channels": 4, "depth": 1}},
            "error": {"type": "AREA"}, "train": str(recipe), "size": [8, 16]}
    if checkpoint is not None:
        unet["checkpoint"] = str(checkpoint)
    cues = [{"name": "copy", "method": {"type": "CopyLast"}, "error": {"type": "AREA"}}, unet]
    return ["MODEL.NAME", "Fusion", "MODEL.ARGS.cues", cues, "SCORE.ERROR", "FRAME_ERROR",
            "DATASET.ROOT", str(root), "DATASET.IMAGE_SIZE", "[16, 16]", "DATASET.CLIP_LENGTH", "3",
            "DATASET.CACHE_DIR", str(tmp_path / "cache"), "SYSTEM.OUTPUT_DIR", str(tmp_path / "fused"), *QUIET]


def _prepare(cfg_file, opts) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = main(cfg_file, opts, out=out, err=err, reads=run_reads)
    return rc, out.getvalue(), err.getvalue()


def _row(report: str, name: str) -> list[str]:
    """The cells of the row ``name`` of a summary table, its name first."""
    return [name] + next(line for line in report.splitlines() if line.startswith(name + "  "))[len(name):].split()


def _cached_sizes(cache) -> set[tuple[int, ...]]:
    return {np.load(p, mmap_mode="r").shape[1:3] for p in cache.rglob("*.npy")}


def test_a_fusion_reads_its_training_split_under_the_fit_budget(tiny_synthetic, tmp_path):
    recipe = tmp_path / "unet.yaml"
    recipe.write_text(RECIPE)
    opts = fusion_opts(tiny_synthetic, tmp_path, recipe) + ["TRAIN.FIT_MAX_FRAMES", "40", "TRAIN.MAX_FRAMES", "100"]
    reads = run_reads(load_cfg(None, opts))
    assert reads[0].training == ("fit",) and reads[0].testing and reads[0].title == ""
    # no checkpoint named: the cue's recipe trains first, on this dataset at the recipe's size, test split unread
    assert len(reads) == 2
    cue = reads[1]
    assert cue.training == ("train",) and not cue.testing
    assert "cue unet" in cue.title and str(recipe) in cue.title and "no checkpoint is named" in cue.title
    assert cue.cfg.DATASET.ROOT == str(tiny_synthetic) and list(cue.cfg.DATASET.IMAGE_SIZE) == [8, 16]
    assert cue.cfg.TRAIN.MAX_FRAMES == 30  # the recipe's budget, not the fusion's: what its training reads
    # a cue run told to evaluate itself reads its test split too
    evaluated = fusion_opts(tiny_synthetic, tmp_path, recipe)
    evaluated[3][1]["train"] = {"config": str(recipe), "opts": ["TRAIN.EVAL_PERIOD", 0]}
    assert run_reads(load_cfg(None, evaluated))[1].testing

    cfg_file = tmp_path / "fusion.yaml"
    cfg_file.write_text("")
    rc, out, err = _prepare(cfg_file, opts)
    assert rc == 0, err
    fused, cue_part = out.split("\n\ncue unet, trained first")
    assert _row(fused, "training")[1:3] == ["2", "40"]  # the first 20 frames of each of the 2 videos
    assert "as a method or baseline fitted by reading it once reads them under TRAIN.FIT_MAX_FRAMES" in fused
    assert _row(fused, "testing")[1:3] == ["4", "240"]
    assert _row(cue_part, "training")[1:3] == ["2", "30"] and _row(cue_part, "training")[-1] == "8x16x1"
    assert "testing" not in cue_part
    assert {(16, 16), (8, 16)} <= _cached_sizes(tmp_path / "cache")  # both decoded ahead of the run

    # the run then decodes nothing: its fit, its test split and the cue's training read the cache
    train(load_cfg(None, opts))
    fused_log = (tmp_path / "fused" / "log.txt").read_text()
    assert "cue unet: trained in" in fused_log and "Fusion cue unet: mean" in fused_log
    logs = [fused_log, (tmp_path / "fused" / "cue_runs" / "unet" / "log.txt").read_text()]
    assert not [line for log in logs for line in log.splitlines() if "into the cache" in line]


def test_a_cue_trained_on_this_dataset_adds_nothing_to_read(tiny_synthetic, tmp_path):
    recipe = tmp_path / "unet.yaml"
    recipe.write_text(RECIPE)
    train(load_cfg(recipe, ["DATASET.ROOT", str(tiny_synthetic), "SYSTEM.OUTPUT_DIR", str(tmp_path / "own"),
                            "TRAIN.EVAL_PERIOD", "-1", *QUIET]))
    reads = run_reads(load_cfg(None, fusion_opts(tiny_synthetic, tmp_path, recipe,
                                                 tmp_path / "own" / "checkpoints" / "last.pth")))
    assert len(reads) == 1 and reads[0].training == ("fit",)


def test_a_step_trained_method_reads_under_max_frames_and_fit_for_its_baselines(tiny_synthetic, tmp_path):
    recipe = tmp_path / "unet.yaml"
    recipe.write_text(RECIPE)
    base = ["DATASET.ROOT", str(tiny_synthetic), "DATASET.CACHE_DIR", str(tmp_path / "cache"),
            "TRAIN.MAX_FRAMES", "60", "TRAIN.FIT_MAX_FRAMES", "20"]
    plain = run_reads(load_cfg(recipe, base))
    assert [(r.training, r.testing) for r in plain] == [(("train",), True)]
    excess = ["EVAL.BASELINES", [{"type": "CopyLast"}, {"type": "FlowSpeed", "excess": 0.9, "cell": 8,
                                                                "score": {"ERROR": "CELL_MAX", "PATCH": 8}}]]
    assert run_reads(load_cfg(recipe, base + excess))[0].training == ("train", "fit")
    # never evaluated: the baselines are not scored, so they fit nothing
    assert run_reads(load_cfg(recipe, base + excess + ["TRAIN.EVAL_PERIOD", "-1"]))[0].training == ("train",)

    rc, out, err = _prepare(recipe, base + excess)
    assert rc == 0, err
    assert _row(out, "training")[1:3] == ["2", "60"] and _row(out, "training (fit)")[1:4] == ["2", "20", "-"]
    assert "training (fit): the first 10 frames of each video were read and checked" in out
    # budgets that cut nothing read the same frames: one row
    rc, out, err = _prepare(recipe, base[:4] + ["TRAIN.MAX_FRAMES", "0"] + excess)
    assert rc == 0, err
    assert "training (fit)" not in out and _row(out, "training")[1:3] == ["2", "120"]


def test_a_bad_cue_recipe_is_one_error_line_naming_its_key(tiny_synthetic, tmp_path):
    cfg_file = tmp_path / "fusion.yaml"
    cfg_file.write_text("")
    rc, out, err = _prepare(cfg_file, fusion_opts(tiny_synthetic, tmp_path, tmp_path / "missing.yaml"))
    assert rc == 1 and out == ""
    assert err.startswith("error: MODEL.ARGS.cues[1].train") and "missing.yaml" in err and len(err.splitlines()) == 1
