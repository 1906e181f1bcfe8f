"""Output heads: exact per-subpixel log-likelihoods, autoregressive over channels in a pixel.

The network's features at a pixel see only earlier pixels; each head adds the dependence on the
pixel's earlier channels (R -> G -> B) itself, so subpixel c never sees channels >= c.
Everything here runs in float32; each product at its PRECISION on the backend.
"""
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from freqprior.models.layers import HIGHEST

NUM_VALUES = 256
HIGH = jax.lax.Precision.HIGH

# Matmul precision of each product per backend; others (CPU: float32 at any precision) HIGHEST.
# Each keeps the mean |change| of the per-subpixel log-likelihood against float32 under 1e-3
# bits/dim; measured by benchmarks/heads_precision.py (cifar100-sized heads, at init and fitted;
# worst of both, bits/dim) for a TPU's DEFAULT (one bf16 pass) and HIGH (bf16x3), and TF32 (what
# GPUs run at DEFAULT and at HIGH).
PRECISION = {
    'categorical/features': {'tpu': HIGH},  # bf16 1.3e-2, bf16x3 2.2e-5, TF32 1.6e-3
    'categorical/hidden': {'tpu': HIGH, 'gpu': HIGH},  # bf16 4.0e-3, bf16x3 1.0e-5, TF32 5.0e-4
    'categorical/out': {'tpu': HIGH},  # bf16 1.5e-2, bf16x3 3.3e-5, TF32 1.9e-3
    'logistic_mixture/hidden': {'tpu': HIGH},  # bf16 1.7e-2, bf16x3 3.3e-5, TF32 2.2e-3
    'logistic_mixture/out': {'tpu': HIGH},  # bf16 2.6e-2, bf16x3 4.4e-5, TF32 3.3e-3
}


def precision(product: str, backend: Optional[str] = None) -> jax.lax.Precision:
  """The matmul precision of a head's product ('categorical/out', ...) on `backend` (default:
  JAX's default backend)."""
  return PRECISION[product].get(backend or jax.default_backend(), HIGHEST)


def to_unit_range(images: jnp.ndarray) -> jnp.ndarray:
  """uint8 0..255 -> float32 -1..1."""
  return images.astype(jnp.float32) / 127.5 - 1.0


def exclusive_channel_sum(e_BHWCD: jnp.ndarray) -> jnp.ndarray:
  """out[..., c, :] = sum of e[..., c', :] for c' < c (exact: channel c never enters it)."""
  shifted = jnp.pad(e_BHWCD, ((0, 0),) * 3 + ((1, 0), (0, 0)))[..., :-1, :]
  return jnp.cumsum(shifted, axis=-2)


class CategoricalHead(nn.Module):
  """256-way softmax per subpixel; logits for channel c use the features and channels < c."""
  channels: int
  width: int

  @nn.compact
  def logits(self, features_BHWF: jnp.ndarray, images_BHWC: jnp.ndarray) -> jnp.ndarray:
    """-> logits_BHWCK (K = 256), float32."""
    c, d = self.channels, self.width
    features_BHWF = features_BHWF.astype(jnp.float32)
    table_CKD = self.param('embed', nn.initializers.normal(1.0), (c, NUM_VALUES, d))
    e_BHWCD = table_CKD[jnp.arange(c), images_BHWC.astype(jnp.int32)]
    dense = nn.Dense(d, precision=precision('categorical/features'), name='features')
    z_BHWCD = (dense(features_BHWF)[..., None, :]
               + exclusive_channel_sum(e_BHWCD)
               + self.param('channel_bias', nn.initializers.normal(1.0), (c, d)))
    hidden_BHWCD = nn.elu(_per_channel_dense(self, 'hidden', nn.elu(z_BHWCD), d,
                                             precision('categorical/hidden')))
    return _per_channel_dense(self, 'out', hidden_BHWCD, NUM_VALUES, precision('categorical/out'))

  def __call__(self, features_BHWF, images_BHWC):
    """-> log p(x_c | x_<c, earlier pixels), [B, H, W, C] float32."""
    logp_BHWCK = jax.nn.log_softmax(self.logits(features_BHWF, images_BHWC))
    return jnp.take_along_axis(logp_BHWCK, images_BHWC.astype(jnp.int32)[..., None], -1)[..., 0]


