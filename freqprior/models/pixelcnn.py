"""Gated PixelCNN with vertical / horizontal stacks, no blind spot, and the frequency prior.

Vertical stack features at (i, j) see pixels in rows < i; horizontal stack features see those
and the pixels (i, j' < j). Normalizations are per position over channels only (never over
H, W or the batch), so nothing pools information across positions. A text prompt (models/text.py)
enters each position on its own: gated fusion of the pooled prompt, or cross-attention to it.
"""
import dataclasses
import re
from typing import Any, NamedTuple, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from freqprior import errors
from freqprior.models import guidance
from freqprior.models import heads as heads_lib
from freqprior.models import layers
from freqprior.models import prior as prior_lib
from freqprior.models import text as text_lib
from freqprior.models import tokenizer


class GatedResidual(nn.Module):
  """x + tanh(f) * sigmoid(g), [f, g] = conv(elu(conv(norm x) + dense(norm aux))) + dense(cond)."""
  width: int
  kernel: tuple[int, int]
  shift: str
  dropout: float = 0.0
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x_BHWF, cond_BD, aux_BHWF=None, train=False):
    conv = lambda n, name: layers.ShiftedConv(n, self.kernel, self.shift, self.dtype, name=name)
    a_BHWF = conv(self.width, 'conv_in')(nn.LayerNorm(dtype=self.dtype, name='norm_in')(x_BHWF))
    if aux_BHWF is not None:
      aux_BHWF = nn.LayerNorm(dtype=self.dtype, name='norm_aux')(aux_BHWF)
      a_BHWF = a_BHWF + nn.Dense(self.width, dtype=self.dtype, name='aux')(aux_BHWF)
    a_BHWF = nn.Dropout(self.dropout)(nn.elu(a_BHWF), deterministic=not train)
    b_BHW2F = conv(2 * self.width, 'conv_out')(a_BHWF)
    b_BHW2F = b_BHW2F + nn.Dense(2 * self.width, dtype=self.dtype, name='cond')(cond_BD)[:, None, None]
    f_BHWF, g_BHWF = jnp.split(b_BHW2F, 2, axis=-1)
    return x_BHWF + jnp.tanh(f_BHWF) * nn.sigmoid(g_BHWF)


@dataclasses.dataclass(frozen=True)
class BackboneSettings:
  """What the backbone is: one hashable value, shared by the model and the cached sampler."""
  width: int = 32
  num_blocks: int = 4
  cond_dim: int = 64
  num_classes: int = 0  # 0: unconditional
  dropout: float = 0.0
  prior_blocks: tuple[int, ...] = ()
  prior_kernel: str = 'full'
  prior_channels: int = 0  # channels the prior filters (a bottleneck); 0: all of them
  dtype: Any = jnp.float32
  text: Optional[text_lib.TextConfig] = None  # None: no prompt conditioning
  cond_dropout: float = 0.0  # training: P(label and prompt -> null inputs)
  position_embedding: bool = False  # learned [H, W, F] start features per stack
  input_corruption: float = 0.0  # training: P(an input pixel -> uniform noise); targets unchanged
  remat: str = 'none'  # 'none', 'full', or a jax.checkpoint_policies name such as 'dots_saveable'

  def kind(self, block: int) -> tuple[bool, bool]:
    """(has the frequency prior, has cross-attention) of block `block`."""
    cross = self.text is not None and self.text.mode == 'cross_attention' and (
        block in self.text.cross_attention_blocks)
    return block in self.prior_blocks, cross

  @property
  def period(self) -> int:
    """The fewest blocks whose pattern repeats through the depth: the scanned group's size."""
    kinds = [self.kind(b) for b in range(self.num_blocks)]
    return next(p for p in range(1, self.num_blocks + 1)
                if self.num_blocks % p == 0 and all(k == kinds[b % p] for b, k in enumerate(kinds)))

  @property
  def prior_features(self) -> int:
    return self.prior_channels or self.width


