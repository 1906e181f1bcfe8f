"""Output heads' products at reduced matmul precision: log-likelihood error against float32.

  python benchmarks/heads_precision.py [--steps=3000] [--positions=8192]

Each product of each head is evaluated in turn (every other product exact) with its operands
rounded as accelerators do for float32 inputs below Precision.HIGHEST: one bfloat16 pass
(DEFAULT on TPU), bf16x3 (HIGH on TPU: hi + lo bfloat16 splits of both operands, lo * lo
dropped) and TF32 (DEFAULT and HIGH on recent NVIDIA GPUs), with float32 accumulation. On CPU
every precision is float32, so the rounding is done explicitly. 'all' rounds every product.

Heads are cifar100-sized (configs/cifar100.py: 3 channels, features and head width 160, 10
mixtures), at init on random features, and after a short fit (--steps of Adam) to synthetic
pixels that are a fixed function of the features plus noise of 0.3 to 8 levels, which gives
trained-like weight and logit scales. Errors are per subpixel: nats, and bits/dim (nats / ln 2).
Per backend, a product may leave HIGHEST for the cheapest precision whose mean absolute error
stays under THRESHOLD_BPD in every setting: on TPU DEFAULT (bf16) or HIGH (bf16x3), on GPU
HIGH (TF32, as DEFAULT is there). 'as shipped': every product at heads.PRECISION, per backend.
Runs on CPU, where the unrounded products are float32 whatever their precision: about 10
minutes on 2 cores, most of it the fit. The last line is JSON.
"""
import argparse
import functools
import json
import math
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, '.')
from freqprior.models import heads as heads_lib  # pylint: disable=g-import-not-at-top
from freqprior.models.layers import HIGHEST  # pylint: disable=g-import-not-at-top

CHANNELS, FEATURES, HEAD_WIDTH, MIXTURES = 3, 160, 160, 10  # configs/cifar100.py
THRESHOLD_BPD = 1e-3
MODES = ('bf16', 'bf16x3', 'tf32')
PRODUCTS = {'categorical': ('features', 'hidden', 'out'), 'logistic_mixture': ('hidden', 'out')}


def to_bf16(x):
  return x.astype(jnp.bfloat16).astype(jnp.float32)


def to_tf32(x):
  """float32 rounded to nearest (ties to even) at TF32's 10 explicit mantissa bits."""
  bits = jax.lax.bitcast_convert_type(x, jnp.uint32)
  bits = (bits + jnp.uint32(0xFFF) + ((bits >> 13) & 1)) & jnp.uint32(0xFFFFE000)
  return jax.lax.bitcast_convert_type(bits, jnp.float32)


def rounded_product(mode: str, contract, a, b):
  """contract(a, b) (bilinear) as an accelerator computes it at `mode`, float32 accumulation."""
  if mode == 'f32':
    return contract(a, b)
  if mode == 'bf16':
    return contract(to_bf16(a), to_bf16(b))
  if mode == 'tf32':
    return contract(to_tf32(a), to_tf32(b))
  a_hi, b_hi = to_bf16(a), to_bf16(b)
  a_lo, b_lo = to_bf16(a - a_hi), to_bf16(b - b_hi)
  return contract(a_hi, b_hi) + (contract(a_hi, b_lo) + contract(a_lo, b_hi))


def make_head(kind: str):
  if kind == 'categorical':
    return heads_lib.CategoricalHead(CHANNELS, HEAD_WIDTH)
  return heads_lib.LogisticMixtureHead(CHANNELS, MIXTURES, HEAD_WIDTH)


