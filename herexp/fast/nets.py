"""Lean functional forwards over SB3's own SAC modules (no copies of the weights).

SB3's ``Actor`` and ``ContinuousCritic`` are ``nn.Sequential`` MLPs behind a features
extractor that, for Fetch's ``Dict`` observations, only flattens and concatenates the keys.
Calling them through ``nn.Module`` costs a Python dispatch per module, and the
``torch.distributions`` objects add more. These helpers read the *same* ``nn.Parameter``
objects and evaluate the same math with plain ``torch`` ops, so optimizers, state dicts and
checkpoints are untouched (``SAC.load`` reads a FastSAC checkpoint unchanged).

Only the structure SB3 builds for SAC by default is supported (Linear + ReLU MLPs, Box
sub-spaces, no gSDE); :func:`supported` says whether a policy qualifies, and FastSAC falls back
to SB3's own ``train`` otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution
from stable_baselines3.common.torch_layers import CombinedExtractor, FlattenExtractor
from stable_baselines3.sac.policies import LOG_STD_MAX, LOG_STD_MIN, SACPolicy
from torch import nn

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_EPS = 1e-6  # SquashedDiagGaussianDistribution.epsilon


Layer = tuple[th.Tensor, th.Tensor]


def _mlp_layers(seq: nn.Sequential) -> list[Layer] | None:
    """(weight, bias) of each Linear in a Linear/ReLU Sequential; None if anything else is in it."""
    layers: list[Layer] = []
    mods = list(seq)
    for i, m in enumerate(mods):
        if isinstance(m, nn.Linear):
            if m.bias is None:
                return None
            layers.append((m.weight, m.bias))
        elif isinstance(m, nn.ReLU):
            if i == 0 or not isinstance(mods[i - 1], nn.Linear):
                return None
        else:
            return None
    return layers


def _obs_keys(extractor: nn.Module, space: spaces.Space) -> list[str] | None:
    """Key order of the flattened observation (CombinedExtractor order), [] for a flat Box."""
    if isinstance(extractor, FlattenExtractor) and isinstance(space, spaces.Box):
        return []
    if not isinstance(extractor, CombinedExtractor) or not isinstance(space, spaces.Dict):
        return None
    keys = list(extractor.extractors.keys())
    if not all(isinstance(extractor.extractors[k], nn.Flatten) for k in keys):
        return None
    if not all(isinstance(space.spaces[k], spaces.Box) for k in keys):
        return None
    return keys


@dataclass
class SacNets:
    """Views of one SAC policy's parameters, grouped for the functional forwards."""

    obs_keys: list[str]  # flatten order of dict observations ([] = flat Box observation)
    actor_body: list[Layer]  # latent_pi layers (each followed by ReLU)
    actor_mu: Layer
    actor_log_std: Layer
    critics: list[list[Layer]]  # one MLP per Q-network, ReLU between layers, none after last
    critics_target: list[list[Layer]]


def supported(policy: SACPolicy) -> SacNets | None:
    """The functional views of ``policy``, or None if its structure is not the plain SAC MLP."""
    actor, critic, target = policy.actor, policy.critic, policy.critic_target
    if actor.use_sde or not isinstance(actor.action_dist, SquashedDiagGaussianDistribution):
        return None
    keys = _obs_keys(actor.features_extractor, policy.observation_space)
    if keys is None or _obs_keys(critic.features_extractor, policy.observation_space) != keys:
        return None
    body = _mlp_layers(actor.latent_pi) if len(actor.latent_pi) > 0 else []
    if body is None or not isinstance(actor.mu, nn.Linear) or not isinstance(actor.log_std, nn.Linear):
        return None
    qs = [_mlp_layers(q) for q in critic.q_networks]
    qts = [_mlp_layers(q) for q in target.q_networks]
    if any(q is None for q in qs + qts):
        return None
    return SacNets(keys, body, (actor.mu.weight, actor.mu.bias), (actor.log_std.weight, actor.log_std.bias),
                   qs, qts)  # type: ignore[arg-type]


def flatten_obs(obs: th.Tensor | dict[str, th.Tensor], keys: list[str]) -> th.Tensor:
    """CombinedExtractor's output without the modules: float32, keys concatenated in order."""
    if not keys:
        assert isinstance(obs, th.Tensor)
        return obs.float().flatten(1)
    assert isinstance(obs, dict)
    return th.cat([obs[k].float().flatten(1) for k in keys], dim=1)


def actor_sample(nets: SacNets, x: th.Tensor, with_log_prob: bool = True) -> tuple[th.Tensor, th.Tensor | None]:
    """Squashed-Gaussian action and log-probability, as ``Actor.action_log_prob``.

    The noise is drawn with ``empty().normal_()`` exactly as ``Normal.rsample`` does, so with the
    same RNG state the sampled actions equal SB3's.
    """
    h = x
    for w, b in nets.actor_body:
        h = th.addmm(b, h, w.t()).relu_()  # in place: AddmmBackward does not keep its output
    mean = th.addmm(nets.actor_mu[1], h, nets.actor_mu[0].t())
    log_std = th.clamp(th.addmm(nets.actor_log_std[1], h, nets.actor_log_std[0].t()), LOG_STD_MIN, LOG_STD_MAX)
    eps = th.empty_like(mean).normal_()
    action = th.tanh(mean + eps * log_std.exp())
    if not with_log_prob:
        return action, None
    # Normal(mean, std).log_prob(mean + eps * std) = -eps^2/2 - log std - log sqrt(2 pi)
    log_prob = (-0.5 * eps.square() - log_std).sum(dim=1) - _HALF_LOG_2PI * mean.shape[1]
    log_prob = log_prob - th.log(1 - action.square() + _EPS).sum(dim=1)
    return action, log_prob


def q_values(mlps: list[list[Layer]], x: th.Tensor, actions: th.Tensor, detach: bool = False) -> th.Tensor:
    """Q-values of every critic stacked to shape (n_critics, batch, 1).

    ``detach=True`` evaluates the critics with detached weights: gradients still flow to
    ``actions`` (the actor loss) but no weight gradients are computed. SB3 computes them and
    throws them away (the critic optimizer zeroes them before its next use), so the actor's
    update is the same while the backward pass does a third less work in the critics.
    """
    xa = th.cat([x, actions], dim=1)
    outs = []
    for layers in mlps:
        h = xa
        last = len(layers) - 1
        for i, (w, b) in enumerate(layers):
            if detach:
                w, b = w.detach(), b.detach()
            h = th.addmm(b, h, w.t())
            if i < last:
                h = h.relu_()
        outs.append(h)
    return th.stack(outs)


def mode_matters(policy: nn.Module) -> bool:
    """Whether train()/eval() changes any computation (Dropout or BatchNorm present)."""
    return any(isinstance(m, (nn.Dropout, nn.modules.batchnorm._BatchNorm)) for m in policy.modules())


def lazy_set_training_mode(policy: nn.Module, mode: bool) -> None:
    """``set_training_mode`` (bind with ``types.MethodType``) that walks the modules only when the
    requested mode differs from the current one."""
    if policy.training != mode:
        policy.train(mode)
