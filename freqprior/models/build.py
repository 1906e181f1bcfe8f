"""The model a config describes: its backbone settings, heads and prompt conditioning."""
from typing import Optional

import jax
import jax.numpy as jnp
import ml_collections

from freqprior import errors
from freqprior.models import text as text_lib
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
