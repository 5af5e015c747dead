"""HER relabeling lab: a numpy-only, read-every-line implementation of Hindsight Experience Replay.

See ``herexp.her.lab`` (the algorithm, ``verify`` and ``demo``) and ``herexp.her.compare_sb3``
(checks SB3's ``HerReplayBuffer`` on real FetchReach-v4 episodes). Run with
``python -m herexp.her.lab verify | demo | compare_sb3 [seed=N]``.

Nothing is re-exported here on purpose: importing ``herexp.her.lab`` from this package file
would make ``python -m herexp.her.lab`` warn that the module was imported before being run.
"""