def _per_channel_dense(module, name, x_BHWCD, features, matmul_precision):
  """A separate dense layer for each target channel."""
  c, d = x_BHWCD.shape[-2:]
  kernel = module.param(f'{name}_kernel', nn.initializers.lecun_normal(batch_axis=(0,)),
                        (c, d, features))
  bias = module.param(f'{name}_bias', nn.initializers.zeros, (c, features))
  return jnp.einsum('...cd,cdf->...cf', x_BHWCD, kernel, precision=matmul_precision) + bias


def log_one_minus_exp(log_w):
  """log(1 - exp(-w)) from log w, for any w > 0, also where w under- or overflows float32."""
  small = log_w < -7.0  # w < 1e-3: log(1 - e^-w) = log w - w/2 + w^2/24 ..., w^2/24 under an ulp
  # both branches stay finite, gradients too; past w = e^5, 1 - e^-w is 1 in float32
  series = log_w - 0.5 * jnp.exp(jnp.minimum(log_w, -7.0))
  w = jnp.exp(jnp.clip(log_w, -7.0, 5.0))
  return jnp.where(small, series, jnp.log(-jnp.expm1(-w)))


def log_sigmoid_difference(a, b, log_gap):
  """log(sigmoid(a) - sigmoid(b)) for a > b, given log(a - b); finite with finite gradients for any
  a, b and gap (sigmoid(a) - sigmoid(b) = sigmoid(a) sigmoid(-b) (1 - e^(b - a)))."""
  return jax.nn.log_sigmoid(a) - jax.nn.softplus(b) + log_one_minus_exp(log_gap)


def logistic_bin_log_prob(x, mean, log_scale):
  """log P(bin of x) for a logistic discretized to 256 bins on [-1, 1], open edge bins.

  Exact bin masses at any scale: where PixelCNN++ replaces a bin whose CDF difference is below
  1e-5 by the density at its centre, this takes the log of the difference itself, and the bin
  width in units of the scale enters through its log, so huge scales stay exact too.
  """
  inv_scale = jnp.exp(-log_scale)
  half_bin = 1.0 / 255.0
  upper = (x + half_bin - mean) * inv_scale
  lower = (x - half_bin - mean) * inv_scale
  middle = log_sigmoid_difference(upper, lower, jnp.log(2 * half_bin) - log_scale)
  return jnp.where(x < -0.999, jax.nn.log_sigmoid(upper),
                   jnp.where(x > 0.999, -jax.nn.softplus(lower), middle))


def conditional_means(means, coeffs, x_BHWC):
  """Channel c's mean per component: mean_c + sum_{c'<c} coeff[c, c'] * x_c' (x in [-1, 1]).

  means [..., C, M], coeffs [..., C(C-1)/2, M] ordered (1, 0), (2, 0), (2, 1), ...; channel c
  never reads x_c or later channels.
  """
  out, k = [means[..., 0, :]], 0
  for c in range(1, means.shape[-2]):
    mean = means[..., c, :]
    for prev in range(c):
      mean = mean + coeffs[..., k, :] * x_BHWC[..., prev, None]
      k += 1
    out.append(mean)
  return jnp.stack(out, axis=-2)


def mixture_log_probs(logit_pi, means, log_scales, coeffs, images_BHWC):
  """-> log p(x_c | x_<c), [B, H, W, C], from mixture parameters (shapes as mixture_params).

  The component is shared by a pixel's channels, so channel c's mixture weights are the posterior
  given the earlier channels' bins: p(x_c | x_<c) = sum_m p(m | x_<c) P(bin of x_c | m, x_<c).
  """
  x_BHWC = to_unit_range(images_BHWC)
  means = conditional_means(means, coeffs, x_BHWC)
  lp_BHWCM = logistic_bin_log_prob(x_BHWC[..., None], means, log_scales)
  earlier_BHWCM = exclusive_channel_sum(lp_BHWCM)
  log_w_BHWCM = jax.nn.log_softmax(logit_pi[..., None, :] + earlier_BHWCM, axis=-1)
  return jax.nn.logsumexp(log_w_BHWCM + lp_BHWCM, axis=-1)