def log_probs(kind: str, params, features_N11F, pixels_N11C, modes: tuple = ()):
  """Per-subpixel log-likelihoods [N, C], with the products in `modes` ((product, mode) pairs)
  rounded; the rest exact."""
  mode_of = dict(modes).get
  dense = lambda x, kernel: jnp.einsum('...d,df->...f', x, kernel, precision=HIGHEST)
  per_channel = lambda x, kernel: jnp.einsum('...cd,cdf->...cf', x, kernel, precision=HIGHEST)

  def interceptor(next_fun, args, kwargs, context):
    if not (isinstance(context.module, nn.Dense) and context.method_name == '__call__'
            and mode_of(context.module.name)):
      return next_fun(*args, **kwargs)
    p = context.module.variables['params']
    return rounded_product(mode_of(context.module.name), dense, args[0], p['kernel']) + p['bias']

  exact_per_channel = heads_lib._per_channel_dense  # pylint: disable=protected-access

  def rounded_per_channel(module, name, x_BHWCD, features, matmul_precision):
    out = exact_per_channel(module, name, x_BHWCD, features, matmul_precision)
    if not mode_of(name):
      return out
    kernel, bias = module.get_variable('params', f'{name}_kernel'), module.get_variable(
        'params', f'{name}_bias')
    return rounded_product(mode_of(name), per_channel, x_BHWCD, kernel) + bias

  heads_lib._per_channel_dense = rounded_per_channel  # pylint: disable=protected-access
  try:
    with nn.intercept_methods(interceptor):
      logp = make_head(kind).apply({'params': params}, features_N11F, pixels_N11C)
  finally:
    heads_lib._per_channel_dense = exact_per_channel  # pylint: disable=protected-access
  return logp[:, 0, 0]


def synthetic(key, n: int):
  """(features [N, 1, 1, F] like the backbone's elu(LayerNorm) output, pixels [N, 1, 1, C]):
  pixels a fixed function of the features (channels correlated as in RGB) plus logistic noise
  whose scale, 0.3 to 8 levels, the features also set (flat and textured regions)."""
  k_features, k_noise = jax.random.split(key)
  features_NF = nn.elu(jax.random.normal(k_features, (n, FEATURES)))
  proj_FZ = jax.random.normal(jax.random.key(123), (FEATURES, CHANNELS + 1)) / math.sqrt(FEATURES)
  z_NZ = features_NF @ proj_FZ * 2.0
  base_N = 127.5 + 110.0 * jnp.tanh(z_NZ[:, 0])
  mean_NC = base_N[:, None] + jnp.concatenate(
      [jnp.zeros((n, 1)), 25.0 * jnp.tanh(z_NZ[:, 1:CHANNELS])], axis=1)
  log_scale_N = jnp.log(0.3) + (jnp.log(8.0) - jnp.log(0.3)) * jax.nn.sigmoid(2.0 * z_NZ[:, -1])
  noise_NC = jax.random.logistic(k_noise, (n, CHANNELS))
  pixels_NC = jnp.clip(jnp.round(mean_NC + jnp.exp(log_scale_N)[:, None] * noise_NC), 0, 255)
  return features_NF[:, None, None], pixels_NC.astype(jnp.uint8)[:, None, None]


def fit(kind: str, params, steps: int, batch: int):
  """`steps` of Adam on fresh synthetic batches; -> (params, training NLL in bits/dim)."""
  optimizer = optax.adam(2e-3)

  @jax.jit
  def step(params, opt_state, key):
    loss_fn = lambda p: -jnp.mean(log_probs(kind, p, *synthetic(key, batch)))
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state, loss

  opt_state, loss = optimizer.init(params), jnp.nan
  for i in range(steps):
    params, opt_state, loss = step(params, opt_state, jax.random.key(1000 + i))
  return params, float(loss) / math.log(2)


def statistics(err_NC) -> dict:
  err_NC = np.asarray(err_NC, np.float64)
  return {'max_abs_nats': float(np.max(np.abs(err_NC))),
          'mean_abs_nats': float(np.mean(np.abs(err_NC))),
          'max_abs_bpd': float(np.max(np.abs(err_NC))) / math.log(2),
          'mean_abs_bpd': float(np.mean(np.abs(err_NC))) / math.log(2),
          'mean_shift_bpd': float(abs(np.mean(err_NC))) / math.log(2)}


