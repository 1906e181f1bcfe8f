"""The vertical prior filter's row DFT, jnp.fft against the matmul DFT: time and accuracy.

  python benchmarks/prior_dft.py [--sizes=32,64] [--batch=8] [--rounds=7] [--no_accuracy]

Time: jit(value_and_grad) of the vertical causal filter (its taps' spectrum included) on random
[batch, S, S, prior_channels] inputs with configs/cifar100.py's prior_channels, for each row
DFT, alternating between them round by round after compilation. Per size: median wall seconds,
least process CPU seconds (steadier than wall time on a shared host) and fft / matmul ratios.

Accuracy: the filter's largest error over the largest output, against a float64 numpy
reference (a plain 2H x 2W FFT convolution), at 32 x 32 with 8 channels: the computed float32
paths, and the matmul path with its products' inputs rounded as each matmul precision does
(bf16: TPU DEFAULT; bf16x3: TPU HIGH; bf16x6: TPU HIGHEST; tf32: GPU DEFAULT and HIGH), in
numpy. The last line is JSON.
"""
import argparse
import contextlib
import json
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs import cifar100  # pylint: disable=g-import-not-at-top
from freqprior.models import prior  # pylint: disable=g-import-not-at-top

METHODS = ('fft', 'matmul')


def inputs(batch: int, size: int, channels: int, seed: int = 0):
  """Unit-variance inputs (what the prior's LayerNorm gives) and taps at CausalTaps' init."""
  rng = np.random.default_rng(seed)
  x_BHWC = rng.standard_normal((batch, size, size, channels)).astype(np.float32)
  taps_HXC = rng.standard_normal((size, 2 * size - 1, channels)).astype(np.float32)
  return x_BHWC, taps_HXC / np.sqrt(size * (2 * size - 1)).astype(np.float32)


def timings(sizes, batch: int, channels: int, rounds: int, methods=METHODS) -> dict:
  """{size: {method_s, method_cpu_s, fft_over_matmul, ...}} for value_and_grad of the filter."""
  result = {}
  for size in sizes:
    x_BHWC, taps_HXC = inputs(batch, size, channels)
    g_BHWC = jnp.asarray(inputs(batch, size, channels, seed=1)[0])
    x_BHWC, taps_HXC = jnp.asarray(x_BHWC), jnp.asarray(taps_HXC)
    fns = {m: jax.jit(jax.value_and_grad(
        lambda x, t, m=m: jnp.sum(prior.causal_filter(x, t, 'vertical', m) * g_BHWC),
        argnums=(0, 1))) for m in methods}
    for fn in fns.values():
      jax.block_until_ready(fn(x_BHWC, taps_HXC))  # compile
    wall, cpu = {m: [] for m in methods}, {m: [] for m in methods}
    for _ in range(rounds):
      for m, fn in fns.items():
        start, start_cpu = time.perf_counter(), time.process_time()
        jax.block_until_ready(fn(x_BHWC, taps_HXC))
        wall[m].append(time.perf_counter() - start)
        cpu[m].append(time.process_time() - start_cpu)
    entry = {}
    for m in methods:
      entry[f'{m}_s'] = statistics.median(wall[m])
      entry[f'{m}_cpu_s'] = min(cpu[m])
    if set(methods) == set(METHODS):
      entry['fft_over_matmul'] = entry['fft_s'] / entry['matmul_s']
      entry['fft_over_matmul_cpu'] = entry['fft_cpu_s'] / entry['matmul_cpu_s']
    result[str(size)] = entry
    print(size, json.dumps(entry), file=sys.stderr, flush=True)
  return result


def reference(x_BHWC: np.ndarray, taps_HXC: np.ndarray) -> np.ndarray:
  """float64 causal filter by one zero-padded 2H x 2W FFT (no wrap-around)."""
  _, height, width, _ = x_BHWC.shape
  kernel = np.zeros((2 * height, 2 * width, x_BHWC.shape[-1]))
  kernel[:height, :width] = taps_HXC[:, width - 1:]  # dx >= 0
  kernel[:height, width + 1:] = taps_HXC[:, :width - 1]  # dx < 0, at dx mod 2W
  spectrum = np.fft.rfft2(x_BHWC.astype(np.float64), s=(2 * height, 2 * width), axes=(1, 2))
  y = np.fft.irfft2(spectrum * np.fft.rfft2(kernel, axes=(0, 1)), s=(2 * height, 2 * width),
                    axes=(1, 2))
  return y[:, :height, :width]


def filter_error(method: str, size: int = 32, batch: int = 2, channels: int = 8) -> float:
  """max |y - y_float64| / max |y_float64| of the filter as this backend computes it."""
  x_BHWC, taps_HXC = inputs(batch, size, channels)
  want = reference(x_BHWC, taps_HXC)
  got = np.asarray(prior.causal_filter(x_BHWC, taps_HXC, 'vertical', method), np.float64)
  return float(np.abs(got - want).max() / np.abs(want).max())


def _bf16(a: np.ndarray) -> np.ndarray:
  return a.astype(ml_dtypes.bfloat16).astype(np.float32)


def _tf32(a: np.ndarray) -> np.ndarray:
  """Round to 10 explicit mantissa bits, to nearest even."""
  bits = a.astype(np.float32).view(np.uint32)
  bits = (bits + np.uint32(0x0FFF) + ((bits >> 13) & np.uint32(1))) & np.uint32(0xFFFFE000)
  return bits.view(np.float32)


