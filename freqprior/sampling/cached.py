"""The incremental sampler: each stack layer computed once per position, from per-layer caches.

The vertical stack is advanced once per row (its row i depends on image rows < i only), the
horizontal stack once per pixel. Every shifted convolution keeps the input rows it still needs:
a 'down' conv of the vertical stack the kh-1 rows above, a 'down_right' conv of the horizontal
stack the kh-1 rows above plus the current row so far. Each frequency prior keeps its normalised
input history and produces the new row (vertical: the rows' spectra combined by one row of the
same lower-triangular Toeplitz product as the full filter, through the full filter's own
functions) or pixel (horizontal: one row of its masked Toeplitz product) from it, so no step
runs a DFT of the whole image.

Per-position modules (LayerNorm, Dense, the gates) are the model's own Flax classes applied to
the model's own parameter subtrees (the scanned block groups unstacked per block), and the prior
taps come from the model's own CausalTaps; the per-example context vector is taken from a run of
the real backbone (`capture`), so conditioning stays whatever the model computes.
"""
import functools
from typing import Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from freqprior.models import guidance
from freqprior.models import heads as heads_lib
from freqprior.models import layers
from freqprior.models import pixelcnn
from freqprior.models import prior as prior_lib
from freqprior.models import text as text_lib
from freqprior.sampling import draws


