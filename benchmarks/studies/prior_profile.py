"""Where the frequency prior's time goes: its vertical filter, forward and backward, and its parts.

  python benchmarks/studies/prior_profile.py [--batch=8] [--size=32] [--channels=48] [--repeats=20]

Times (median of `repeats`, after compilation) the gradient of sum(causal_filter(x, taps)) with
respect to x and the taps, and of each of its three stages alone: the row FFTs (rfft + irfft),
the lower-triangular Toeplitz matrices built from the taps' spectra, and the per-frequency
complex matrix products. The defaults are the CPU-scaled cifar100 block (train_throughput.py).
The last line is JSON, times in milliseconds.
"""
import argparse
import json
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from freqprior.models import prior  # pylint: disable=g-import-not-at-top


def median_ms(fn, *args, repeats: int) -> float:
  jax.block_until_ready(fn(*args))  # compile
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return 1e3 * statistics.median(times)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--batch', type=int, default=8)
  parser.add_argument('--size', type=int, default=32)
  parser.add_argument('--channels', type=int, default=48)
  parser.add_argument('--repeats', type=int, default=20)
  args = parser.parse_args()
  b, s, c = args.batch, args.size, args.channels
  kx, kt = jax.random.split(jax.random.key(0))
  x_BHWC = jax.random.normal(kx, (b, s, s, c))
  taps_HXC = jax.random.normal(kt, (s, 2 * s - 1, c)) / s
  spectra_wcir = prior.toeplitz(prior.vertical_taps_f(taps_HXC, s).transpose(1, 2, 0), s)
  rows_wcrb = jnp.fft.rfft(x_BHWC.transpose(0, 3, 1, 2), n=2 * s).transpose(3, 1, 2, 0)

  def grad_of(f):
    return jax.jit(jax.grad(lambda *a: jnp.sum(jnp.abs(f(*a)) ** 2), argnums=(0, 1)))

  stages = {
      'whole_filter': (lambda x, t: prior.causal_filter(x, t, 'vertical'), x_BHWC, taps_HXC),
      'ffts': (lambda x, _: jnp.fft.irfft(jnp.fft.rfft(x, n=2 * s, axis=2), n=2 * s, axis=2),
               x_BHWC, taps_HXC),
      'toeplitz_build': (lambda _, t: prior.toeplitz(
          prior.vertical_taps_f(t, s).transpose(1, 2, 0), s), x_BHWC, taps_HXC),
      'complex_products': (lambda m, r: jnp.matmul(m, r, precision=prior.HIGHEST),
                           spectra_wcir, rows_wcrb),
  }
  result = {name: median_ms(grad_of(f), a0, a1, repeats=args.repeats)
            for name, (f, a0, a1) in stages.items()}
  print(json.dumps({'device': jax.devices()[0].device_kind, 'batch': b, 'size': s,
                    'channels': c, 'forward_backward_ms': result}))


if __name__ == '__main__':
  main()