def block_params(backbone_params: dict, settings: BackboneSettings) -> dict:
  """The backbone's parameters with the scanned groups unstacked into per-block subtrees
  named as the blocks are ('v_block7', 'h_prior11', ...), for code that runs one block at a time."""
  flat = {k: v for k, v in backbone_params.items() if k != 'blocks'}
  period = settings.period
  for name, stacked in backbone_params['blocks'].items():
    prefix, k = re.fullmatch(r'(\D+)(\d+)', name).groups()
    for g in range(settings.num_blocks // period):
      flat[f'{prefix}{g * period + int(k)}'] = jax.tree.map(lambda x, g=g: x[g], stacked)
  return flat


class InputConv(NamedTuple):
  """A convolution reading the image: kernel, causal shift, and the (rows, columns) its output
  moves down / right (zeros entering), so that no position sees its own pixel."""
  kernel: tuple[int, int]
  shift: str
  offset: tuple[int, int]

  @property
  def window(self) -> tuple[int, int]:
    """(row, column) of the image, relative to the output position, where its receptive field
    starts; it spans `kernel` rows and columns from there."""
    (top, _), (left, _) = layers.causal_padding(self.kernel, self.shift)
    return -self.offset[0] - top, -self.offset[1] - left

  def place(self, y_BHWF: jnp.ndarray) -> jnp.ndarray:
    """The conv's output moved down / right by `offset`."""
    for _ in range(self.offset[0]):
      y_BHWF = layers.down_shift(y_BHWF)
    for _ in range(self.offset[1]):
      y_BHWF = layers.right_shift(y_BHWF)
    return y_BHWF


# The stacks' input terms: vertical v_in (rows above); horizontal h_in_above (the row above)
# plus h_in_left (the pixels to the left, and above them).
INPUT_CONVS = {'v_in': InputConv((2, 3), 'down', (1, 0)),
               'h_in_above': InputConv((1, 3), 'down', (1, 0)),
               'h_in_left': InputConv((2, 1), 'down_right', (0, 1))}


def input_padding() -> tuple[int, int, int]:
  """(rows above, columns left, columns right) of zeros around the image that hold every input
  conv's window at every position: an incremental sampler's padded image."""
  convs = INPUT_CONVS.values()
  return (max(-conv.window[0] for conv in convs), max(-conv.window[1] for conv in convs),
          max(max(conv.window[1] + conv.kernel[1] - 1, 0) for conv in convs))


def add_start(stack: str, x_BxF: jnp.ndarray, start_F: jnp.ndarray, start_cond_B2F: jnp.ndarray,
              pos_xF: Optional[jnp.ndarray], dtype) -> jnp.ndarray:
  """A stack's ('v' or 'h') input term plus its start features, in this order: its learned
  start vector, its half of the context's start_cond, its position embedding in `dtype` (pos_xF:
  that of the positions x covers, or None)."""
  context_BF = jnp.split(start_cond_B2F, 2, axis=-1)['vh'.index(stack)]
  x_BxF = x_BxF + start_F + layers.expand_to_rank(context_BF, x_BxF.ndim)
  return x_BxF if pos_xF is None else x_BxF + pos_xF.astype(dtype)


class PixelCNN(nn.Module):
  """Maps uint8 images [B, H, W, C] (+ labels) to per-subpixel log-likelihoods [B, H, W, C]."""
  channels: int
  settings: BackboneSettings = BackboneSettings()
  head: str = 'categorical'
  head_width: int = 64
  num_mixtures: int = 5

  def setup(self):
    if self.head == 'categorical':
      self.output_head = heads_lib.CategoricalHead(self.channels, self.head_width)
    elif self.head == 'logistic_mixture':
      self.output_head = heads_lib.LogisticMixtureHead(self.channels, self.num_mixtures,
                                                       self.head_width)
    else:
      raise errors.ConfigError("config.model.head must be 'categorical' or 'logistic_mixture', got "
                               f'{self.head!r}')
    self.backbone = Backbone(self.settings)

  def features(self, images_BHWC, labels_B=None, train=False, tokens_BT=None):
    """-> features_BHWF (float32), each seeing only strictly earlier pixels."""
    return self.backbone(heads_lib.to_unit_range(images_BHWC), labels_B, train, tokens_BT)

  def __call__(self, images_BHWC, labels_B=None, train=False, tokens_BT=None):
    return self.output_head(self.features(images_BHWC, labels_B, train, tokens_BT), images_BHWC)


class BlockGroup(nn.Module):
  """`settings.period` consecutive blocks (vertical, then horizontal reading it; each with its
  prompt conditioning and frequency prior where the pattern has them); scanned over depth."""
  s: BackboneSettings
  train: bool = False

  def add_text(self, x_BxF, text, stack: str, k: int):
    """Block k's prompt conditioning of one stack's features (any [B, ..., F] slice)."""
    if text is None:
      return x_BxF
    if self.s.text.mode == 'pooled':
      return text_lib.GatedFusion(self.s.dtype, name=f'{stack}_fuse{k}')(x_BxF, text.pooled_BD)
    if not self.s.kind(k)[1]:
      return x_BxF
    return text_lib.CrossAttention(self.s.text.cross_attention_heads, self.s.dtype,
                                   name=f'{stack}_cross{k}')(x_BxF, text)

  @nn.compact
  def __call__(self, carry, cond_BD, text):
    v_BHWF, h_BHWF = carry
    s = self.s
    prior = lambda stack, k: prior_lib.FrequencyPrior(
        stack, s.prior_kernel, s.prior_channels, s.dtype, name=f'{stack[0]}_prior{k}')
    for k in range(s.period):
      v_BHWF = GatedResidual(s.width, (2, 3), 'down', s.dropout, s.dtype,
                             name=f'v_block{k}')(v_BHWF, cond_BD, train=self.train)
      v_BHWF = self.add_text(v_BHWF, text, 'v', k)
      if s.kind(k)[0]:  # before h reads v, so one block already sees every earlier pixel
        v_BHWF = v_BHWF + prior('vertical', k)(v_BHWF)
      h_BHWF = GatedResidual(s.width, (2, 2), 'down_right', s.dropout, s.dtype,
                             name=f'h_block{k}')(h_BHWF, cond_BD, v_BHWF, train=self.train)
      h_BHWF = self.add_text(h_BHWF, text, 'h', k)
      if s.kind(k)[0]:
        h_BHWF = h_BHWF + prior('horizontal', k)(h_BHWF)
    return (v_BHWF.astype(carry[0].dtype), h_BHWF.astype(carry[1].dtype)), None


# XLA:CPU runs convolutions inside a while loop, their gradients above all, an order of magnitude
# slower than the same convolutions outside one (jax-ml/jax#12868; 12x for the digits and MNIST
# train steps), so there the scan is unrolled when lowered: the jaxpr, the parameters and the
# checkpoints are the same on every backend, only XLA:CPU's program grows with depth.
# Initialisation runs once and its cost is mostly compiling the parameters' random draws, so it
# keeps the loop everywhere: one group's initialisers compile once, not once per group.
UNROLLED_BACKENDS = ('cpu',)


def scanned_groups(settings: BackboneSettings, initializing: bool = False):
  """BlockGroup scanned over num_blocks / period groups: the graph holds one group whatever the
  depth; parameters gain a leading [groups] axis. Optionally rematerialised (settings.remat)."""
  group = BlockGroup
  if settings.remat != 'none':
    policy = None if settings.remat == 'full' else getattr(jax.checkpoint_policies, settings.remat)
    group = nn.remat(group, policy=policy, prevent_cse=False)  # scan already keeps CSE apart
  groups = settings.num_blocks // settings.period
  return nn.scan(group, variable_axes={'params': 0}, split_rngs={'params': True, 'dropout': True},
                 in_axes=(nn.broadcast, nn.broadcast), length=groups,
                 unroll=groups if (jax.default_backend() in UNROLLED_BACKENDS
                                   and not initializing) else 1)


class Backbone(nn.Module):
  """The two gated stacks; returns the horizontal stack's final features."""
  s: BackboneSettings

  def context(self, labels_B: Optional[jnp.ndarray], batch: int) -> jnp.ndarray:
    """Per-example context vector [B, D]; the learned null context when there is no label."""
    null_D = self.param('null_context', nn.initializers.normal(1.0), (self.s.cond_dim,))
    if self.s.num_classes == 0:
      if labels_B is not None:
        raise errors.ConfigError('labels were given to an unconditional model '
                                 '(config.model.class_conditional is False)')
      return jnp.broadcast_to(null_D, (batch, self.s.cond_dim))
    if labels_B is None:  # the null label, used for unconditional / guided sampling
      labels_B = jnp.full((batch,), self.s.num_classes, jnp.int32)
    return nn.Embed(self.s.num_classes + 1, self.s.cond_dim, name='class_embed')(labels_B)

  def encode_text(self, tokens_BT: Optional[jnp.ndarray], batch: int):
    """The prompt's TextFeatures (the empty prompt when tokens are None); None without text."""
    if self.s.text is None:
      if tokens_BT is not None:
        raise errors.ConfigError('prompts were given to a model without text conditioning '
                                 "(config.model.text == 'none')")
      return None
    if tokens_BT is None:
      tokens_BT = jnp.asarray(tokenizer.null_tokens(batch, self.s.text.max_length))
    t = self.s.text
    return text_lib.TextEncoder(t.width, t.depth, t.heads, self.s.dtype,
                                name='text_encoder')(tokens_BT)

  def drop_conditioning(self, labels_B, tokens_BT, batch: int):
    """Training: each example's label and prompt become the null inputs with cond_dropout."""
    if self.s.num_classes and labels_B is None:
      labels_B = jnp.full((batch,), self.s.num_classes, jnp.int32)
    if self.s.text is not None and tokens_BT is None:
      tokens_BT = jnp.asarray(tokenizer.null_tokens(batch, self.s.text.max_length))
    if labels_B is None and tokens_BT is None:
      return None, None
    labels_B, tokens_BT, _ = guidance.drop_conditioning(
        self.make_rng('dropout'), self.s.cond_dropout, labels_B, tokens_BT, self.s.num_classes)
    return labels_B, tokens_BT

  def corrupt(self, x_BHWC):
    """Training only: each input pixel independently (per example and position) becomes
    uniform noise in [-1, 1] with probability input_corruption; the targets stay the true
    pixels, so the network learns not to over-trust any single context pixel."""
    key_hit, key_value = jax.random.split(self.make_rng('dropout'))
    hit_BHW1 = jax.random.bernoulli(key_hit, self.s.input_corruption, (*x_BHWC.shape[:3], 1))
    noise_BHWC = jax.random.uniform(key_value, x_BHWC.shape, x_BHWC.dtype, -1.0, 1.0)
    return jnp.where(hit_BHW1, noise_BHWC, x_BHWC)

  def input_term(self, name: str, x_BHWC: jnp.ndarray) -> jnp.ndarray:
    """The input conv INPUT_CONVS[name] of the image, placed."""
    conv = INPUT_CONVS[name]
    return conv.place(layers.ShiftedConv(self.s.width, conv.kernel, conv.shift, self.s.dtype,
                                         name=name)(x_BHWC))

  def position_embedding(self, stack: str, image_hw: tuple[int, int]) -> Optional[jnp.ndarray]:
    """The stack's learned [H, W, F] start features; None without them. They depend on the
    position only, so causality is unchanged."""
    if not self.s.position_embedding:
      return None
    return self.param(f'{stack}_pos', nn.initializers.zeros, (*image_hw, self.s.width))

  def start_stacks(self, x_BHWC, labels_B, train: bool, tokens_BT):
    """(context cond_BD, the encoded prompt or None, v_BHWF, h_BHWF): the stacks' inputs before
    the first block, with the conditioning dropped and the input corrupted in training."""
    batch = x_BHWC.shape[0]
    if train and self.s.cond_dropout > 0:
      labels_B, tokens_BT = self.drop_conditioning(labels_B, tokens_BT, batch)
    cond_BD = self.context(labels_B, batch)
    text = self.encode_text(tokens_BT, batch)
    if train and self.s.input_corruption > 0:
      x_BHWC = self.corrupt(x_BHWC)
    x_BHWC = x_BHWC.astype(self.s.dtype)
    start_cond_B2F = nn.Dense(2 * self.s.width, dtype=self.s.dtype, name='start_cond')(cond_BD)
    start = lambda stack, x_BHWF: add_start(
        stack, x_BHWF, self.param(f'{stack}_start', nn.initializers.normal(1.0), (self.s.width,)),
        start_cond_B2F, self.position_embedding(stack, x_BHWC.shape[1:3]), self.s.dtype)
    term = lambda name: self.input_term(name, x_BHWC)
    v_BHWF = start('v', term('v_in'))
    h_BHWF = start('h', term('h_in_above') + term('h_in_left'))
    return cond_BD, text, v_BHWF, h_BHWF

  @nn.compact
  def __call__(self, x_BHWC, labels_B=None, train=False, tokens_BT=None):
    """x_BHWC: images scaled to [-1, 1]; tokens_BT: the prompt (tokenizer.tokenize)."""
    cond_BD, text, v_BHWF, h_BHWF = self.start_stacks(x_BHWC, labels_B, train, tokens_BT)
    groups = scanned_groups(self.s, self.is_initializing())
    (v_BHWF, h_BHWF), _ = groups(self.s, train, name='blocks')(
        (v_BHWF, h_BHWF), cond_BD, text)
    return nn.elu(nn.LayerNorm(dtype=jnp.float32, name='norm_out')(h_BHWF)).astype(jnp.float32)
