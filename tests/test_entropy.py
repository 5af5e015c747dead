"""Entropy options: each class's SB3 arguments, label and checks; schedules on a fake clock; and
short real runs checking the coefficient SAC (and TQC) actually used in each gradient step (SB3
records it as train/ent_coef inside train())."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
from stable_baselines3.common.vec_env import VecEnvWrapper

from herexp import agent, entropy, envs
from herexp.config import validate
from herexp.entropy import Adaptive, Auto, AutoFloor, Fixed, NoEntropy, Schedule
from herexp.entropy.control import AdaptiveController, LinearSchedule
from tests.conftest import TINY, compose_cfg

# 8 envs (the chapter's setting) and no HER buffer (HER needs whole episodes before the first
# sample; the entropy logic is independent of it).
RUN = [*TINY, "n_envs=8", "her=off", "total_steps=400", "algo.learning_starts=96"]


def test_linear_schedule_fake_clock() -> None:
    s = LinearSchedule(0.3, 0.01, warmup_frac=0.1, total_steps=1000)
    assert s(0) == s(100) == 0.3
    assert s(550) == pytest.approx(0.3 + 0.5 * (0.01 - 0.3))
    assert s(1000) == pytest.approx(0.01) and s(5000) == pytest.approx(0.01)
    vals = [s(t) for t in range(0, 1001, 10)]
    assert all(a >= b for a, b in zip(vals, vals[1:]))  # never increases


def test_adaptive_controller_fake_clock() -> None:
    c = AdaptiveController(0.1, 0.01, 0.3, target=0.2, tolerance=0.05, rate=0.1, window=10,
                                   check_freq=1000, warmup_steps=2000)
    for _ in range(10):
        c.add_episode(False)
    assert c.update(1500) == 0.1  # still in warmup
    assert c.update(2000) == pytest.approx(0.11)  # success 0 < 0.15 -> x1.1
    assert c.update(2500) == pytest.approx(0.11)  # not a new check interval yet
    assert c.update(3000) == pytest.approx(0.121)
    for _ in range(10):
        c.add_episode(True)
    assert c.update(4000) == pytest.approx(0.121 * 0.9)  # success 1 > 0.25 -> x0.9
    for _ in range(100):  # clamped at min
        c.update(5000 + 1000 * _)
    assert c.value == pytest.approx(0.01)


def test_adaptive_waits_for_a_full_window() -> None:
    c = AdaptiveController(0.1, 0.01, 0.3, 0.2, 0.05, 0.1, window=5, check_freq=10, warmup_steps=0)
    for _ in range(4):
        c.add_episode(False)
    assert c.update(10) == 0.1
    c.add_episode(False)
    assert c.update(20) == pytest.approx(0.11)


@pytest.mark.parametrize("option,kwargs,label", [
    (Fixed(0.05), {"ent_coef": 0.05}, "ent0.05"),
    (Fixed(0.07), {"ent_coef": 0.07}, "ent0.07"),
    (Auto(), {"ent_coef": "auto", "target_entropy": "auto"}, "entauto"),
    (Auto(target_entropy=-2, init=0.5), {"ent_coef": "auto_0.5", "target_entropy": -2.0}, "entauto0.5"),
    (AutoFloor(min=0.02), {"ent_coef": "auto", "target_entropy": "auto"}, "entauto_floor"),
    (AutoFloor(init=0.07), {"ent_coef": "auto_0.07", "target_entropy": "auto"}, "entauto_floor0.07"),
    (Schedule(max=0.4), {"ent_coef": 0.4}, "entschedule"),
    (Adaptive(), {"ent_coef": 0.3}, "entadaptive"),  # starts at max
    (Adaptive(init=0.1), {"ent_coef": 0.1}, "entadaptive0.1"),
    (NoEntropy(), {}, ""),  # td3_her_seed0: no entropy part in names
])
def test_sb3_arguments_and_label_per_option(option: entropy.EntropyOption, kwargs: dict, label: str) -> None:
    """Labels are exactly the run-name parts herexp always used (existing folders keep their names)."""
    assert option.model_kwargs() == kwargs and option.label == label


@pytest.mark.parametrize("option,match", [
    (Fixed(0.0), r"entropy\.value=0\.0 is invalid: must be > 0\. Fix: entropy\.value=0\.05"),
    (Auto(target_entropy=float("inf")), r"entropy\.target_entropy=inf is invalid: must be \"auto\" or a finite number"),
    (Auto(target_entropy=True), r"entropy\.target_entropy=True is invalid"),
    (Auto(init=-1.0), r"entropy\.init=-1\.0 is invalid: must be > 0 \(initial coefficient\) or null"),
    (AutoFloor(min=0.0), r"entropy\.min=0\.0 is invalid: must be > 0 \(the floor\)"),
    (Schedule(max=0.1, min=0.2), r"entropy\.min=0\.2 is invalid: must be in \(0, entropy\.max=0\.1\]"),
    (Schedule(warmup_frac=1.0), r"entropy\.warmup_frac=1\.0 is invalid: must be in \[0, 1\)"),
    (Adaptive(init=0.5), r"entropy\.init=0\.5 is invalid: must be in \[entropy\.min, entropy\.max\] = \[0\.01, 0\.3\]"),
    (Adaptive(check_freq=1001), r"entropy\.check_freq=1001 is invalid: must be in \(0, total_steps=1000\]"),
    (Adaptive(rate=0.0), r"entropy\.rate=0\.0 is invalid: must be in \(0, 1\)"),
])
def test_each_option_checks_its_own_keys(option: entropy.EntropyOption, match: str) -> None:
    with pytest.raises(ValueError, match=match) as err:
        option.validate(total_steps=1000)
    assert "\n" not in str(err.value)


def test_valid_options_pass_their_checks() -> None:
    for option in (Fixed(), Auto(target_entropy=-4), AutoFloor(), Schedule(max=0.3, min=0.3, warmup_frac=0.0),
                   Adaptive(init=0.01, check_freq=1000), NoEntropy()):
        option.validate(total_steps=1000)


class ForcedSuccess(VecEnvWrapper):
    """Overrides ``is_success`` in every info: a forced success stream for adaptive tests."""

    def __init__(self, venv, success: bool) -> None:  # type: ignore[no-untyped-def]
        super().__init__(venv)
        self.success = success

    def reset(self):  # type: ignore[no-untyped-def]
        return self.venv.reset()

    def step_wait(self):  # type: ignore[no-untyped-def]
        obs, rew, done, infos = self.venv.step_wait()
        for info in infos:
            info["is_success"] = float(self.success)
        return obs, rew, done, infos


def run_and_record(overrides: Sequence[str], success: bool | None = None) -> list[tuple[int, float]]:
    """Real short run; returns (num_timesteps, coefficient used) for every gradient step."""
    cfg = compose_cfg([*RUN, *overrides])
    validate(cfg)
    venv = envs.make_train_env(cfg)
    if success is not None:
        venv = ForcedSuccess(venv, success)
    model = agent.build_model(cfg, venv)
    used: list[tuple[int, float]] = []
    sb3_train = model.train

    def train(gradient_steps: int, batch_size: int = 64) -> None:
        sb3_train(gradient_steps, batch_size)
        used.append((model.num_timesteps, float(model.logger.name_to_value["train/ent_coef"])))

    model.train = train  # type: ignore[method-assign]
    model.learn(cfg.total_steps, callback=entropy.option(cfg.entropy).attach(model, cfg.total_steps))
    venv.close()
    assert len(used) > 20, "the run must reach real gradient updates"
    return used


def test_fixed_run_uses_the_value() -> None:
    used = run_and_record(["entropy=fixed_02"])
    assert all(v == pytest.approx(0.2) for _, v in used)


@pytest.mark.parametrize("algo", ["sac_fast", "tqc"])  # TQC reads SAC's ent_coef_tensor too
def test_schedule_run_follows_schedule_in_env_steps(algo: str) -> None:
    used = run_and_record([f"algo={algo}", "entropy=schedule", "entropy.max=0.3", "entropy.min=0.01",
                           "entropy.warmup_frac=0"])
    sched = LinearSchedule(0.3, 0.01, 0.0, 400)
    # The update after vector step t uses exactly the scheduled value at t env steps (8 envs
    # -> t advances by 8; counting callback calls instead would end at 0.3 - 50/400 * 0.29).
    for t, v in used:
        assert v == pytest.approx(sched(t), rel=1e-5), t
    assert used[-1][0] == 400 and used[-1][1] == pytest.approx(0.01)


def test_auto_floor_is_never_crossed_while_auto_is() -> None:
    fast_lr = ["algo.learning_rate=0.02"]  # the entropy optimizer shares SAC's learning rate
    auto = run_and_record(["entropy=auto", *fast_lr])
    floor = run_and_record(["entropy=auto_floor", "entropy.min=0.8", *fast_lr])
    assert min(v for _, v in auto) < 0.8  # without the floor the coefficient falls below it ...
    assert min(v for _, v in floor) >= 0.8 - 1e-6  # ... with it, never, in any gradient step
    assert any(math.isclose(v, 0.8, rel_tol=1e-5) for _, v in floor)  # and the floor was reached


@pytest.mark.parametrize("success,direction", [(True, -1), (False, +1)])
def test_adaptive_moves_towards_target(success: bool, direction: int) -> None:
    used = run_and_record(["entropy=adaptive", "entropy.init=0.1", "entropy.check_freq=40", "entropy.window=8",
                           "entropy.warmup_frac=0", "entropy.rate=0.2", "total_steps=800"], success=success)
    vals = np.array([v for _, v in used])
    assert vals[0] == pytest.approx(0.1)
    steps = np.diff(vals)
    assert np.all(direction * steps >= -1e-9) and direction * (vals[-1] - vals[0]) > 0.05
    assert np.all((vals >= 0.01 * (1 - 1e-6)) & (vals <= 0.3 * (1 + 1e-6)))  # float32 tensor
