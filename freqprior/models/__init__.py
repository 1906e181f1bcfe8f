"""Model construction from a config, and the likelihood API external code relies on."""
import math
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from freqprior import errors
from freqprior.models import text as text_lib
from freqprior.models import tokenizer
from freqprior.models.pixelcnn import BackboneSettings, PixelCNN

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def prior_block_indices(spec: str, num_blocks: int, enabled: bool = True,
                        key: str = 'prior_blocks') -> tuple[int, ...]:
  """Parses config.model.<key>: 'all', 'last', 'none' or indices such as '1,3'."""
  if not enabled or spec == 'none':
    return ()
  if spec == 'all':
    return tuple(range(num_blocks))
  if spec == 'last':
    return (num_blocks - 1,)
  try:
    indices = tuple(sorted({int(s) for s in spec.split(',')}))
  except ValueError:
    raise errors.ConfigError(f"config.model.{key} must be 'all', 'last', 'none' or block indices "
                             f'like "1,3"; got {spec!r}') from None
  if any(not 0 <= i < num_blocks for i in indices):
    raise errors.ConfigError(f'config.model.{key}={spec!r} names a block outside '
                             f'0..{num_blocks - 1} (config.model.num_blocks={num_blocks})')
  return indices


def build_model(config: ml_collections.ConfigDict) -> PixelCNN:
  """The PixelCNN that `config.model` and `config.dataset` describe."""
  m = config.model
  if m.head not in ('categorical', 'logistic_mixture'):
    raise errors.ConfigError("config.model.head must be 'categorical' or 'logistic_mixture', got "
                             f'{m.head!r}')
  if m.prior_kernel not in ('full', 'implicit'):
    raise errors.ConfigError("config.model.prior_kernel must be 'full' or 'implicit', got "
                             f'{m.prior_kernel!r}')
  if m.dtype not in DTYPES:
    raise errors.ConfigError(f'config.model.dtype must be one of {sorted(DTYPES)}, got {m.dtype!r}')
  if m.remat not in ('none', 'full') and not hasattr(jax.checkpoint_policies, m.remat):
    raise errors.ConfigError("config.model.remat must be 'none', 'full' or a "
                             f'jax.checkpoint_policies name such as dots_saveable; got {m.remat!r}')
  settings = BackboneSettings(
      width=m.width,
      num_blocks=m.num_blocks,
      num_classes=config.dataset.num_classes if m.class_conditional else 0,
      dropout=m.dropout,
      prior_blocks=prior_block_indices(m.prior_blocks, m.num_blocks, m.frequency_prior),
      prior_kernel=m.prior_kernel,
      prior_channels=m.prior_channels,
      dtype=DTYPES[m.dtype],
      text=text_config(config),
      cond_dropout=m.cond_dropout,
      position_embedding=m.position_embedding,
      input_corruption=m.input_corruption,
      remat=m.remat,
  )
  return PixelCNN(config.dataset.channels, settings, m.head, m.head_width, m.num_mixtures)


def text_config(config: ml_collections.ConfigDict) -> Optional[text_lib.TextConfig]:
  """The prompt conditioning `config.model` asks for; None for config.model.text == 'none'."""
  m = config.model
  if m.text == 'none':
    return None
  if m.text not in ('pooled', 'cross_attention'):
    raise errors.ConfigError("config.model.text must be 'none', 'pooled' or 'cross_attention', got "
                             f'{m.text!r}')
  for key, width in (('text_heads', m.text_width), ('cross_attention_heads', m.width)):
    if width % m[key]:
      raise errors.ConfigError(f'config.model.{key}={m[key]} must divide the width {width}')
  blocks = prior_block_indices(m.cross_attention_blocks, m.num_blocks,
                               key='cross_attention_blocks')
  return text_lib.TextConfig(m.text, m.text_width, m.text_depth, m.text_heads,
                             m.max_prompt_length, blocks, m.cross_attention_heads)


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


def init_params(model: PixelCNN, config: ml_collections.ConfigDict, rng: jax.Array):
  images, labels = dummy_inputs(config)
  return model.init(rng, images, labels)['params']


def bits_per_dim(log_probs_BHWC: jnp.ndarray) -> jnp.ndarray:
  """Per-example bits/dim [B] = -sum log p / (ln 2 * H * W * C)."""
  dims = math.prod(log_probs_BHWC.shape[1:])
  return -jnp.sum(log_probs_BHWC.astype(jnp.float32), axis=(1, 2, 3)) / (math.log(2.0) * dims)


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


def build_log_prob(config: ml_collections.ConfigDict, seed: int = 0) -> Callable:
  """log_prob(images, labels=None, prompts=None) -> float32 [B, H, W, C] of per-subpixel
  natural-log likelihoods under a freshly initialised model built from `config`."""
  model = build_model(config)
  params = init_params(model, config, jax.random.key(seed))
  apply = jax.jit(lambda images, labels, tokens: model.apply({'params': params}, images, labels,
                                                              tokens_BT=tokens))

  def log_prob(images, labels=None, prompts: Optional[Sequence[str]] = None):
    images = np.asarray(images)
    check_images(images, config)
    check_labels(labels, images.shape[0], config)
    tokens = prompt_tokens(prompts, images.shape[0], config)
    labels = None if labels is None else jnp.asarray(labels, jnp.int32)
    return apply(jnp.asarray(images), labels, None if tokens is None else jnp.asarray(tokens))

  return log_prob
