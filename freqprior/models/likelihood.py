"""The likelihood API external code relies on: parameters, log-likelihoods, bits/dim."""
import math
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from freqprior.models.build import build_model
from freqprior.models.inputs import check_images, check_labels, dummy_inputs, prompt_tokens
from freqprior.models.pixelcnn import PixelCNN


def init_params(model: PixelCNN, config: ml_collections.ConfigDict, rng: jax.Array):
  """The model's initial parameters, drawn by one compiled program (eagerly, every op of the
  initialisation would compile and run on its own)."""
  images, labels = dummy_inputs(config)
  return jax.jit(model.init)(rng, images, labels)['params']


def bits_per_dim(log_probs_BHWC: jnp.ndarray) -> jnp.ndarray:
  """Per-example bits/dim [B] = -sum log p / (ln 2 * H * W * C)."""
  dims = math.prod(log_probs_BHWC.shape[1:])
  return -jnp.sum(log_probs_BHWC.astype(jnp.float32), axis=(1, 2, 3)) / (math.log(2.0) * dims)


def build_log_prob(config: ml_collections.ConfigDict, seed: int = 0) -> Callable:
  """log_prob(images, labels=None, prompts=None) -> float32 [B, H, W, C] of per-subpixel
  natural-log likelihoods under a freshly initialised model built from `config`."""
  model = build_model(config)
  params = init_params(model, config, jax.random.key(seed))
  # The parameters as an argument, not constants: the compilation cache then serves a model of
  # the same config built with another seed.
  apply = jax.jit(lambda params, images, labels, tokens: model.apply(
      {'params': params}, images, labels, tokens_BT=tokens))

  def log_prob(images, labels=None, prompts: Optional[Sequence[str]] = None):
    images = np.asarray(images)
    check_images(images, config)
    check_labels(labels, images.shape[0], config)
    tokens = prompt_tokens(prompts, images.shape[0], config)
    labels = None if labels is None else jnp.asarray(labels, jnp.int32)
    tokens = None if tokens is None else jnp.asarray(tokens)
    return apply(params, jnp.asarray(images), labels, tokens)

  return log_prob
