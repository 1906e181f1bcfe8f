"""Classifier-free guidance: null-input dropout for training, and the guided sampling rule.

The null inputs are the ones the model already understands as "no conditioning": the null class
label (index num_classes of the class embedding) and the empty prompt (tokenizer.null_tokens).

Rule, for both heads: the next subpixel is drawn from the 256-way distribution with logits
    log p_u(k) + s * (log p_c(k) - log p_u(k)),
where p_c / p_u are the conditional / unconditional model's distributions of that subpixel's 256
values given everything sampled before it. For the categorical head these are its softmax; for the
logistic mixture, the discretized mixture's 256 bin probabilities (channel means and mixture
weights conditioned on the subpixel's earlier channels). s = 1 is exactly the unguided model.
Temperature T then acts on the guided distribution as on an unguided one (sampling/draws.py):
p_T(k) = p(k)^(1/T) / Z, so equal halves give the unguided draw at any s and T.
"""
from typing import Callable, Optional

import jax
import jax.numpy as jnp

from freqprior.models import heads as heads_lib
from freqprior.models import tokenizer


def null_like(tokens_BT: jnp.ndarray) -> jnp.ndarray:
  """The empty prompt (tokenizer.null_tokens) in the shape and dtype of `tokens_BT`."""
  return jnp.asarray(tokenizer.null_tokens(*tokens_BT.shape), tokens_BT.dtype)


def drop_conditioning(rng: jax.Array, rate: float, labels_B: Optional[jnp.ndarray],
                      tokens_BT: Optional[jnp.ndarray], num_classes: int):
  """Replaces each example's label and prompt, together, by the null inputs with prob. `rate`.

  Returns (labels_B, tokens_BT, dropped_B); absent inputs stay None.
  """
  if not 0.0 <= rate < 1.0:
    raise ValueError(f'config.model.cond_dropout must be in [0, 1), got {rate}')
  batch = (labels_B if labels_B is not None else tokens_BT).shape[0]
  dropped_B = jax.random.bernoulli(rng, rate, (batch,))
  if labels_B is not None:
    labels_B = jnp.where(dropped_B, num_classes, labels_B)
  if tokens_BT is not None:
    tokens_BT = jnp.where(dropped_B[:, None], null_like(tokens_BT), tokens_BT)
  return labels_B, tokens_BT, dropped_B


def guided_logits(cond_BxK: jnp.ndarray, uncond_BxK: Optional[jnp.ndarray],
                  scale: float) -> jnp.ndarray:
  """uncond + scale * (cond - uncond) over the last (value) axis; `cond` itself when scale == 1.

  Inputs are logits or log-probabilities (a per-row constant does not change the softmax).
  """
  if scale == 1.0:
    return cond_BxK
  return uncond_BxK + scale * (cond_BxK - uncond_BxK)


def subpixel_log_probs(head: Callable, features_BF: jnp.ndarray, pixel_BC: jnp.ndarray,
                       channel: int) -> jnp.ndarray:
  """log p(x_c = k | x_<c, earlier pixels) for all k, [B, 256], from either head.

  head: (features [N, 1, 1, F], images [N, 1, 1, C]) -> per-subpixel log-likelihoods, e.g. the
  model's output head. It scores the pixel with channel c set to each of the 256 values; the heads
  are autoregressive over channels, so channels after c play no part. The reference for what the
  samplers compute directly (heads.mixture_value_log_probs, CategoricalHead.logits).
  """
  batch, channels = pixel_BC.shape
  values_K = jnp.arange(heads_lib.NUM_VALUES, dtype=pixel_BC.dtype)
  candidates_KBC = jnp.broadcast_to(pixel_BC, (len(values_K), batch, channels))
  candidates_KBC = candidates_KBC.at[:, :, channel].set(values_K[:, None])
  features_KBF = jnp.broadcast_to(features_BF, (len(values_K), *features_BF.shape))
  logp_NC = head(features_KBF.reshape(-1, 1, 1, features_BF.shape[-1]),
                 candidates_KBC.reshape(-1, 1, 1, channels)).reshape(-1, channels)
  return logp_NC[:, channel].reshape(len(values_K), batch).T


def with_unconditional_half(keys_B: jax.Array, labels_B: Optional[jnp.ndarray],
                            tokens_BT: Optional[jnp.ndarray], num_classes: int):
  """A guided sampler's batch of 2B: the B conditional examples, then the same keys with the
  null label and the empty prompt (None stays None: the model's null input already)."""
  if labels_B is not None:
    labels_B = jnp.concatenate([labels_B, jnp.full_like(labels_B, num_classes)])
  if tokens_BT is not None:
    tokens_BT = jnp.concatenate([tokens_BT, null_like(tokens_BT)])
  return jnp.concatenate([keys_B, keys_B]), labels_B, tokens_BT


def draw_guided_pixel(head, features_fn: Callable, noise: dict[str, jnp.ndarray],
                      temperature: jnp.ndarray, batch: int, scale: float) -> jnp.ndarray:
  """draws.draw_pixel under guidance, for a batch from `with_unconditional_half`: one pixel [2B, C]
  (both halves get the first half's draw) from the guided 256-way distribution of each channel.

  Each half's 256 log-probabilities come from the same function draws.draw_pixel uses, and the
  guided ones are drawn from as it does: categorical, Gumbel-max argmax(logits + T * gumbel);
  logistic mixture, softmax(logits / T) inverted at the channel's uniform.
  """
  half = batch // 2
  categorical = isinstance(head, heads_lib.CategoricalHead)
  pixel_BC = jnp.zeros((batch, head.channels), jnp.int32)
  if not categorical:  # the mixture's parameters see only earlier pixels
    params = [p[:, 0, 0] for p in head.mixture_params(features_fn(pixel_BC)[:, None, None])]
  for c in range(head.channels):
    if categorical:
      features_B11F = features_fn(pixel_BC)[:, None, None]
      logits_BK = head.logits(features_B11F, pixel_BC[:, None, None])[:, 0, 0, c]
    else:
      logits_BK = heads_lib.mixture_value_log_probs(*params, pixel_BC, c)
    logits_HK = guided_logits(logits_BK[:half], logits_BK[half:], scale)
    if categorical:
      value_H = jnp.argmax(logits_HK + temperature * noise['gumbel'][:half, c], axis=-1)
    else:
      value_H = heads_lib.draw_from_log_probs(logits_HK, temperature, noise['uniform'][:half, c])
    pixel_BC = pixel_BC.at[:, c].set(jnp.tile(value_H, 2).astype(jnp.int32))
  return pixel_BC
