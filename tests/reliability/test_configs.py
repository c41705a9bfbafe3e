"""Bad config values, override lines and YAML files: each ends before any training in one line
``error: ...`` (exit code 2, no traceback) naming the key, the value and what is allowed, and
leaves no run behind."""
from __future__ import annotations

import pytest

from testutils import assert_one_clear_error, run_tool_in_process

from conftest import FAST

# (id, overrides, the part of the error line that must be there)
BAD_VALUES = [
    ("max_steps_negative", ["TRAIN.MAX_STEPS", "-5"], "config key 'TRAIN.MAX_STEPS' must be >= 1, got -5"),
    ("max_steps_zero", ["TRAIN.MAX_STEPS", "0"], "config key 'TRAIN.MAX_STEPS' must be >= 1, got 0"),
    ("max_steps_fraction", ["TRAIN.MAX_STEPS", "2.5"], "config key 'TRAIN.MAX_STEPS' expects int"),
    ("batch_size_zero", ["TRAIN.BATCH_SIZE", "0"], "config key 'TRAIN.BATCH_SIZE' must be >= 1, got 0"),
    ("chunk_zero", ["TEST.CHUNK", "0"], "config key 'TEST.CHUNK' must be >= 1, got 0"),
    ("chunk_negative", ["TEST.CHUNK", "-64"], "config key 'TEST.CHUNK' must be >= 1, got -64"),
    ("clip_length_one", ["DATASET.CLIP_LENGTH", "1"], "config key 'DATASET.CLIP_LENGTH' must be >= 2, got 1"),
    ("clip_stride_zero", ["DATASET.CLIP_STRIDE", "0"], "config key 'DATASET.CLIP_STRIDE' must be >= 1, got 0"),
    ("frame_step_negative", ["DATASET.FRAME_STEP", "-1"], "config key 'DATASET.FRAME_STEP' must be >= 1, got -1"),
    ("num_workers_negative", ["DATASET.NUM_WORKERS", "-1"], "config key 'DATASET.NUM_WORKERS' must be >= 0, got -1"),
    ("num_threads_negative", ["SYSTEM.NUM_THREADS", "-2"], "config key 'SYSTEM.NUM_THREADS' must be >= 0, got -2"),
    ("lr_zero", ["TRAIN.LR", "0"], "config key 'TRAIN.LR' must be > 0.0, got 0.0"),
    ("lr_negative", ["TRAIN.LR", "-1e-3"], "config key 'TRAIN.LR' must be > 0.0, got -0.001"),
    ("lr_not_a_number", ["TRAIN.LR", "fast"], "config key 'TRAIN.LR' expects float (default 0.003), got 'fast'"),
    ("weight_decay_negative", ["TRAIN.WEIGHT_DECAY", "-0.1"],
     "config key 'TRAIN.WEIGHT_DECAY' must be >= 0.0, got -0.1"),
    ("grad_clip_negative", ["TRAIN.GRAD_CLIP", "-1"], "config key 'TRAIN.GRAD_CLIP' must be >= 0.0, got -1.0"),
    ("eval_period_below_never", ["TRAIN.EVAL_PERIOD", "-2"], "config key 'TRAIN.EVAL_PERIOD' must be >= -1, got -2"),
    ("checkpoint_period_negative", ["TRAIN.CHECKPOINT_PERIOD", "-10"],
     "config key 'TRAIN.CHECKPOINT_PERIOD' must be >= 0, got -10"),
    ("keep_checkpoints_negative", ["TRAIN.KEEP_CHECKPOINTS", "-1"],
     "config key 'TRAIN.KEEP_CHECKPOINTS' must be >= 0, got -1"),
    ("patience_negative", ["TRAIN.EARLY_STOP_PATIENCE", "-2"],
     "config key 'TRAIN.EARLY_STOP_PATIENCE' must be >= 0, got -2"),
    ("log_period_negative", ["TRAIN.LOG_PERIOD", "-1"], "config key 'TRAIN.LOG_PERIOD' must be >= 0, got -1"),
    ("max_frames_negative", ["TRAIN.MAX_FRAMES", "-5"], "config key 'TRAIN.MAX_FRAMES' must be >= 0, got -5"),
    ("fit_max_frames_negative", ["TRAIN.FIT_MAX_FRAMES", "-1"],
     "config key 'TRAIN.FIT_MAX_FRAMES' must be >= 0, got -1"),
    ("ema_start_negative", ["TRAIN.EMA_START", "-1"], "config key 'TRAIN.EMA_START' must be >= 0, got -1"),
    ("image_period_negative", ["TRAIN.IMAGE_PERIOD", "-100"],
     "config key 'TRAIN.IMAGE_PERIOD' must be >= 0, got -100"),
    ("max_val_zero", ["SCORE.MAX_VAL", "0"], "config key 'SCORE.MAX_VAL' must be > 0.0, got 0.0"),
    ("patch_negative", ["SCORE.PATCH", "-1"], "config key 'SCORE.PATCH' must be >= 0, got -1"),
    ("smooth_sigma_negative", ["SCORE.SMOOTH_SIGMA", "-0.5"],
     "config key 'SCORE.SMOOTH_SIGMA' must be >= 0.0, got -0.5"),
    ("pixel_threshold_above_one", ["SCORE.PIXEL_THRESHOLD", "1.5"],
     "config key 'SCORE.PIXEL_THRESHOLD' must be in (0, 1)"),
    ("alarm_min_frames_zero", ["STREAM.ALARM_MIN_FRAMES", "0"],
     "config key 'STREAM.ALARM_MIN_FRAMES' must be >= 1, got 0"),
    ("stream_fps_negative", ["STREAM.FPS", "-25"], "config key 'STREAM.FPS' must be >= 0.0, got -25.0"),
    ("report_top_k_negative", ["EVAL.REPORT_TOP_K", "-1"], "config key 'EVAL.REPORT_TOP_K' must be >= 0, got -1"),
    ("log_level_unknown", ["LOG.LEVEL", "LOUD"],
     "config key 'LOG.LEVEL' must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL; got 'LOUD'"),
    ("log_level_lower_case", ["LOG.LEVEL", "info"], "got 'info' (did you mean 'INFO'?)"),
    ("precision_unknown", ["TEST.PRECISION", "fp16"],
     "config key 'TEST.PRECISION' must be one of fp32, bf16; got 'fp16' (did you mean 'bf16'?)"),
    ("smooth_mode_unknown", ["SCORE.SMOOTH_MODE", "both"],
     "config key 'SCORE.SMOOTH_MODE' must be one of centred, causal; got 'both'"),
    ("missing_unknown", ["SCORE.MISSING", "drop"], "config key 'SCORE.MISSING' must be one of exclude, fill"),
    ("channels_two", ["DATASET.CHANNELS", "2"], "config key 'DATASET.CHANNELS' must be one of 1, 3; got 2"),
    ("image_size_one_number", ["DATASET.IMAGE_SIZE", "[32]"],
     "config key 'DATASET.IMAGE_SIZE' must be [H, W] positive ints, got [32]"),
    ("image_size_three_numbers", ["DATASET.IMAGE_SIZE", "[32, 32, 3]"],
     "config key 'DATASET.IMAGE_SIZE' must be [H, W] positive ints, got [32, 32, 3]"),
    ("image_size_zero", ["DATASET.IMAGE_SIZE", "[0, 32]"],
     "config key 'DATASET.IMAGE_SIZE' must be [H, W] positive ints, got [0, 32]"),
    ("image_size_empty", ["DATASET.IMAGE_SIZE", "[]"],
     "config key 'DATASET.IMAGE_SIZE' must be [H, W] positive ints, got []"),
    ("image_size_not_pooled_evenly", ["DATASET.IMAGE_SIZE", "[30, 30]"],
     "input height and width must be multiples of 4; got 30x30"),
    ("hook_given_as_a_name", ["TRAIN.CUSTOM_HOOKS", "['LoggerHook']"],
     "config key 'TRAIN.CUSTOM_HOOKS': entry 0 must be a mapping {type: NAME, <arguments>}, got 'LoggerHook'"),
    ("hook_unknown_argument", ["TRAIN.CUSTOM_HOOKS", "[{'type': 'LoggerHook', 'periodd': 3}]"],
     "hook 'LoggerHook' got unknown argument(s) ['periodd']"),
    ("transform_given_as_a_number", ["DATASET.TRAIN_TRANSFORMS", "[3]"],
     "config key 'DATASET.TRAIN_TRANSFORMS': entry 0 must be a mapping {type: NAME, <arguments>}, got 3"),
    ("transform_crop_too_large", ["DATASET.TRAIN_TRANSFORMS", "[{'type': 'RandomCrop', 'size': [64, 64]}]"],
     "RandomCrop size [64, 64] is larger than the frames [32, 32] (DATASET.IMAGE_SIZE)"),
    ("best_metric_misspelt", ["TRAIN.BEST_METRIC", "auc_mirco"],
     "config key 'TRAIN.BEST_METRIC' is 'auc_mirco' (did you mean 'auc_micro'?), which the AnomalyDetection "
     "evaluation never produces; it produces: ap, auc_macro, auc_micro, eer, eer_threshold, inference_fps"),
    ("best_metric_upper_case", ["TRAIN.BEST_METRIC", "AUC_MACRO"], "(did you mean 'auc_macro'?)"),
    ("best_metric_without_evaluators", ["EVAL.EVALUATORS", "[]"],
     "config key 'TRAIN.BEST_METRIC' is 'auc_micro', which the AnomalyDetection evaluation never produces"),
    ("optimizer_base_class", ["TRAIN.OPTIMIZER", "Optimizer"],
     "TRAIN.OPTIMIZER: torch.optim has no optimizer 'Optimizer'; it has: "),
    ("optimizer_without_weight_decay", ["TRAIN.OPTIMIZER", "LBFGS"],
     "TRAIN.OPTIMIZER LBFGS cannot be built with TRAIN.LR and TRAIN.WEIGHT_DECAY"),
    ("lr_schedule_negative_warmup", ["TRAIN.LR_SCHEDULE", "{type: cosine, warmup_steps: -3}"],
     "TRAIN.LR_SCHEDULE.warmup_steps must be an int >= 0, got -3"),
    ("normalizer_window_below_warmup", ["SCORE.NORMALIZE", "{type: causal, window: 0}"],
     "window (0) must be >= warmup (25)"),
    ("dataset_unknown_argument", ["DATASET.ARGS.frame_rate", "25"],
     "dataset 'SyntheticDataset' got unknown argument 'frame_rate'"),
    ("pseudo_anomaly_longer_than_videos", ["TEST.PSEUDO_ANOMALY", "{type: frame_skip, length: 1000}"],
     "no video of split 'testing' is long enough for a segment after 6 normal frames (the longest has 60 frames)"),
    ("override_without_value", ["TRAIN.LR"], "overrides must be KEY VALUE pairs; 'TRAIN.LR' has no value"),
    ("override_of_a_section", ["TRAIN", "5"], "'TRAIN' is a section; override one of its keys"),
]


