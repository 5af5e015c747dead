"""Uniformly random actions while collecting (``algo.random_action_prob``), for any algorithm.

The HER paper's DDPG explores with a share of uniformly random actions on top of its Gaussian
noise (OpenAI baselines ``her``: ``random_eps=0.3``): with probability ``p`` per env step the
action comes from the uniform distribution over the action space instead of the policy. On a
sparse Push task this makes the gripper hit the object early, so HER has object motion to relabel.

:func:`with_random_actions` gives an SB3 off-policy class (SAC, herexp's FastSAC, TD3, DDPG,
TQC) whose ``_sample_action`` does that after ``learning_starts`` (before it, SB3 already acts
uniformly at random). Draws come from the action space's RNG, as SB3's warm-up actions do, so a
herexp checkpoint (which saves that RNG) resumes bit-exactly. With ``p = 0`` no class is derived:
the model is the algorithm's own class and no draw is made, i.e. exactly SB3's collection.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from gymnasium import spaces


def replace_with_random(action: np.ndarray, buffer_action: np.ndarray, prob: float,
                        action_space: spaces.Space, scale: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Replace each row (one per env) with a uniform draw from ``action_space`` with probability ``prob``.

    ``action`` is what the env gets, ``buffer_action`` what the replay buffer stores (for a Box:
    the action scaled to [-1, 1] by ``scale``, SB3's ``policy.scale_action``). Returns both,
    changed on the chosen rows only, and the boolean mask of those rows. The coin flips and the
    actions come from ``action_space.np_random`` (one flip per row, then one sample per chosen row).
    """
    pick = action_space.np_random.random(len(action)) < prob
    if not pick.any():
        return action, buffer_action, pick
    uniform = np.array([action_space.sample() for _ in range(int(pick.sum()))])
    action, buffer_action = np.array(action, copy=True), np.array(buffer_action, copy=True)
    action[pick] = uniform
    buffer_action[pick] = scale(uniform) if isinstance(action_space, spaces.Box) else uniform
    return action, buffer_action, pick


class RandomActions:
    """Mixin over an SB3 off-policy class: ``random_action_prob`` of the collected actions after
    ``learning_starts`` are uniformly random (see the module docstring)."""

    random_action_prob: float = 0.0  # class default: SB3's load() restores a model without __init__

    def __init__(self, *args: Any, random_action_prob: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.random_action_prob = float(random_action_prob)

    def _excluded_save_params(self) -> list[str]:
        # model.zip stays a plain checkpoint of the algorithm (SAC.load, TD3.load read it)
        return [*super()._excluded_save_params(), "random_action_prob"]  # type: ignore[misc]

    def _sample_action(self, learning_starts: int, action_noise: Any = None, n_envs: int = 1
                       ) -> tuple[np.ndarray, np.ndarray]:
        action, buffer_action = super()._sample_action(learning_starts, action_noise, n_envs)  # type: ignore[misc]
        if self.random_action_prob > 0 and self.num_timesteps >= learning_starts:  # type: ignore[attr-defined]
            action, buffer_action, _ = replace_with_random(action, buffer_action, self.random_action_prob,
                                                           self.action_space,  # type: ignore[attr-defined]
                                                           self.policy.scale_action)  # type: ignore[attr-defined]
        return action, buffer_action


@functools.cache
def with_random_actions(cls: type) -> type:
    """``cls`` with :class:`RandomActions` mixed in (same name, one class per ``cls``)."""
    return type(cls.__name__, (RandomActions, cls), {"__module__": __name__, "__qualname__": cls.__name__,
                                                      "__doc__": f"{cls.__name__} with uniformly random actions."})
