"""A vectorised, output-identical ``robot_get_obs`` for gymnasium-robotics' Fetch envs.

Every Fetch ``step`` builds its observation with
``gymnasium_robotics.utils.mujoco_utils.robot_get_obs``, which loops over the robot's joints in
Python (two ``mj_name2id`` look-ups, two slices and copies per joint, then ``np.array`` of the
list): ~25 % of a FetchPush step on this CPU (measured: 0.84-0.93 ms -> 0.66-0.68 ms per step).
:func:`robot_get_obs` gathers the same ``qpos``/``qvel`` entries with one fancy index and
returns arrays equal to the original's (same values, shape after ``np.squeeze``, dtype); joints
with more than one coordinate (free/ball), which Fetch robots do not have, use the original.

It is a process-wide patch of the gymnasium-robotics module, so it is opt-in:
:func:`enable` / :func:`disable`, or ``with enabled(): ...``. The overlapped vec env enables it in
its worker; the benchmark enables it only while a fast variant runs (stock stays untouched).
Equality with the original on every Fetch task is tested in ``tests/test_fast.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import mujoco
import numpy as np
from gymnasium_robotics.utils import mujoco_utils

_ORIGINAL = mujoco_utils.robot_get_obs
_ONE_DIM = frozenset((int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)))


def robot_get_obs(model: Any, data: Any, joint_names: Any) -> tuple[np.ndarray, np.ndarray]:
    """Same result as ``mujoco_utils.robot_get_obs``, one gather instead of a loop per joint."""
    if data.qpos is None or not joint_names:
        return np.zeros(0), np.zeros(0)
    ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, n) for n in joint_names if n.startswith("robot")]
    if not ids or min(ids) < 0 or not _ONE_DIM.issuperset(model.jnt_type[ids].tolist()):
        return _ORIGINAL(model, data, joint_names)
    # the original stacks one (1,)-array per joint -> (n, 1), then squeezes: keep that shape rule
    return np.squeeze(data.qpos[model.jnt_qposadr[ids]][:, None]), np.squeeze(data.qvel[model.jnt_dofadr[ids]][:, None])


def enable() -> None:
    """Use :func:`robot_get_obs` in every Fetch env of this process (idempotent)."""
    mujoco_utils.robot_get_obs = robot_get_obs


def disable() -> None:
    """Restore gymnasium-robotics' own ``robot_get_obs``."""
    mujoco_utils.robot_get_obs = _ORIGINAL


def is_enabled() -> bool:
    return mujoco_utils.robot_get_obs is robot_get_obs


@contextmanager
def enabled() -> Iterator[None]:
    """Enable within a block, restoring the previous state after."""
    was = is_enabled()
    enable()
    try:
        yield
    finally:
        if not was:
            disable()