def errors(kind: str, params, features, pixels) -> dict:
  """{product: {mode: error statistics}} against the float32 log-likelihoods ('all': every
  product at that mode), and 'as_shipped': {backend: statistics} with every product at the
  precision heads.PRECISION gives it there."""
  evaluate = jax.jit(functools.partial(log_probs, kind), static_argnums=3)
  exact_NC = evaluate(params, features, pixels, ())
  out = {'nll_bpd': float(-jnp.mean(exact_NC)) / math.log(2)}
  for product in (*PRODUCTS[kind], 'all'):
    names = PRODUCTS[kind] if product == 'all' else (product,)
    modes = lambda mode, names=names: tuple((name, mode) for name in names)
    sanity_NC = evaluate(params, features, pixels, modes('f32'))  # the replacement, unrounded
    assert float(jnp.max(jnp.abs(sanity_NC - exact_NC))) < 1e-5, (kind, product)
    out[product] = {mode: statistics(evaluate(params, features, pixels, modes(mode)) - exact_NC)
                    for mode in MODES}
  out['as_shipped'] = {
      backend: statistics(evaluate(params, features, pixels, shipped_modes(kind, backend))
                          - exact_NC) for backend in EMULATED}
  return out


# How each backend runs a float32 product at each precision.
EMULATED = {'tpu': {'DEFAULT': 'bf16', 'HIGH': 'bf16x3', 'HIGHEST': 'f32'},
            'gpu': {'DEFAULT': 'tf32', 'HIGH': 'tf32', 'HIGHEST': 'f32'}}


def shipped_modes(kind: str, backend: str) -> tuple:
  """((product, mode), ...) of the heads' products at heads.PRECISION on `backend`."""
  return tuple((name, EMULATED[backend][heads_lib.precision(f'{kind}/{name}', backend).name])
               for name in PRODUCTS[kind])


def decide(kind: str, settings: dict) -> dict:
  """{product: {backend: precision}}: the cheapest whose mean absolute error stays under
  THRESHOLD_BPD in every setting."""
  ok = lambda product, mode: max(s[kind][product][mode]['mean_abs_bpd']
                                 for s in settings.values()) < THRESHOLD_BPD
  tpu = lambda p: 'DEFAULT' if ok(p, 'bf16') else 'HIGH' if ok(p, 'bf16x3') else 'HIGHEST'
  return {p: {'tpu': tpu(p), 'gpu': 'HIGH' if ok(p, 'tf32') else 'HIGHEST'}
          for p in (*PRODUCTS[kind], 'all')}


def line(e: dict) -> str:
  return (f'max {e["max_abs_nats"]:.2e} nats  mean {e["mean_abs_nats"]:.2e} nats = '
          f'{e["mean_abs_bpd"]:.2e} bits/dim  (mean shift {e["mean_shift_bpd"]:.1e} bits/dim)')


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--steps', type=int, default=3000, help='Adam steps of the trained setting')
  parser.add_argument('--batch', type=int, default=2048, help='positions per training step')
  parser.add_argument('--positions', type=int, default=8192, help='evaluated positions')
  args = parser.parse_args()
  jax.config.update('jax_platforms', 'cpu')
  features, pixels = synthetic(jax.random.key(0), args.positions)
  settings = {'init': {}, 'trained': {}}
  for kind in PRODUCTS:
    start = time.time()
    params = make_head(kind).init(jax.random.key(1), features[:1], pixels[:1])['params']
    settings['init'][kind] = errors(kind, params, features, pixels)
    params, train_bpd = fit(kind, params, args.steps, args.batch)
    settings['trained'][kind] = errors(kind, params, features, pixels)
    settings['trained'][kind]['train_nll_bpd'] = train_bpd
    for name, s in settings.items():
      print(f'{kind} {name}: NLL {s[kind]["nll_bpd"]:.3f} bits/dim', flush=True)
      for product in (*PRODUCTS[kind], 'all'):
        for mode in MODES:
          e = s[kind][product][mode]
          print(f'  {product:8s} {mode:6s} {line(e)}', flush=True)
      for backend, e in s[kind]['as_shipped'].items():
        print(f'  as shipped on {backend}: {line(e)}', flush=True)
    print(f'{kind}: {time.time() - start:.0f} s', flush=True)
  decisions = {kind: decide(kind, settings) for kind in PRODUCTS}
  print(json.dumps({'threshold_bpd': THRESHOLD_BPD, 'decisions': decisions,
                    'settings': settings, 'steps': args.steps, 'positions': args.positions}))


if __name__ == '__main__':
  main()
