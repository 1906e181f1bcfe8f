"""Train and eval metrics as clu metric collections, and the checks run when they are read."""
import math

from clu import metrics as clu_metrics
import flax
import jax.numpy as jnp
import numpy as np


@flax.struct.dataclass
class TrainMetrics(clu_metrics.Collection):
  loss: clu_metrics.Average.from_output('loss')  # nats per subpixel
  bpd: clu_metrics.Average.from_output('bpd')
  grad_norm: clu_metrics.Average.from_output('grad_norm')
  learning_rate: clu_metrics.LastValue.from_output('learning_rate')


@flax.struct.dataclass
class MaskedAverage(clu_metrics.Metric):
  """Mean of `values` over the examples whose `mask` is set (padding counts for nothing)."""
  total: jnp.ndarray
  count: jnp.ndarray

  @classmethod
  def empty(cls):
    return cls(total=jnp.zeros((), jnp.float32), count=jnp.zeros((), jnp.int32))

  @classmethod
  def from_model_output(cls, values: jnp.ndarray, mask: jnp.ndarray, **_):
    return cls(total=jnp.sum(jnp.where(mask, values, 0.0)),
               count=jnp.sum(mask.astype(jnp.int32)))

  def merge(self, other):
    return type(self)(total=self.total + other.total, count=self.count + other.count)

  def compute(self):
    return self.total / np.maximum(self.count, 1)


def check_finite(metrics: TrainMetrics, step: int) -> None:
  """Raises FloatingPointError naming `step` if its loss or gradient norm is not finite."""
  loss = float(metrics.loss.compute())
  grad_norm = float(metrics.grad_norm.compute())
  if not (math.isfinite(loss) and math.isfinite(grad_norm)):
    raise FloatingPointError(
        f'Non-finite training loss at step {step} (loss={loss}, grad_norm={grad_norm}); '
        'stopping without saving it. Lower config.optim.learning_rate or use float32 '
        '(config.model.dtype) and resume from the last checkpoint.')
