"""Trainer hooks, registered in ``HOOKS``.

A hook receives the trainer at ``before_train``, ``before_step``, ``after_step`` and
``after_train`` (the last one also after an error: check ``trainer.failed``). The built-in
hooks run in this order, each relying on the ones before it within a step:

1. ``LRSchedulerHook``  advance the learning rate after the optimizer step;
2. ``NaNGuardHook``     stop at a non-finite loss before anything is evaluated or saved;
3. ``EvalHook``         score the test split, putting ``trainer.metrics``;
4. ``CheckpointHook``   write ``last`` and, with new metrics, ``best``;
5. ``EarlyStopHook``    stop after evaluations without improvement;
6. ``LoggerHook``       report the step, the losses, the metrics and image grids last, once
                        all is known;

then ``TRAIN.CUSTOM_HOOKS`` in their listed order, so a user's hook sees every built-in
result of the step (and a hook that ends the process finds this step's checkpoint written).

Under ``torchrun`` every process runs every hook at the same steps (their decisions depend
only on the step and on metrics, which are gathered on all processes); only the main
process writes files and logs.

The built-in hooks stand together in this one file (past 300 lines) on purpose: their order
and the reasons for it are the contract, and they read best side by side.
"""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import torch

from pyanomaly.errors import NonFiniteLossError
from pyanomaly.evaluation.metrics import format_metrics
from pyanomaly.flow import flow_to_rgb
from pyanomaly.registry import HOOKS

logger = logging.getLogger("pyanomaly")


class HookBase:
    """A no-op hook; override what you need. ``self.trainer`` is set before ``before_train``."""

    trainer = None

    def before_train(self):
        pass

    def before_step(self):
        pass

    def after_step(self):
        pass

    def after_train(self):
        pass

    def state_dict(self) -> dict:
        """Plain-typed state saved in checkpoints (for exact resume)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def _due(step: int, period: int, max_steps: int) -> bool:
    return step == max_steps or (period > 0 and step % period == 0)


@HOOKS.register_module()
class LRSchedulerHook(HookBase):
    """Step the trainer's LR scheduler after every optimizer step."""

    def after_step(self):
        if self.trainer.scheduler is not None:
            self.trainer.scheduler.step()


@HOOKS.register_module()
class NaNGuardHook(HookBase):
    """Stop with a message naming the step and the loss terms when a loss is not finite.

    Nothing is saved after the bad step, so ``checkpoints/last.pth`` stays the last good one;
    the message says whether there is one.
    """

    def after_step(self):
        t = self.trainer
        bad = {k: float(v) for k, v in t.losses.items() if not math.isfinite(float(v))}
        if bad:
            terms = ", ".join(f"{k}={float(v):.4g}" for k, v in t.losses.items())
            last = Path(t.checkpoint_dir) / "last.pth"
            saved = (f"{last} holds the last good state" if last.is_file() else
                     f"no checkpoint was written before it ({last} does not exist yet)")
            raise NonFiniteLossError(f"non-finite loss at step {t.step}: {terms}. Lower TRAIN.LR or set "
                                     f"TRAIN.GRAD_CLIP; {saved}")


@HOOKS.register_module()
class EvalHook(HookBase):
    """Score the test split every ``period`` steps and at the end (``period`` -1: never); results in
    ``trainer.metrics``."""

    def __init__(self, period: int = 0):
        self.period = period

    def _run(self):
        t = self.trainer
        t.metrics = t.evaluate()
        t.metrics_step = t.step

    def after_step(self):
        t = self.trainer
        if self.period > 0 and t.step % self.period == 0 and t.step < t.max_steps:
            self._run()

    def after_train(self):
        t = self.trainer
        if self.period >= 0 and not t.failed and t.step > 0 and t.metrics_step != t.step:
            self._run()