def _split(a: np.ndarray, parts: int, rounding) -> list:
  """a ~ sum of `parts` terms, each rounded, each the rounding of what the others leave."""
  out, rest = [], a.astype(np.float32)
  for _ in range(parts):
    out.append(rounding(rest))
    rest = rest - out[-1]
  return out


# Which (lhs term, rhs term) products each precision sums (term 0: the leading one).
PRODUCTS = {'bf16': (1, _bf16, [(0, 0)]),
            'bf16x3': (2, _bf16, [(0, 0), (0, 1), (1, 0)]),
            'bf16x6': (3, _bf16, [(0, 0), (0, 1), (1, 0), (0, 2), (1, 1), (2, 0)]),
            'tf32': (1, _tf32, [(0, 0)])}


def emulated_einsum(spec: str, a: np.ndarray, b: np.ndarray, mode: str) -> np.ndarray:
  """einsum with the inputs' rounding of `mode`, accumulated in float64, rounded to float32."""
  parts, rounding, pairs = PRODUCTS[mode]
  a_terms, b_terms = _split(a, parts, rounding), _split(b, parts, rounding)
  total = sum(np.einsum(spec, a_terms[i].astype(np.float64), b_terms[j].astype(np.float64))
              for i, j in pairs)
  return total.astype(np.float32)


def emulated_filter(x_BHWC: np.ndarray, taps_HXC: np.ndarray, mode: str) -> np.ndarray:
  """The matmul path of `prior.causal_filter` (vertical), every product at `mode`."""
  _, height, width, channels = x_BHWC.shape
  batch = x_BHWC.shape[0]
  s_KCAY = emulated_einsum('yxc,xpk->kcpy', taps_HXC, prior.taps_dft(width), mode)
  z_KCRPB = emulated_einsum('bhwc,wpk->kchpb', x_BHWC, prior.forward_dft(width), mode)
  t_KCXR = np.asarray(prior.causal_toeplitz(jnp.asarray(s_KCAY))).reshape(
      width, channels, 2 * height, height)  # exact copies and zeros
  m_KCXY = emulated_einsum('kcir,kcrx->kcix', t_KCXR,
                           z_KCRPB.reshape(width, channels, height, 2 * batch), mode)
  return emulated_einsum('kcahpb,apkn->bhnc',
                         m_KCXY.reshape(width, channels, 2, height, 2, batch),
                         prior.products_idft(width), mode)


def accuracy(size: int = 32, batch: int = 2, channels: int = 8) -> dict:
  """max |y - y_float64| / max |y_float64| of each path and emulated precision."""
  x_BHWC, taps_HXC = inputs(batch, size, channels)
  want = reference(x_BHWC, taps_HXC)
  error = lambda got: float(np.abs(got.astype(np.float64) - want).max() / np.abs(want).max())
  result = {f'{m}_{jax.default_backend()}': filter_error(m, size, batch, channels)
            for m in METHODS}
  for mode in PRODUCTS:
    result[f'matmul_{mode}_emulated'] = error(emulated_filter(x_BHWC, taps_HXC, mode))
  return result


# What a device run compares for the matmul DFT: jax.lax.Precision levels and dot algorithms.
PRECISIONS = ('HIGHEST', 'HIGH', 'DEFAULT', 'BF16_BF16_F32_X3', 'TF32_TF32_F32_X3')


@contextlib.contextmanager
def backend_precision(name: str):
  """The vertical filter's matmuls on this backend at `name` (a jax.lax.Precision level or a
  jax.lax.DotAlgorithmPreset), for the duration."""
  value = (getattr(jax.lax.Precision, name) if name in jax.lax.Precision.__members__
           else jax.lax.DotAlgorithmPreset[name])
  saved = dict(prior.PRECISION)
  prior.PRECISION[jax.default_backend()] = value
  try:
    yield
  finally:
    prior.PRECISION.clear()
    prior.PRECISION.update(saved)


def precision_sweep(size: int, batch: int, channels: int, rounds: int,
                    names=PRECISIONS) -> dict:
  """{precision: {matmul_s, error}} for the matmul DFT, or {failed: why} where the backend
  refuses one."""
  result = {}
  for name in names:
    try:
      with backend_precision(name):
        seconds = timings([size], batch, channels, rounds, ('matmul',))[str(size)]['matmul_s']
        result[name] = {'matmul_s': seconds, 'error': filter_error('matmul', min(size, 32))}
    except Exception as e:  # pylint: disable=broad-except
      result[name] = {'failed': f'{type(e).__name__}: {str(e)[:200]}'}
  return result


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--sizes', default='32,64')
  parser.add_argument('--batch', type=int, default=8)
  parser.add_argument('--rounds', type=int, default=7)
  parser.add_argument('--no_accuracy', action='store_true')
  args = parser.parse_args()
  channels = cifar100.get_config().model.prior_channels
  sizes = [int(s) for s in args.sizes.split(',')]
  result = {'device': jax.devices()[0].device_kind, 'backend': jax.default_backend(),
            'row_dft': {str(s): prior.row_dft_method(s) for s in sizes},
            'precision': str(prior.precision()), 'batch': args.batch, 'channels': channels}
  result['timings'] = timings(sizes, args.batch, channels, args.rounds)
  if not args.no_accuracy:
    result['accuracy'] = accuracy()
    print('accuracy', json.dumps(result['accuracy']), file=sys.stderr, flush=True)
  print(json.dumps(result))


if __name__ == '__main__':
  main()