def capture(model, labels_B: Optional[jnp.ndarray], image_shape: tuple[int, int, int],
            batch: int, tokens_BT: Optional[jnp.ndarray] = None
            ) -> tuple[jnp.ndarray, Optional[text_lib.TextFeatures]]:
  """(context cond_BD that the gated blocks receive, the encoded prompt or None) from a run of
  the real backbone on a blank batch; under jit XLA drops the rest of that run."""
  found = {'text': None}

  def interceptor(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if isinstance(context.module, pixelcnn.Backbone) and context.method_name == 'context':
      found['cond_BD'] = out
    if isinstance(context.module, text_lib.TextEncoder) and context.method_name == '__call__':
      found['text'] = out
    return out

  blank_BHWC = jnp.zeros((batch, *image_shape), jnp.uint8)
  with nn.intercept_methods(interceptor):
    model.features(blank_BHWC, labels_B, tokens_BT=tokens_BT)
  return found['cond_BD'], found['text']


# per-example [B, F] -> [B, 1, 1, F], against rows [B, 1, W, F] and pixels [B, 1, 1, F]
_expand = functools.partial(layers.expand_to_rank, rank=4)


class Stepper:
  """The backbone one row (vertical stack) or one pixel (horizontal stack) at a time.

  Rows are [B, 1, W, F] and pixels [B, 1, 1, F], so per-position modules see rank-4 inputs as in
  the full model. `state` is a dict of caches: v_conv / h_conv (per block, conv_in and conv_out
  inputs), v_hist (per prior block, packed spectra of its normalised input rows, [W, F, H, 2, B]
  as `prior_lib.row_spectrum` lays them out) and
  h_hist (per prior block, its normalised inputs along the current row, [B, W, F]).
  """

  def __init__(self, settings: pixelcnn.BackboneSettings, params, cond_BD: jnp.ndarray,
               image_shape: tuple[int, int, int], text: Optional[text_lib.TextFeatures] = None):
    self.p = pixelcnn.block_params(params, settings)
    self.text_config, self.text = settings.text, text
    self.width = settings.width
    self.num_blocks = settings.num_blocks
    self.prior_blocks = tuple(settings.prior_blocks)
    self.dtype = settings.dtype
    self.height, self.image_width, _ = image_shape
    self.padding = pixelcnn.input_padding()  # (rows above, columns left, right) of x_pad
    taps = {f'{stack[0]}_prior{b}': prior_lib.CausalTaps(stack, settings.prior_kernel).apply(
        {'params': self.p[f'{stack[0]}_prior{b}']['taps']}, self.height, self.image_width,
        settings.prior_features).astype(jnp.float32)
            for stack in ('vertical', 'horizontal') for b in self.prior_blocks}
    self.cond_BD = cond_BD
    self.start_cond_B2F = self._dense('start_cond', 2 * self.width)(cond_BD)
    self.v_taps_f = {b: prior_lib.taps_spectrum(taps[f'v_prior{b}'], self.image_width)
                     for b in self.prior_blocks}
    self.h_taps = {b: taps[f'h_prior{b}'] for b in self.prior_blocks}

  # ---- The model's per-position modules on its parameter subtrees. ---------------------------
  def _sub(self, path: str):
    p = self.p
    for key in path.split('/'):
      p = p[key]
    return p

  def _layer_norm(self, path: str, dtype=None) -> Callable:
    module = nn.LayerNorm(dtype=self.dtype if dtype is None else dtype)
    return functools.partial(module.apply, {'params': self._sub(path)})

  def _dense(self, path: str, features: int) -> Callable:
    module = nn.Dense(features, dtype=self.dtype)
    return functools.partial(module.apply, {'params': self._sub(path)})

  def _conv(self, path: str, window_BHWC: jnp.ndarray) -> jnp.ndarray:
    """The ShiftedConv at `path`, VALID over a window holding exactly its receptive field."""
    params = self._sub(path)['conv']
    kh, kw, _, features = params['kernel'].shape
    module = nn.Conv(features, (kh, kw), padding='VALID', dtype=self.dtype)
    return module.apply({'params': params}, window_BHWC)

  def pad_image(self, x_BHWC: jnp.ndarray) -> jnp.ndarray:
    """The image in unit range -> x_pad, zero-padded by `padding` as `row` and `pixel` read it."""
    top, left, right = self.padding
    return jnp.pad(x_BHWC, ((0, 0), (top, 0), (left, right), (0, 0)))

  def _input_row(self, name: str, x_pad, i) -> jnp.ndarray:
    """The input term INPUT_CONVS[name] along row i, [B, 1, W, F]; it reads image rows < i."""
    conv = pixelcnn.INPUT_CONVS[name]
    (row, column), (kh, kw) = conv.window, conv.kernel
    top, left, _ = self.padding
    window_BRXC = jax.lax.dynamic_slice_in_dim(x_pad, i + row + top, kh, axis=1)
    window_BRXC = window_BRXC[:, :, column + left:column + left + self.image_width + kw - 1]
    placed_W1 = (i >= conv.offset[0]) & (jnp.arange(self.image_width) >= conv.offset[1])[:, None]
    return jnp.where(placed_W1, self._conv(name, window_BRXC), 0)  # zeros where `place` shifts in

  def _input_pixel(self, name: str, x_pad, i, j) -> jnp.ndarray:
    """The input term INPUT_CONVS[name] at pixel (i, j), [B, 1, 1, F]."""
    conv = pixelcnn.INPUT_CONVS[name]
    (row, column), kernel = conv.window, conv.kernel
    top, left, _ = self.padding
    window_BRXC = jax.lax.dynamic_slice(x_pad, (0, i + row + top, j + column + left, 0),
                                        (x_pad.shape[0], *kernel, x_pad.shape[-1]))
    placed = (i >= conv.offset[0]) & (j >= conv.offset[1])
    return jnp.where(placed, self._conv(name, window_BRXC), 0)

  # ---- Caches. ---------------------------------------------------------------------------------
  def _conv_rows(self, path: str) -> int:
    return self._sub(path)['conv']['kernel'].shape[0]

  def init_state(self, batch: int) -> dict:
    w, f = self.image_width, self.width
    zeros = lambda *shape: jnp.zeros((batch, *shape), self.dtype)
    v_conv, h_conv = [], []
    for b in range(self.num_blocks):
      v_conv.append(tuple(zeros(self._conv_rows(f'v_block{b}/{n}') - 1, w, f)
                          for n in ('conv_in', 'conv_out')))
      h_conv.append(tuple(
          zeros(self._conv_rows(f'h_block{b}/{n}'),
                w + self._sub(f'h_block{b}/{n}/conv')['kernel'].shape[1] - 1, f)
          for n in ('conv_in', 'conv_out')))
    return {'v_conv': v_conv, 'h_conv': h_conv,
            'v_hist': {b: jnp.zeros((w, self.v_taps_f[b].shape[1], self.height, 2, batch),
                                    jnp.float32) for b in self.prior_blocks},
            'h_hist': {b: jnp.zeros((batch, w, self.h_taps[b].shape[-1]), jnp.float32)
                       for b in self.prior_blocks}}

  def _row_conv(self, path: str, above_BRWC, new_B1WC):
    """'down' conv output for a new row from the cached rows above; -> (out, new cache)."""
    kw = self._sub(path)['conv']['kernel'].shape[1]
    window = jnp.concatenate([above_BRWC, new_B1WC.astype(above_BRWC.dtype)], axis=1)
    pad = (kw - 1) // 2
    return self._conv(path, jnp.pad(window, ((0, 0), (0, 0), (pad, pad), (0, 0)))), window[:, 1:]

  def _pixel_conv(self, j, path: str, rows_BRXC, new_B11C):
    """'down_right' conv output at column j; cache [B, kh, kw-1+W, C], left-padded rows."""
    kh, kw = self._sub(path)['conv']['kernel'].shape[:2]
    rows_BRXC = jax.lax.dynamic_update_slice(rows_BRXC, new_B11C.astype(rows_BRXC.dtype),
                                             (0, kh - 1, j + kw - 1, 0))
    window = jax.lax.dynamic_slice(rows_BRXC, (0, 0, j, 0),
                                   (rows_BRXC.shape[0], kh, kw, rows_BRXC.shape[-1]))
    return self._conv(path, window), rows_BRXC

  # ---- Layers. ---------------------------------------------------------------------------------
  def _gated(self, path: str, x, caches, conv: Callable, aux=None):
    """GatedResidual at the new positions; conv(path, cache, input) -> (output, cache)."""
    a, cache_in = conv(f'{path}/conv_in', caches[0], self._layer_norm(f'{path}/norm_in')(x))
    if aux is not None:
      a = a + self._dense(f'{path}/aux', self.width)(self._layer_norm(f'{path}/norm_aux')(aux))
    b, cache_out = conv(f'{path}/conv_out', caches[1], nn.elu(a))
    b = b + _expand(self._dense(f'{path}/cond', 2 * self.width)(self.cond_BD))
    f, g = jnp.split(b, 2, axis=-1)
    return x + jnp.tanh(f) * nn.sigmoid(g), (cache_in, cache_out)

  def _text(self, stack: str, b: int, x):
    """The block's prompt conditioning (Backbone.add_text), per position."""
    if self.text is None:
      return x
    if f'{stack}_fuse{b}' in self.p:
      return text_lib.GatedFusion(self.dtype).apply({'params': self.p[f'{stack}_fuse{b}']}, x,
                                                    self.text.pooled_BD)
    if f'{stack}_cross{b}' in self.p:
      return text_lib.CrossAttention(self.text_config.cross_attention_heads, self.dtype).apply(
          {'params': self.p[f'{stack}_cross{b}']}, x, self.text)
    return x

  def _prior(self, path: str, x, y_fn: Callable):
    """FrequencyPrior: norm (float32) -> y_fn(normalised new positions) -> predict Dense."""
    u = self._layer_norm(f'{path}/norm', jnp.float32)(x.astype(jnp.float32))
    if 'reduce' in self._sub(path):
      reduce = self._sub(f'{path}/reduce')
      u = nn.Dense(reduce['kernel'].shape[-1], precision=layers.HIGHEST).apply(
          {'params': reduce}, u)
    y, hist = y_fn(u)
    return self._dense(f'{path}/predict', x.shape[-1])(y.astype(self.dtype)), hist

  def _vertical_filter(self, b, i, hist_KFRPB, u_B1WF):
    # Rows below i are still zeros; row i of the Toeplitz product gives them exact zeros anyway.
    hist_KFRPB = jax.lax.dynamic_update_slice_in_dim(hist_KFRPB, prior_lib.row_spectrum(u_B1WF),
                                                     i, axis=2)
    products = prior_lib.combine_rows(self.v_taps_f[b], hist_KFRPB, row=i)
    return prior_lib.row_signal(products), hist_KFRPB

  def _horizontal_filter(self, b, j, hist_BWF, u_B11F):
    # Entries right of j still hold the previous row; row j of the Toeplitz matrix zeroes them.
    hist_BWF = jax.lax.dynamic_update_slice_in_dim(hist_BWF, u_B11F[:, 0], j, axis=1)
    y_BF = jnp.einsum('ck,bkc->bc', prior_lib.causal_toeplitz(self.h_taps[b].T, j)[:, 0],
                      hist_BWF, precision=layers.HIGHEST)
    return _expand(y_BF), hist_BWF

  def row(self, i, x_pad, state: dict):
    """Vertical stack at row i of x_pad (`pad_image`; only image rows < i are read). -> (v after
    each block [B, 1, W, F] per block, the row's h_in_above term, state) and starts row i in the
    horizontal caches."""
    pos_1WF = (jax.lax.dynamic_slice_in_dim(self.p['v_pos'], i, 1, axis=0)
               if 'v_pos' in self.p else None)
    v = pixelcnn.add_start('v', self._input_row('v_in', x_pad, i), self.p['v_start'],
                           self.start_cond_B2F, pos_1WF, self.dtype)
    h_above = self._input_row('h_in_above', x_pad, i)
    v_conv, v_hist, v_rows = list(state['v_conv']), dict(state['v_hist']), []
    for b in range(self.num_blocks):
      v, v_conv[b] = self._gated(f'v_block{b}', v, v_conv[b], self._row_conv)
      v = self._text('v', b, v)
      if b in self.prior_blocks:
        delta, v_hist[b] = self._prior(
            f'v_prior{b}', v, functools.partial(self._vertical_filter, b, i, v_hist[b]))
        v = v + delta
      v_rows.append(v)
    h_conv = [tuple(jnp.concatenate([c[:, 1:], jnp.zeros_like(c[:, :1])], axis=1) for c in cs)
              for cs in state['h_conv']]
    return v_rows, h_above, dict(state, v_conv=v_conv, v_hist=v_hist, h_conv=h_conv)

  def pixel(self, i, j, x_pad, v_rows, h_above, state: dict):
    """Horizontal stack at (i, j) -> (features [B, F] float32, state)."""
    column = lambda row_B1WF: jax.lax.dynamic_slice_in_dim(row_B1WF, j, 1, axis=2)
    pos_11F = (jax.lax.dynamic_slice(self.p['h_pos'], (i, j, 0), (1, 1, self.width))
               if 'h_pos' in self.p else None)
    h = pixelcnn.add_start('h', column(h_above) + self._input_pixel('h_in_left', x_pad, i, j),
                           self.p['h_start'], self.start_cond_B2F, pos_11F, self.dtype)
    h_conv, h_hist = list(state['h_conv']), dict(state['h_hist'])
    for b in range(self.num_blocks):
      h, h_conv[b] = self._gated(f'h_block{b}', h, h_conv[b],
                                 functools.partial(self._pixel_conv, j), aux=column(v_rows[b]))
      h = self._text('h', b, h)
      if b in self.prior_blocks:
        delta, h_hist[b] = self._prior(
            f'h_prior{b}', h, functools.partial(self._horizontal_filter, b, j, h_hist[b]))
        h = h + delta
    features_B11F = nn.elu(self._layer_norm('norm_out', jnp.float32)(h)).astype(jnp.float32)
    return features_B11F[:, 0, 0], dict(state, h_conv=h_conv, h_hist=h_hist)


def sample(model, labels_B: Optional[jnp.ndarray], keys_B: jax.Array, temperature: jnp.ndarray,
           image_shape: tuple[int, int, int], on_row: Optional[Callable] = None,
           tokens_BT: Optional[jnp.ndarray] = None, guidance_scale: float = 1.0) -> jnp.ndarray:
  """-> uint8 [B, H, W, C]. Call inside `model.apply(..., method=...)`; `on_row(i)` runs on the
  host after each row (progress). tokens_BT: the prompts of a text model. guidance_scale != 1:
  a batch from `guidance.with_unconditional_half`, drawn by `guidance.draw_guided_pixel`."""
  height, width, channels = image_shape
  batch = keys_B.shape[0]
  cond_BD, text = capture(model, labels_B, image_shape, batch, tokens_BT)
  stepper = Stepper(model.settings, model.variables['params']['backbone'], cond_BD, image_shape,
                    text)
  head = model.output_head
  top, left, _ = stepper.padding

  def row_step(i, carry):
    x_pad, images_BHWC, state = carry
    v_rows, h_above, state = stepper.row(i, x_pad, state)

    def pixel_step(j, carry):
      x_pad, images_BHWC, state = carry
      features_BF, state = stepper.pixel(i, j, x_pad, v_rows, h_above, state)
      noise = draws.pixel_noise(head, keys_B, i * width + j)
      if guidance_scale == 1.0:
        pixel_BC = draws.draw_pixel(head, lambda _: features_BF, noise, temperature, batch)
      else:
        pixel_BC = guidance.draw_guided_pixel(head, lambda _: features_BF, noise, temperature,
                                              batch, guidance_scale)
      x_B11C = heads_lib.to_unit_range(pixel_BC).astype(x_pad.dtype)[:, None, None]
      x_pad = jax.lax.dynamic_update_slice(x_pad, x_B11C, (0, i + top, j + left, 0))
      images_BHWC = images_BHWC.at[:, i, j].set(pixel_BC.astype(jnp.uint8))
      return x_pad, images_BHWC, state

    carry = jax.lax.fori_loop(0, width, pixel_step, (x_pad, images_BHWC, state))
    if on_row is not None:
      jax.debug.callback(on_row, i)
    return carry

  x_pad = stepper.pad_image(jnp.zeros((batch, height, width, channels), stepper.dtype))
  images_BHWC = jnp.zeros((batch, height, width, channels), jnp.uint8)
  carry = (x_pad, images_BHWC, stepper.init_state(batch))
  return jax.lax.fori_loop(0, height, row_step, carry)[1]