@HOOKS.register_module()
class CheckpointHook(HookBase):
    """``last.pth`` every ``period`` steps and at the end; ``best.pth`` by ``metric``/``mode``.

    ``keep`` > 0 also writes a numbered ``step_XXXXXXX.pth`` with every ``last.pth`` and keeps
    the newest ``keep`` of them. After an error nothing is written, so ``last.pth`` stays the
    last good state.
    """

    def __init__(self, period: int = 500, metric: str = "auc_micro", mode: str = "max", keep: int = 0):
        self.period, self.metric, self.mode, self.keep = period, metric, mode, keep
        self.best: float | None = None
        self._seen_metrics_step = -1
        self._last_saved = -1  # step of the newest last.pth
        self._last_saved_metrics = -1  # the metrics_step it holds

    def state_dict(self):
        return {"best": self.best}

    def load_state_dict(self, state):
        self.best = state.get("best")

    def _improved(self) -> bool:
        t = self.trainer
        if t.metrics is None or t.metrics_step == self._seen_metrics_step:
            return False
        self._seen_metrics_step = t.metrics_step
        value = t.metrics.get(self.metric)
        if value is None:
            return False
        better = self.best is None or (value > self.best if self.mode == "max" else value < self.best)
        if better:
            self.best = float(value)
        return better

    def after_step(self):
        t = self.trainer
        improved = self._improved()
        self._write(last=_due(t.step, self.period, t.max_steps) or improved, best=improved)
        if improved:
            logger.info("new best %s = %.4f at step %d -> checkpoints/best.pth", self.metric, self.best, t.step)

    def after_train(self):
        t = self.trainer
        if t.failed:
            return  # keep the last good checkpoint
        improved = self._improved()
        if self.best is None and t.is_main and t.metrics is not None:
            why = t.metrics.get("labels_missing")
            logger.warning("TRAIN.BEST_METRIC %s had no value at any evaluation%s; checkpoints/best.pth holds the "
                           "final weights", self.metric, f" ({why})" if why else "")
        # Without any value of the metric (e.g. a test split without labels), best = the final
        # weights. Decided from state, not from the file system, so every process agrees.
        # last.pth is rewritten after the final evaluation so that it holds the final metrics.
        stale = self._last_saved != t.step or self._last_saved_metrics != t.metrics_step
        self._write(last=improved or stale, best=improved or self.best is None)

    def _write(self, last: bool, best: bool) -> None:
        """One state, written under each name due (every process calls ``save``; rank 0 writes)."""
        t = self.trainer
        names = []
        if last:
            names += ["last"] + ([f"step_{t.step:07d}"] if self.keep > 0 else [])
        if best:
            names.append("best")
        if not names:
            return
        t.save(*names)
        if last:
            self._last_saved, self._last_saved_metrics = t.step, t.metrics_step
        if last and self.keep > 0 and t.is_main:
            for p in sorted(t.checkpoint_dir.glob("step_*.pth"))[:-self.keep]:
                p.unlink(missing_ok=True)


@HOOKS.register_module()
class EarlyStopHook(HookBase):
    """Stop after ``patience`` evaluations without a better ``metric`` (0 = never)."""

    def __init__(self, patience: int = 0, metric: str = "auc_micro", mode: str = "max"):
        self.patience, self.metric, self.mode = patience, metric, mode
        self.best, self.bad, self._seen = None, 0, -1

    def state_dict(self):
        return {"best": self.best, "bad": self.bad}

    def load_state_dict(self, state):
        self.best, self.bad = state.get("best"), state.get("bad", 0)

    def after_step(self):
        t = self.trainer
        if self.patience <= 0 or t.metrics is None or t.metrics_step == self._seen:
            return
        self._seen = t.metrics_step
        value = t.metrics.get(self.metric)
        if value is None:
            return
        if self.best is None or (value > self.best if self.mode == "max" else value < self.best):
            self.best, self.bad = value, 0
        else:
            self.bad += 1
            if self.bad >= self.patience:
                logger.info("early stop at step %d: %s has not improved for %d evaluations (best %.4f)",
                            t.step, self.metric, self.bad, self.best)
                t.stop = True


@HOOKS.register_module()
class LoggerHook(HookBase):
    """Console and ``log.txt`` lines with losses, LR, speed and ETA; TensorBoard scalars and images.

    Args:
        period: log every ``period`` steps.
        tensorboard: also write to ``OUTPUT_DIR/tb``: ``train/<loss term>``, ``train/lr``,
            ``eval/<metric>`` scalars and the image grids.
        image_period: every ``image_period`` steps (0 = never) a TensorBoard image
            ``train/input_prediction_error`` of the first clip of the step's batch (see
            :func:`prediction_grid`; with ``DATASET.FLOW``, its optical flow as colour
            wheels in a last row); off for a model that predicts no frames.
    """

    def __init__(self, period: int = 20, tensorboard: bool = True, image_period: int = 0):
        self.period, self.tensorboard, self.image_period = period, tensorboard, image_period
        self.writer = None
        self._logged_metrics = -1

    def before_train(self):
        t = self.trainer
        if self.tensorboard and t.is_main:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                logger.warning("tensorboard is not installed; TensorBoard logging is off")
            else:
                # On resume, purge_step makes TensorBoard drop what the interrupted run logged
                # after its last checkpoint, which this run logs again.
                purge = t.step + 1 if t.step > 0 else None
                self.writer = SummaryWriter(str(Path(t.output_dir) / "tb"), purge_step=purge)
        self._t0, self._s0 = time.perf_counter(), t.step

    def after_step(self):
        t = self.trainer
        if not t.is_main:
            return
        wrote = False
        if _due(t.step, self.period, t.max_steps):
            elapsed = time.perf_counter() - self._t0
            rate = elapsed / max(t.step - self._s0, 1)
            eta = rate * (t.max_steps - t.step)
            lr = t.optimizer.param_groups[0]["lr"]
            terms = "  ".join(f"{k} {float(v):.5f}" for k, v in t.losses.items())
            logger.info("step %d/%d  %s  lr %.2e  %.3f s/step  eta %s", t.step, t.max_steps, terms, lr, rate,
                        _hms(eta))
            if self.writer is not None:
                for k, v in t.losses.items():
                    self.writer.add_scalar(f"train/{k}", float(v), t.step)
                self.writer.add_scalar("train/lr", lr, t.step)
                wrote = True
        if (self.writer is not None and self.image_period > 0 and t.step % self.image_period == 0
                and t.batch is not None):
            try:
                flow = t.batch.get("flow")  # DATASET.FLOW: a row of colour wheels too
                grid = prediction_grid(t.model, t.batch["frames"][0], None if flow is None else flow[0])
            except NotImplementedError as e:  # e.g. a classifier: no frames to show
                logger.info("no TensorBoard image grids: %s", e)
                self.image_period = 0
            else:
                self.writer.add_image("train/input_prediction_error", grid, t.step)
                wrote = True
        wrote |= self._log_metrics()
        if wrote:
            # The writer would otherwise hold events for up to two minutes: a killed run would
            # lose them, and the resumed run does not log the steps before its checkpoint again.
            self.writer.flush()

    def _log_metrics(self) -> bool:
        """Log metrics not logged yet; True if TensorBoard got them."""
        t = self.trainer
        if t.metrics is None or t.metrics_step == self._logged_metrics:
            return False
        self._logged_metrics = t.metrics_step
        logger.info("eval at step %d: %s", t.metrics_step, format_metrics(t.metrics))
        if self.writer is None:
            return False
        for k, v in t.metrics.items():  # every scalar figure: AUCs, EER, AP, or another task's MSE, accuracy, ...
            if isinstance(v, float):
                self.writer.add_scalar(f"eval/{k}", v, t.metrics_step)
        return True

    def after_train(self):
        if self.trainer.is_main:
            self._log_metrics()
        if self.writer is not None:
            self.writer.close()


