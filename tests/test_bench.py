"""herexp.bench: presets and variants are training configs, built by the training path; a tiny
benchmark, ablation and the command line run end to end. Timing is never asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from stable_baselines3 import SAC, HerReplayBuffer
from stable_baselines3.common.vec_env import VecNormalize

from herexp import agent, cli
from herexp.bench import ablation, runs
from herexp.bench.cli import main
from herexp.bench.presets import PRESETS, Preset, compose, overrides
from herexp.fast import FastHerReplayBuffer, FastSAC, OverlappedVecEnv

SMALL = ["algo.buffer_size=5000", "algo.learning_starts=100", "algo.net_arch=[16,16]"]  # seconds, not minutes


@pytest.mark.parametrize(("preset", "variant", "expected"), [
    ("push8", "stock", ("FetchPush-v4", 8, [256, 256], 3e-4, False, "herexp.algos.sac.Sac", None, None)),
    ("push1", "fast", ("FetchPush-v4", 1, [256, 256], 3e-4, False, "herexp.algos.sac_fast.SacFast", False, False)),
    ("reach1", "fast_overlap_par", ("FetchReach-v4", 1, [64, 64], 1e-3, True, "herexp.algos.sac_fast.SacFast",
                                    True, True)),
])
def test_presets_are_the_chapter_and_quickstart_configs(preset: str, variant: str, expected: tuple) -> None:
    """env, n_envs, net_arch, learning rate, normalize, algo class, overlap_envs, parallel_critics."""
    cfg = compose(overrides(PRESETS[preset], variant))
    a = cfg.algo
    assert (cfg.env.id, cfg.n_envs, list(a.net_arch), a.learning_rate, a.normalize, a._target_,
            a.get("overlap_envs"), a.get("parallel_critics")) == expected
    # the rest of the chapter's SAC + HER config, and the benchmark's device
    assert (a.batch_size, a.buffer_size, a.learning_starts, a.gamma, a.tau, a.train_freq, a.gradient_steps) == (
        256, 1_000_000, 1000, 0.95, 0.005, 1, 1)
    assert (cfg.her.enabled, cfg.her.n_sampled_goal, cfg.her.goal_selection_strategy, cfg.entropy._target_) == (
        True, 4, "future", "herexp.entropy.options.Auto")
    assert (cfg.seed, cfg.device) == (0, "cpu")


def test_overrides_are_preset_variant_user_device() -> None:
    assert overrides(PRESETS["reach1"], "fast_par", ["algo.batch_size=512"], "cuda") == [
        "experiment=reach_quickstart", "algo=sac_fast", "algo.parallel_critics=true", "algo.batch_size=512",
        "device=cuda"]


def test_variants_are_built_by_the_training_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """agent.build_model builds every variant from the composed config; the model is what it says."""
    seen = []
    real = agent.build_model

    def spy(cfg, env, tensorboard_dir=None):  # type: ignore[no-untyped-def]
        seen.append((cfg.algo._target_.rsplit(".", 1)[1], cfg.algo.get("parallel_critics"), type(env).__name__))
        return real(cfg, env, tensorboard_dir)

    monkeypatch.setattr(agent, "build_model", spy)
    stock = runs.build_variant(PRESETS["reach1"], "stock", SMALL)
    fast = runs.build_variant(PRESETS["reach1"], "fast_overlap_par", SMALL)
    try:
        assert seen == [("Sac", None, "VecNormalize"), ("SacFast", True, "VecNormalize")]
        assert type(stock.model) is SAC and type(stock.model.replay_buffer) is HerReplayBuffer
        assert type(fast.model) is FastSAC and type(fast.model.replay_buffer) is FastHerReplayBuffer
        assert fast.model.parallel_critics and (fast.model.optimizer_impl, fast.model.direct_adam) == ("fused", True)
        assert isinstance(fast.model.env, VecNormalize) and isinstance(fast.model.env.venv, OverlappedVecEnv)
        assert (stock.fast_obs, fast.fast_obs) == (False, True)
        assert fast.model.policy.net_arch == [16, 16] and stock.model.learning_rate == 1e-3
    finally:
        stock.close()
        fast.close()


def test_tiny_benchmark_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    argv = ["presets=reach1", "variants=stock,fast", "repeats=2", "steps=20", "warmup=120",
            f"overrides={json.dumps(SMALL)}", f"out={out}"]
    assert cli.run(main, argv) == 0
    res = json.loads(out.read_text())
    reach = res["presets"]["reach1"]
    assert (res["threads"], res["device"], res["overrides"]) == (1, "cpu", SMALL)
    assert reach["overrides"]["fast"] == ["experiment=reach_quickstart", "algo=sac_fast", *SMALL, "device=cpu"]
    assert (reach["env_id"], reach["steps"], reach["warmup"]) == ("FetchReach-v4", 20, 120)
    assert [len(reach["runs"][v]) for v in ("stock", "fast")] == [2, 2]
    # past learning_starts: every timed env step of a 1-env run is one gradient update
    assert all(r["updates_per_s"] == r["env_steps_per_s"] > 0 for v in ("stock", "fast") for r in reach["runs"][v])
    assert sorted(reach["ratios"]) == ["fast/stock env_steps_per_s", "fast/stock updates_per_s"]


def test_tiny_ablation_times_every_step_on_its_levers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each fast step trains with its own levers on the shared FastSAC (recorded at every train call)."""
    levers: list[tuple[str, bool, bool]] = []
    real_train = FastSAC.train

    def spy(self: FastSAC, gradient_steps: int, batch_size: int = 64) -> None:
        levers.append((self.optimizer_impl, self.direct_adam, self.parallel_critics))
        real_train(self, gradient_steps, batch_size)

    monkeypatch.setattr(FastSAC, "train", spy)
    preset = Preset(["experiment=reach_quickstart"], steps=10, warmup=120)
    res = ablation.run_ablation(preset, repeats=1, extra=["algo.buffer_size=5000", "algo.net_arch=[16,16]"],
                                updates=2)
    assert list(res["ms_per_update"]) == list(ablation.STEPS)
    assert res["speedup_vs_sb3"]["sb3"] == {"min": 1.0, "median": 1.0, "max": 1.0}
    # warm-up call then timed call per fast step, in STEPS order
    assert levers == [("default", False, False)] * 2 + [("fused", False, False)] * 2 + [("fused", True, False)] * 2 \
        + [("fused", True, True)] * 2
