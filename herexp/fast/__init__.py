"""herexp's fast path: same learning as SB3's SAC + HerReplayBuffer, less overhead.

* :class:`FastSAC` — drop-in ``SAC`` subclass with a lean, equivalent ``train()``;
  checkpoints load with ``SAC.load``. The update itself, on one screen, is
  :func:`herexp.fast.update.gradient_step` (critics back-propagated by hand;
  ``parallel_critics=True`` runs the twin critics on two threads).
* :class:`FastHerReplayBuffer` — ``HerReplayBuffer`` with an O(batch) sampler (same
  distribution) and pre-flattened batches for FastSAC.
* :func:`make_overlapped_vec_env` / :class:`OverlappedVecEnv` — steps the training envs in a
  worker process while the gradient update runs (uses a second core; the update sees SB3's
  data, the behaviour policy lags one update: see :mod:`herexp.fast.vec_env`).
* :mod:`herexp.fast.fetch_obs` — opt-in, output-identical vectorised ``robot_get_obs`` for
  Fetch envs (~20 % cheaper env steps); ``fetch_obs.enable()``.

Measured speed-ups and the benchmark: ``python -m herexp.bench`` (``make bench``).
"""

from herexp.fast.her_buffer import FastHerReplayBuffer, FlatSamples
from herexp.fast.sac import FastSAC
from herexp.fast.vec_env import OverlappedVecEnv, make_overlapped_vec_env

__all__ = ["FastHerReplayBuffer", "FastSAC", "FlatSamples", "OverlappedVecEnv", "make_overlapped_vec_env"]
