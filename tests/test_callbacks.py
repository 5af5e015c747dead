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
