"""Lean functional forwards over SB3's own SAC modules (no copies of the weights).

SB3's ``Actor`` and ``ContinuousCritic`` are ``nn.Sequential`` MLPs behind a features
extractor that, for Fetch's ``Dict`` observations, only flattens and concatenates the keys.
Calling them through ``nn.Module`` costs a Python dispatch per module, and the
``torch.distributions`` objects add more. These helpers read the *same* ``nn.Parameter``
objects and evaluate the same math with plain ``torch`` ops, so optimizers, state dicts and
checkpoints are untouched (``SAC.load`` reads a FastSAC checkpoint unchanged).

The critics are also back-propagated here by hand (:func:`mlp_param_grads`,
:func:`mlp_input_grad`): the products autograd would form for ``addmm``/``relu``, written into
the parameters' ``.grad``, without a graph.

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
    # exact types: a subclass may have its own forward, which the functional path would bypass
    if type(extractor) is FlattenExtractor and isinstance(space, spaces.Box):
        return []
    if type(extractor) is not CombinedExtractor or not isinstance(space, spaces.Dict):
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


def _has_image(space: spaces.Space) -> bool:
    from stable_baselines3.common.preprocessing import is_image_space

    subspaces = space.spaces.values() if isinstance(space, spaces.Dict) else [space]
    return any(is_image_space(s, check_channels=False) for s in subspaces)


def supported(policy: SACPolicy) -> SacNets | None:
    """The functional views of ``policy``, or None if its structure is not the plain SAC MLP."""
    actor, critic, target = policy.actor, policy.critic, policy.critic_target
    if policy.normalize_images and _has_image(policy.observation_space):
        return None  # SB3 divides pixels by 255 in preprocess_obs; the functional path does not
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


def mlp_forward(layers: list[Layer], x: th.Tensor) -> list[th.Tensor]:
    """A ReLU MLP's activations without autograd: ``[input, hidden_1, ..., output]``.

    Hidden activations are kept post-ReLU: that is all the manual backward passes need
    (``relu(z) > 0`` exactly where ``z > 0``).
    """
    acts = [x]
    last = len(layers) - 1
    for i, (w, b) in enumerate(layers):
        h = th.addmm(b, acts[-1], w.t())
        acts.append(h.relu_() if i < last else h)
    return acts


def _back_through(w: th.Tensor, g: th.Tensor, act: th.Tensor) -> th.Tensor:
    """Gradient w.r.t. the pre-ReLU input of the layer whose output gradient is ``g`` (weight ``w``)."""
    g_in = g * w if w.shape[0] == 1 else th.mm(g, w)  # a one-unit output: the outer product, as a broadcast
    return th.ops.aten.threshold_backward(g_in, act, 0)


def mlp_param_grads(layers: list[Layer], acts: list[th.Tensor], grad_out: th.Tensor) -> list[th.Tensor]:
    """Backprop by hand: ``[dW_0, db_0, dW_1, db_1, ...]`` for output gradient ``grad_out``.

    The same products autograd forms for ``addmm``/``relu`` (``dW = g^T a``, ``db = sum g``,
    ``g <- (g W) * [a > 0]``), without building a graph; the input gradient is not formed.
    """
    grads: list[th.Tensor] = []
    g = grad_out
    for i in range(len(layers) - 1, -1, -1):
        grads += [g.sum(0), th.mm(g.t(), acts[i])]
        if i > 0:
            g = _back_through(layers[i][0], g, acts[i])
    return grads[::-1]


def critic_grads(layers: list[Layer], acts: list[th.Tensor], target_q: th.Tensor) -> th.Tensor:
    """One critic's share of SB3's critic loss, ``0.5 * mse(Q(x, a), target)``, and its gradients.

    ``acts`` = :func:`mlp_forward` of this critic on ``cat([x, a])``. Writes each of the critic's
    parameters' ``.grad`` (``d loss / d Q = (Q - target) / n``: ``mse_loss``'s backward times 0.5)
    and returns the loss (0-dim).
    """
    diff = acts[-1] - target_q
    grads = mlp_param_grads(layers, acts, diff * (1.0 / diff.shape[0]))
    for p, g in zip((p for layer in layers for p in layer), grads, strict=True):
        p.grad = g
    return 0.5 * diff.square().mean()


def mlp_input_grad(layers: list[Layer], acts: list[th.Tensor], grad_out: th.Tensor, first_col: int) -> th.Tensor:
    """``d out / d input[:, first_col:]`` for output gradient ``grad_out`` (``acts`` from
    :func:`mlp_forward`); no weight gradients. For the actor loss, ``first_col`` = the
    observation width gives the gradient w.r.t. the action columns only."""
    g = grad_out
    for i in range(len(layers) - 1, 0, -1):
        g = _back_through(layers[i][0], g, acts[i])
    return th.mm(g, layers[0][0][:, first_col:])


def mlp_input_grad_rows(layers: list[Layer], acts: list[th.Tensor], rows: th.Tensor, scale: float,
                        first_col: int) -> th.Tensor:
    """:func:`mlp_input_grad` with output gradient ``scale`` on rows ``rows`` only (the rows
    where this critic attains ``min_i Q_i``; the others get no gradient from it)."""
    g = th.full((rows.numel(), 1), scale, dtype=acts[0].dtype, device=acts[0].device)
    hidden = [a.index_select(0, rows) for a in acts[1:-1]]  # input and output are not needed
    return mlp_input_grad(layers, [acts[0], *hidden, acts[-1]], g, first_col)


def mode_matters(policy: nn.Module) -> bool:
    """Whether train()/eval() changes any computation (Dropout or BatchNorm present)."""
    return any(isinstance(m, (nn.Dropout, nn.modules.batchnorm._BatchNorm)) for m in policy.modules())


def lazy_set_training_mode(policy: nn.Module, mode: bool) -> None:
    """``set_training_mode`` (bind with ``types.MethodType``) that walks the modules only when the
    requested mode differs from the current one. Like SB3's, it sets the actor and the critics,
    never ``critic_target`` (which stays in eval mode)."""
    if policy.training != mode:
        policy.actor.train(mode)
        policy.critic.train(mode)
        policy.training = mode