def mixture_value_log_probs(logit_pi_BM, means_BCM, log_scales_BCM, coeffs_BPM, pixel_BC,
                            channel: int) -> jnp.ndarray:
  """log p(x_c = k | x_<c) for all 256 values k, [B, 256], from one pixel's mixture parameters.

  The distribution mixture_log_probs scores (same posterior weights, same coupled means), for
  every candidate value at once; channels >= c of pixel_BC play no part.
  """
  x_BC = to_unit_range(pixel_BC)
  means_BCM = conditional_means(means_BCM, coeffs_BPM, x_BC)
  earlier_BcM = logistic_bin_log_prob(x_BC[:, :channel, None], means_BCM[:, :channel],
                                      log_scales_BCM[:, :channel])
  log_w_BM = jax.nn.log_softmax(logit_pi_BM + jnp.sum(earlier_BcM, axis=1), axis=-1)
  x_K = to_unit_range(jnp.arange(NUM_VALUES))
  lp_BKM = logistic_bin_log_prob(x_K[None, :, None], means_BCM[:, None, channel],
                                 log_scales_BCM[:, None, channel])
  return jax.nn.logsumexp(log_w_BM[:, None] + lp_BKM, axis=-1)


def draw_from_log_probs(logp_BK: jnp.ndarray, temperature: jnp.ndarray,
                        uniform_B: jnp.ndarray) -> jnp.ndarray:
  """A value [B] int32 from softmax(logp / T), its CDF inverted at uniform_B in [0, 1); T = 0:
  argmax(logp). The sampling temperature of the logistic mixture head, in every sampler."""
  positive = temperature > 0
  p_BK = jax.nn.softmax(logp_BK / jnp.where(positive, temperature, 1.0), axis=-1)
  cdf_BK = jnp.cumsum(p_BK, axis=-1)
  # scaled by the total rather than normalised, so round-off cannot push u past the last value
  drawn_B = jnp.sum(cdf_BK <= uniform_B[:, None] * cdf_BK[:, -1:], axis=-1)
  drawn_B = jnp.minimum(drawn_B, NUM_VALUES - 1)
  return jnp.where(positive, drawn_B, jnp.argmax(logp_BK, axis=-1)).astype(jnp.int32)


class LogisticMixtureHead(nn.Module):
  """Discretized mixture of logistics (PixelCNN++): channel means depend linearly on channels < c.

  Log-scales are clamped from below at -7 as in PixelCNN++ and not from above: the likelihood is
  exact and finite, with finite gradients, at any scale.
  """
  channels: int
  num_mixtures: int
  width: int
  min_log_scale: float = -7.0

  @nn.compact
  def mixture_params(self, features_BHWF: jnp.ndarray):
    """-> (mixture logits [B,H,W,M], means [..., C, M], log scales [..., C, M], coeffs [..., P, M])."""
    c, m = self.channels, self.num_mixtures
    num_coeffs = c * (c - 1) // 2
    hidden = nn.elu(nn.Dense(self.width, precision=precision('logistic_mixture/hidden'),
                             name='hidden')(nn.elu(features_BHWF.astype(jnp.float32))))
    raw = nn.Dense(m * (1 + 2 * c + num_coeffs), precision=precision('logistic_mixture/out'),
                   name='out')(hidden)
    raw = raw.reshape(*raw.shape[:-1], 1 + 2 * c + num_coeffs, m)
    logit_pi = raw[..., 0, :]
    means = raw[..., 1:1 + c, :]
    log_scales = jnp.maximum(raw[..., 1 + c:1 + 2 * c, :], self.min_log_scale)
    coeffs = jnp.tanh(raw[..., 1 + 2 * c:, :])
    return logit_pi, means, log_scales, coeffs

  def conditional_means(self, means, coeffs, x_BHWC):
    """See the module-level conditional_means."""
    return conditional_means(means, coeffs, x_BHWC)

  def __call__(self, features_BHWF, images_BHWC):
    """-> log p(x_c | x_<c, earlier pixels), [B, H, W, C] float32 (exact mixture posteriors)."""
    return mixture_log_probs(*self.mixture_params(features_BHWF), images_BHWC)
