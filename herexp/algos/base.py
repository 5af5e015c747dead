"""What every ``algo=`` option shares: the off-policy keys, their checks, and building the model.

:class:`Algo` holds the keys every algorithm has (batch, buffer, learning starts, learning
rate, gamma, tau, update schedule, network, observation normalisation) with the chapter's
defaults, and builds an SB3 off-policy model with HER when ``her.enabled``. A subclass (one
per option, ``herexp/algos/<option>.py``) names its SB3 class and adds its own keys and
constructor arguments. :class:`NoisyAlgo` is the shared part of the deterministic-policy
algorithms (TD3, DDPG): Gaussian exploration noise on the action.

SB3 is imported only when a model is built, so checking a config and naming a run stay fast.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, List, Optional

from herexp.options import check

if TYPE_CHECKING:
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
    from stable_baselines3.common.vec_env import VecEnv

    from herexp.entropy import EntropyOption


@dataclass
class Algo:
    """Keys shared by every ``algo=`` option (``herexp/conf/algo/``). Chapter defaults; every step
    count is in environment steps, except ``train_freq`` and ``gradient_steps`` (SB3's units)."""

    name: ClassVar[str] = ""  # the option name: algo=<name>, the run-name label
    uses_entropy: ClassVar[bool] = False  # whether entropy= options mean something (SAC, TQC)

    batch_size: int = 256
    buffer_size: int = 1_000_000  # transitions (env steps)
    learning_starts: int = 1000  # env steps of random actions before the first update
    learning_rate: float = 3e-4
    gamma: float = 0.95
    tau: float = 0.005  # target networks: polyak averaging factor
    train_freq: int = 1  # vector steps between updates (SB3 semantics)
    gradient_steps: int = 1  # gradient steps per update
    net_arch: List[int] = field(default_factory=lambda: [256, 256])  # hidden layers of actor and critics
    normalize: bool = False  # VecNormalize on observations; stats saved next to model.zip
    # normalised observations are clipped to +-clip_obs (the HER paper: 5); null = VecNormalize's
    # default, +-10. Only with normalize=true
    clip_obs: Optional[float] = None
    # share of env steps after learning_starts whose action is uniformly random instead of the
    # policy's (the HER paper's DDPG: 0.3); 0 = the algorithm's own exploration only
    random_action_prob: float = 0.0

    def validate(self) -> None:
        """Ranges the types cannot express (``ValueError``: key, value, range, fix)."""
        check(0.0 < self.gamma <= 1.0, "algo.gamma", self.gamma, "in (0, 1]", "algo.gamma=0.95")
        check(0.0 < self.tau <= 1.0, "algo.tau", self.tau, "in (0, 1]", "algo.tau=0.005")
        check(self.learning_rate > 0, "algo.learning_rate", self.learning_rate, "> 0", "algo.learning_rate=3e-4")
        check(self.batch_size >= 1, "algo.batch_size", self.batch_size, ">= 1", "algo.batch_size=256")
        check(self.buffer_size >= self.batch_size, "algo.buffer_size", self.buffer_size, ">= algo.batch_size",
              "algo.buffer_size=1000000")
        check(self.learning_starts >= 0, "algo.learning_starts", self.learning_starts, ">= 0",
              "algo.learning_starts=1000")
        check(self.train_freq >= 1, "algo.train_freq", self.train_freq, ">= 1", "algo.train_freq=1")
        check(self.gradient_steps >= 1, "algo.gradient_steps", self.gradient_steps, ">= 1", "algo.gradient_steps=1")
        check(len(self.net_arch) > 0 and all(n > 0 for n in self.net_arch), "algo.net_arch", list(self.net_arch),
              "a non-empty list of positive layer widths", "algo.net_arch=[256,256]")
        check(0.0 <= self.random_action_prob < 1.0, "algo.random_action_prob", self.random_action_prob,
              "in [0, 1) (0 = off)", "algo.random_action_prob=0.3")
        if self.clip_obs is not None:
            check(self.clip_obs > 0, "algo.clip_obs", self.clip_obs, "> 0 or null (VecNormalize's 10)",
                  "algo.clip_obs=5")
            check(self.normalize, "algo.clip_obs", self.clip_obs, "null unless algo.normalize=true (it clips "
                  "normalised observations)", "algo.normalize=true")

    # --- what a subclass says --------------------------------------------------------------------

    def model_class(self) -> type[OffPolicyAlgorithm]:
        """The SB3 (or sb3-contrib) class this option trains."""
        raise NotImplementedError

    def model_kwargs(self, env: VecEnv, entropy: EntropyOption) -> dict[str, Any]:
        """Constructor arguments beyond the shared ones (exploration, entropy, extra critics)."""
        return entropy.model_kwargs() if self.uses_entropy else {}

    def normalize_kwargs(self) -> dict[str, Any]:
        """Arguments of the training envs' ``VecNormalize`` beyond herexp's fixed ones (``clip_obs``)."""
        return {} if self.clip_obs is None else {"clip_obs": float(self.clip_obs)}

    def policy_kwargs(self) -> dict[str, Any]:
        return {"net_arch": list(self.net_arch)}

    def replay_buffer_kwargs(self, her: Any) -> dict[str, Any]:
        """``replay_buffer_class`` / ``replay_buffer_kwargs``: SB3's HerReplayBuffer when
        ``her.enabled`` (``n_sampled_goal``, ``goal_selection_strategy``), else SB3's default."""
        if not her.enabled:
            return {}
        from stable_baselines3 import HerReplayBuffer

        return {"replay_buffer_class": HerReplayBuffer,
                "replay_buffer_kwargs": {"n_sampled_goal": int(her.n_sampled_goal),
                                         "goal_selection_strategy": str(her.goal_selection_strategy)}}

    def vec_env(self, env_id: str, n_envs: int, seed: int) -> VecEnv:
        """The training envs (env i seeded ``seed + i``), stepped in this process."""
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import DummyVecEnv

        return make_vec_env(env_id, n_envs=n_envs, seed=seed, vec_env_cls=DummyVecEnv)

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Context the whole training run executes in (the fast path swaps in faster Fetch
        observations; nothing for the others)."""
        yield

    @property
    def checkpointable(self) -> bool:
        """Whether herexp.checkpoint can capture a run of this option (its envs in this process)."""
        return True

    # --- building --------------------------------------------------------------------------------

    def build(self, env: VecEnv, her: Any, entropy: EntropyOption, seed: int, device: str,
              tensorboard_dir: str | None = None) -> OffPolicyAlgorithm:
        """The model: shared keys, HER buffer, this option's own arguments, seed and device; with
        ``random_action_prob > 0`` its class collects that share of uniformly random actions
        (:mod:`herexp.algos.explore`), else it is the option's class itself."""
        cls: Any = self.model_class()
        extra: dict[str, Any] = {}
        if self.random_action_prob > 0:
            from herexp.algos.explore import with_random_actions

            cls, extra = with_random_actions(cls), {"random_action_prob": float(self.random_action_prob)}
        return cls(
            "MultiInputPolicy",
            env,
            learning_rate=self.learning_rate,
            buffer_size=self.buffer_size,
            learning_starts=self.learning_starts,
            batch_size=self.batch_size,
            tau=self.tau,
            gamma=self.gamma,
            train_freq=self.train_freq,
            gradient_steps=self.gradient_steps,
            policy_kwargs=self.policy_kwargs(),
            tensorboard_log=tensorboard_dir,
            seed=seed,
            device=device,
            verbose=0,
            **self.replay_buffer_kwargs(her),
            **self.model_kwargs(env, entropy),
            **extra,
        )


@dataclass
class NoisyAlgo(Algo):
    """Deterministic-policy algorithms (TD3, DDPG) explore with Gaussian noise on the action."""

    # std of the Gaussian added to the action scaled to [-1, 1] (0 = none); 0.2 as the HER paper's
    # DDPG (OpenAI baselines her: noise_eps=0.2) and rl-zoo's TD3/DDPG+HER settings
    action_noise_std: float = 0.2

    def validate(self) -> None:
        super().validate()
        check(self.action_noise_std >= 0, "algo.action_noise_std", self.action_noise_std, ">= 0 (0 = no noise)",
              "algo.action_noise_std=0.2")

    def action_noise(self, env: VecEnv) -> Any:
        """SB3's ``NormalActionNoise`` with ``action_noise_std`` on every action dimension (None at 0)."""
        if self.action_noise_std == 0:
            return None
        import numpy as np
        from stable_baselines3.common.noise import NormalActionNoise

        dim = env.action_space.shape[-1]
        return NormalActionNoise(mean=np.zeros(dim), sigma=np.full(dim, float(self.action_noise_std)))

    def model_kwargs(self, env: VecEnv, entropy: EntropyOption) -> dict[str, Any]:
        return {"action_noise": self.action_noise(env)}
