"""The train state (step, parameters, their EMA, optimizer state) and the optimizer that updates it.

`abstract_state` gives shapes without allocating (`jax.eval_shape`); `train.Setup.init_state` then
creates the state born sharded with `jit(init_state, out_shardings=...)`."""
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from freqprior import models


@flax.struct.dataclass
class TrainState:
  step: jax.Array  # int32 scalar: number of updates applied
  params: Any
  ema_params: Any  # Polyak average of params, used for evaluation and sampling
  opt_state: Any


def learning_rate_schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
  """Linear warmup from 0 to optim.learning_rate, then cosine decay to 0 at num_train_steps."""
  o = config.optim
  warmup = min(o.warmup_steps, config.num_train_steps)
  return optax.warmup_cosine_decay_schedule(0.0, o.learning_rate, warmup,
                                            max(config.num_train_steps, warmup + 1))


def _decay_mask(params):
  """Weight decay on kernels, embeddings and prior taps (ndim >= 2), not on biases or scales."""
  return jax.tree.map(lambda p: p.ndim >= 2, params)


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  o = config.optim
  return optax.chain(
      optax.clip_by_global_norm(o.grad_clip),
      optax.adamw(learning_rate_schedule(config), weight_decay=o.weight_decay, mask=_decay_mask))


def ema_update(ema_params, params, decay: float):
  """ema <- decay * ema + (1 - decay) * params."""
  return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema_params, params)


def init_state(model, config: ml_collections.ConfigDict, tx: optax.GradientTransformation,
               rng: jax.Array) -> TrainState:
  params = models.init_params(model, config, rng)
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, ema_params=params,
                    opt_state=tx.init(params))


def abstract_state(model, config, tx) -> TrainState:
  """Shapes and dtypes of the train state, computed without allocating it."""
  return jax.eval_shape(lambda rng: init_state(model, config, tx, rng), jax.random.key(0))


