"""Checks and conversions of user inputs (images, labels, prompts) against a config."""
from typing import Optional, Sequence

import jax.numpy as jnp
import ml_collections
import numpy as np

from freqprior import errors
from freqprior.models import tokenizer


def prompt_tokens(prompts: Optional[Sequence[str]], batch: int,
                  config: ml_collections.ConfigDict) -> Optional[np.ndarray]:
  """Prompts -> int32 tokens [B, config.model.max_prompt_length]; None stays None."""
  if prompts is None:
    return None
  if config.model.text == 'none':
    raise errors.ConfigError('prompts were given to a model without text conditioning '
                             "(config.model.text == 'none')")
  if isinstance(prompts, (str, bytes)) or len(prompts) != batch:
    raise errors.ConfigError(f'prompts must be a sequence of B={batch} strings, got {prompts!r}')
  return tokenizer.tokenize(prompts, config.model.max_prompt_length)


def dummy_inputs(config: ml_collections.ConfigDict, batch: int = 1):
  """Zero images (and labels, for a class-conditional model) of the configured shape."""
  size, channels = config.dataset.image_size, config.dataset.channels
  images = jnp.zeros((batch, size, size, channels), jnp.uint8)
  labels = jnp.zeros((batch,), jnp.int32) if config.model.class_conditional else None
  return images, labels


def check_images(images: np.ndarray, config: ml_collections.ConfigDict) -> None:
  size, channels = config.dataset.image_size, config.dataset.channels
  expected = (size, size, channels)
  if images.ndim != 4 or tuple(images.shape[1:]) != expected:
    raise errors.ConfigError(f'images must be [B, {size}, {size}, {channels}] '
                             f'(config.dataset.image_size={size}, '
                             f'config.dataset.channels={channels}); got {tuple(images.shape)}')
  if images.dtype != np.uint8:
    raise errors.ConfigError(f'images must be uint8 0..255, got {images.dtype}')


def check_labels(labels, batch: int, config: ml_collections.ConfigDict) -> None:
  if labels is None:
    return
  if not config.model.class_conditional:
    raise errors.ConfigError('labels were given to an unconditional model '
                             '(config.model.class_conditional is False)')
  labels = np.asarray(labels)
  if labels.shape != (batch,):
    raise errors.ConfigError(f'labels must be [B={batch}], got {labels.shape}')
  num_classes = config.dataset.num_classes
  if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
    raise errors.ConfigError(f'labels must lie in 0..{num_classes - 1} '
                             f'(config.dataset.num_classes={num_classes}); got '
                             f'{labels.min()}..{labels.max()}')
