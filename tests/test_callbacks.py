"""Frequencies are in environment steps, whatever n_envs is."""

from __future__ import annotations

import pytest

from herexp.callbacks import EveryNEnvSteps


@pytest.mark.parametrize("n_envs", [1, 2, 8])
def test_every_n_env_steps_fires_once_per_multiple(n_envs: int) -> None:
    due = EveryNEnvSteps(100)
    fired = [t for t in range(n_envs, 1000 + 1, n_envs) if due(t)]
    assert len(fired) == 10  # 100, 200, ..., 1000 env steps: same count with 1, 2 or 8 envs
    assert all(0 <= f - 100 * (i + 1) < n_envs for i, f in enumerate(fired))


def test_zero_frequency_never_fires() -> None:
    due = EveryNEnvSteps(0)
    assert not any(due(t) for t in range(0, 1000, 7))


class _Evals:
    """Stands in for MetricsCallback: just the evaluations it recorded."""

    def __init__(self, successes: list[float]) -> None:
        self.eval_history = [(1000 * (i + 1), s) for i, s in enumerate(successes)]


@pytest.mark.parametrize(("successes", "stops"), [
    ([0.2, 0.96, 0.97, 0.95], True),  # the last three all >= 0.95
    ([0.96, 0.97, 0.94], False),  # the latest dipped below
    ([0.99, 1.0], False),  # only two evaluations so far
    ([0.96, 0.2, 0.97, 0.98], False),  # not consecutive
    ([], False),
])
def test_early_stopping_needs_patience_consecutive_evaluations(successes: list[float], stops: bool) -> None:
    from herexp.callbacks import EarlyStopping

    cb = EarlyStopping(_Evals(successes), success=0.95, patience=3)  # type: ignore[arg-type]
    cb.num_timesteps = 4000
    assert cb._on_step() is (not stops)
    assert cb.stopped_at == (4000 if stops else None)