@torch.no_grad()
def prediction_grid(model, clip: torch.Tensor, flow: torch.Tensor | None = None) -> torch.Tensor:
    """An image of what the model predicts for one clip: (3, H', W') float in [0, 1].

    Rows: the clip's frames ``(T, C, H, W)``; the model's prediction of each from the
    frames before it (``predict_stream``; black where there is no history yet); the
    absolute error, scaled so its largest value is white (for a method whose prediction is an
    anomaly map ``(T, 1, H, W)``, that map instead of both, scaled the same way); with ``flow`` ``(T-1, 2, H, W)``
    (the clip's optical flow), the flow into each frame as a colour wheel
    (:func:`pyanomaly.flow.flow_to_rgb`; grey under the first frame, which has none). The model runs in eval mode
    (no batch-norm statistics updated) inside a forked RNG, so training continues exactly
    as without the image.
    """
    was_training = model.training
    devices = [clip.device] if clip.device.type == "cuda" else []
    model.eval()
    try:
        with torch.random.fork_rng(devices=devices):
            pred, valid, _ = model.predict_stream(clip, None)
    finally:
        model.train(was_training)
    frames = clip.detach().float()
    mask = valid.to(pred.device).view(-1, 1, 1, 1)
    if getattr(model, "output", "frame") == "anomaly_map":  # NaN where there is no map yet: black
        heat = torch.nan_to_num(pred.float(), nan=0.0).clamp_min(0) * mask
        rows = [frames, (heat / heat.max().clamp_min(1e-8)).expand(-1, frames.shape[1], -1, -1)]
    else:
        pred = pred.float().clamp(0, 1) * mask
        error = (pred - frames).abs() * mask
        rows = [frames, pred, error / error.max().clamp_min(1e-8)]
    if flow is not None:
        missing = torch.full((1, *flow.shape[1:]), float("nan"))
        wheels = flow_to_rgb(torch.cat([missing, flow.detach().float().cpu()]))  # (T, H, W, 3) uint8
        rows = [r.cpu().expand(-1, 3, -1, -1) for r in rows]  # gray frames shown as RGB beside the wheels
        rows.append(torch.from_numpy(wheels).permute(0, 3, 1, 2).float() / 255.0)
    from torchvision.utils import make_grid
    return make_grid(torch.cat([r.cpu() for r in rows]), nrow=clip.shape[0], padding=1, pad_value=0.5)


def _hms(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def build_hooks(cfg) -> list[HookBase]:
    """The built-in hooks in their documented order, then ``TRAIN.CUSTOM_HOOKS``."""
    from pyanomaly.registry import build
    tr = cfg.TRAIN
    hooks: list[HookBase] = [
        LRSchedulerHook(),
        NaNGuardHook(),
        EvalHook(period=tr.EVAL_PERIOD),
        CheckpointHook(period=tr.CHECKPOINT_PERIOD, metric=tr.BEST_METRIC, mode=tr.BEST_MODE, keep=tr.KEEP_CHECKPOINTS),
        EarlyStopHook(patience=tr.EARLY_STOP_PATIENCE, metric=tr.BEST_METRIC, mode=tr.BEST_MODE),
        LoggerHook(period=tr.LOG_PERIOD, tensorboard=tr.TENSORBOARD, image_period=tr.IMAGE_PERIOD),
    ]
    for spec in tr.CUSTOM_HOOKS:
        hooks.append(build(HOOKS, dict(spec)))
    return hooks
