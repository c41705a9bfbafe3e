"""LR schedules: the factor curves, the TRAIN.LR_SCHEDULE spec, errors, a user's own schedule, resume."""
import math

import pytest
import torch

from pyanomaly.config import load_cfg
from pyanomaly.engine.launch import build_optimizer
from pyanomaly.engine.lr_schedules import Constant, Cosine, Step, build_lr_scheduler
from pyanomaly.registry import LR_SCHEDULES, RegistryError, import_plugins, registered_names


def _lrs(cfg, steps: int) -> list[float]:
    """The learning rate of each of the first ``steps`` optimizer steps under ``cfg``."""
    optimizer, scheduler = build_optimizer(cfg, torch.nn.Linear(2, 1))
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_factor_curves():
    assert [Constant(warmup_steps=4)(s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    cosine = Cosine(total_steps=10, warmup_steps=2)
    assert [cosine(s) for s in (0, 1, 2)] == [0.5, 1.0, 1.0]  # warm-up, then the cosine from 1
    assert cosine(6) == pytest.approx(0.5)  # half-way through the 8 steps after the warm-up
    assert cosine(10) == pytest.approx(0.0) and cosine(25) == pytest.approx(0.0)  # 0 at total_steps and after
    step = Step(milestones=[3, 5], gamma=0.1, warmup_steps=2)
    assert [step(s) for s in range(7)] == pytest.approx([0.5, 1.0, 1.0, 0.1, 0.1, 0.01, 0.01])
    assert [Step(milestones=4, gamma=0.5)(s) for s in (3, 4)] == [1.0, 0.5]  # one int is one milestone


def test_default_is_cosine_to_zero_at_max_steps_without_warmup():
    cfg = load_cfg(None, ["TRAIN.MAX_STEPS", "20", "TRAIN.LR", "0.01"])
    assert cfg.TRAIN.LR_SCHEDULE == {"type": "cosine"}
    expected = [0.01 * 0.5 * (1 + math.cos(math.pi * s / 20)) for s in range(21)]
    assert _lrs(cfg, 21) == pytest.approx(expected, abs=1e-15)


def test_spec_from_the_command_line_and_from_yaml(tmp_path):
    cfg = load_cfg(None, ["TRAIN.LR", "1.0", "TRAIN.LR_SCHEDULE", "step", "TRAIN.LR_SCHEDULE.milestones", "[2, 4]",
                          "TRAIN.LR_SCHEDULE.gamma", "0.5"])
    assert cfg.TRAIN.LR_SCHEDULE == {"type": "step", "milestones": [2, 4], "gamma": 0.5}
    assert _lrs(cfg, 6) == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    (tmp_path / "warm.yaml").write_text("TRAIN: {LR: 1.0, MAX_STEPS: 8, LR_SCHEDULE: {warmup_steps: 4}}\n")
    cfg = load_cfg(tmp_path / "warm.yaml")  # a mapping without a type: arguments of the default cosine
    assert cfg.TRAIN.LR_SCHEDULE == {"type": "cosine", "warmup_steps": 4}
    assert _lrs(cfg, 9) == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5,
                                          0.5 * (1 + math.cos(3 * math.pi / 4)), 0.0])


def test_unknown_names_and_arguments_name_the_key():
    with pytest.raises(RegistryError) as err:
        build_optimizer(load_cfg(None, ["TRAIN.LR_SCHEDULE", "cosin"]), torch.nn.Linear(2, 1))
    msg = str(err.value)
    assert msg.startswith("TRAIN.LR_SCHEDULE: unknown LR schedule 'cosin'. Did you mean 'cosine'?")
    assert "Registered LR schedules: constant, cosine, step" in msg
    with pytest.raises(RegistryError, match=r"TRAIN.LR_SCHEDULE: .*unknown argument\(s\) \['warmup'\]"):
        build_optimizer(load_cfg(None, ["TRAIN.LR_SCHEDULE.warmup", "10"]), torch.nn.Linear(2, 1))
    with pytest.raises(RegistryError, match=r"TRAIN.LR_SCHEDULE: .*needs argument\(s\) \['milestones'\]"):
        build_optimizer(load_cfg(None, ["TRAIN.LR_SCHEDULE", "step"]), torch.nn.Linear(2, 1))
    with pytest.raises(ValueError, match="TRAIN.LR_SCHEDULE.warmup_steps must be an int >= 0"):
        build_optimizer(load_cfg(None, ["TRAIN.LR_SCHEDULE.warmup_steps", "-1"]), torch.nn.Linear(2, 1))
    with pytest.raises(ValueError, match="TRAIN.LR_SCHEDULE.gamma must be > 0"):
        Step(milestones=[1], gamma=0.0)


def test_a_plugin_schedule_from_system_imports_drives_the_optimizer(tmp_path):
    (tmp_path / "my_lr_schedule.py").write_text(
        "from pyanomaly.registry import LR_SCHEDULES\n"
        "@LR_SCHEDULES.register_module(name='halving')\n"
        "class Halving:\n"
        "    '''Halved every ``every`` steps; 0 from total_steps on.'''\n"
        "    def __init__(self, total_steps: int, every: int = 1):\n"
        "        self.total_steps, self.every = total_steps, every\n"
        "    def __call__(self, step):\n"
        "        return 0.0 if step >= self.total_steps else 0.5 ** (step // self.every)\n")
    cfg = load_cfg(None, ["SYSTEM.IMPORTS", "['my_lr_schedule']", "TRAIN.LR", "1.0", "TRAIN.MAX_STEPS", "6",
                          "TRAIN.LR_SCHEDULE", "{'type': 'halving', 'every': 2}"])
    import_plugins(cfg.SYSTEM.IMPORTS, [tmp_path])  # as engine.session.setup does
    assert "halving" in registered_names(LR_SCHEDULES)
    assert _lrs(cfg, 8) == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.0, 0.0]  # total_steps = TRAIN.MAX_STEPS


def test_resume_continues_the_schedule_from_a_weights_only_checkpoint(tmp_path):
    spec = {"type": "step", "milestones": [3], "gamma": 0.1, "warmup_steps": 2}
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = build_lr_scheduler(optimizer, spec, max_steps=10)
    for _ in range(4):
        optimizer.step()
        scheduler.step()
    torch.save(scheduler.state_dict(), tmp_path / "sched.pth")
    state = torch.load(tmp_path / "sched.pth", weights_only=True)
    assert state["lr_lambdas"] == [None]  # only the step count: the schedule comes from the config
    resumed_opt = torch.optim.SGD(model.parameters(), lr=1.0)
    resumed = build_lr_scheduler(resumed_opt, spec, max_steps=10)
    resumed.load_state_dict(state)
    assert resumed.last_epoch == 4 and resumed.get_last_lr() == scheduler.get_last_lr() == pytest.approx([0.1])