@pytest.mark.parametrize("overrides,expect", [c[1:] for c in BAD_VALUES], ids=[c[0] for c in BAD_VALUES])
def test_bad_value_is_refused_before_training(overrides, expect, cfg_file, tiny_synthetic, tmp_path, capsys,
                                              monkeypatch):
    out = tmp_path / "run"
    code, err = run_tool_in_process(capsys, monkeypatch, "train.py", "--cfg", cfg_file, "DATASET.ROOT", tiny_synthetic,
                                    "SYSTEM.OUTPUT_DIR", out, *FAST, *overrides)
    assert_one_clear_error(code, err, expect)
    assert not (out / "checkpoints").exists()
    if expect not in FOUND_AT_THE_FIRST_STEP:
        assert not (out / "config.yaml").exists()  # refused before the run started


# What only the network finds, at the first forward pass (still before any checkpoint).
FOUND_AT_THE_FIRST_STEP = {"input height and width must be multiples of 4; got 30x30",
                           "RandomCrop size [64, 64] is larger than the frames [32, 32] (DATASET.IMAGE_SIZE)"}


# (id, the YAML file's bytes, the part of the error line that must be there after the file's path)
BAD_FILES = [
    ("list_not_mapping", b"- TRAIN\n- TEST\n", "must hold a mapping of sections, got list"),
    ("invalid_yaml", b"TRAIN:\n  LR: [0.1\n",
     "is not valid YAML: expected ',' or ']', but got '<stream end>' at line 3"),
    ("section_given_a_number", b"TRAIN: 5\n", "'TRAIN' is a section; expected a mapping, got 5"),
    ("bad_value_in_file", b"TRAIN:\n  MAX_STEPS: -1\n", "config key 'TRAIN.MAX_STEPS' must be >= 1, got -1"),
    ("binary_file", bytes(range(256)) * 4, "is not a UTF-8 text file (byte 128); a config is YAML text"),
]


@pytest.mark.parametrize("content,expect", [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES])
def test_bad_config_file(content, expect, tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(content)
    code, err = run_tool_in_process(capsys, monkeypatch, "train.py", "--cfg", bad, "SYSTEM.OUTPUT_DIR",
                                    tmp_path / "run")
    assert_one_clear_error(code, err, expect)
    assert str(bad) in err.strip().splitlines()[-1] or "config key" in expect
    assert not (tmp_path / "run").exists()


def test_config_written_by_excel_with_a_bom_is_read(cfg_file, tmp_path):
    from pyanomaly.config import load_cfg
    bommed = tmp_path / "bom.yaml"
    bommed.write_bytes(b"\xef\xbb\xbf" + cfg_file.read_bytes())
    assert load_cfg(bommed).DATASET.IMAGE_SIZE == [32, 32]
