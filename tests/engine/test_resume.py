"""--resume against the run's config.yaml: trajectory keys refused, safe keys and MAX_STEPS allowed."""
import logging

import pytest

from pyanomaly.config import load_cfg, save_cfg
from pyanomaly.engine.resume import SAFE_KEYS, changed_keys, check_resume_config
from pyanomaly.errors import CheckpointError


@pytest.fixture
def run(tmp_path):
    save_cfg(load_cfg(None, ["SYSTEM.OUTPUT_DIR", str(tmp_path), "TRAIN.MAX_STEPS", "10"]), tmp_path / "config.yaml")
    return tmp_path


def check(run, *opts, step=4, world=1, ckpt_world=1):
    cfg = load_cfg(None, ["SYSTEM.OUTPUT_DIR", str(run), "TRAIN.MAX_STEPS", "10", *opts])
    check_resume_config(cfg, run, {"step": step, "world": ckpt_world}, world)


def test_a_changed_lr_is_refused_with_old_and_new(run):
    with pytest.raises(CheckpointError, match=r"TRAIN\.LR 0\.001 -> 0\.5") as e:
        check(run, "TRAIN.LR", "0.5")
    assert "\n" not in str(e.value)


def test_every_offending_key_is_listed(run):
    with pytest.raises(CheckpointError) as e:
        check(run, "TRAIN.LR", "0.5", "SYSTEM.SEED", "3", "DATASET.CLIP_LENGTH", "4", "TRAIN.OPTIMIZER", "SGD",
              "MODEL.ARGS.network.type", "ConvLSTM", "EVAL.PLOTS", "False")
    msg = str(e.value)
    for part in ("TRAIN.LR 0.001 -> 0.5", "SYSTEM.SEED 0 -> 3", "DATASET.CLIP_LENGTH 10 -> 4",
                 "TRAIN.OPTIMIZER 'Adam' -> 'SGD'", "MODEL.ARGS.network.type None -> 'ConvLSTM'"):
        assert part in msg, msg
    assert "EVAL.PLOTS" not in msg


def test_safe_keys_and_a_longer_run_are_accepted(run, caplog):
    with caplog.at_level(logging.INFO, logger="pyanomaly"):
        check(run, "EVAL.PLOTS", "False", "TRAIN.LOG_PERIOD", "1", "SCORE.SMOOTH_SIGMA", "2.0",
              "TRAIN.LR_SCHEDULE", "cosine")
    assert "EVAL.PLOTS True -> False" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_extending_max_steps_warns_when_the_schedule_depends_on_it(run, caplog):
    with caplog.at_level(logging.INFO, logger="pyanomaly"):
        check(run, "TRAIN.MAX_STEPS", "20")  # cosine (the default) runs to MAX_STEPS
    assert "TRAIN.MAX_STEPS 10 -> 20 changes the LR schedule of the remaining steps" in caplog.text


def test_extending_max_steps_of_a_constant_schedule_says_nothing_of_it(tmp_path, caplog):
    save_cfg(load_cfg(None, ["SYSTEM.OUTPUT_DIR", str(tmp_path), "TRAIN.LR_SCHEDULE", "constant"]),
             tmp_path / "config.yaml")
    cfg = load_cfg(None, ["SYSTEM.OUTPUT_DIR", str(tmp_path), "TRAIN.LR_SCHEDULE", "constant", "TRAIN.MAX_STEPS",
                          "5000"])
    with caplog.at_level(logging.INFO, logger="pyanomaly"):
        check_resume_config(cfg, tmp_path, {"step": 1000, "world": 1})
    assert "LR schedule" not in caplog.text


def test_batch_size_may_follow_the_number_of_processes(run):
    check(run, "TRAIN.BATCH_SIZE", "8", world=1, ckpt_world=2)  # 4 x 2 processes = 8 x 1
    with pytest.raises(CheckpointError, match=r"TRAIN\.BATCH_SIZE 4 -> 8 \(global batch 4 -> 8\)"):
        check(run, "TRAIN.BATCH_SIZE", "8")


def test_a_run_without_config_yaml_resumes_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="pyanomaly"):
        check(tmp_path, "TRAIN.LR", "0.5")
    assert "has no config.yaml" in caplog.text


def test_changed_keys_and_the_safe_list():
    assert changed_keys({"A": {"B": 1, "C": 2}}, {"A": {"B": 1, "C": 3}, "D": 4}) == [("A.C", 2, 3), ("D", None, 4)]
    assert "TRAIN.MAX_STEPS" in SAFE_KEYS and "TRAIN.LR" not in SAFE_KEYS
