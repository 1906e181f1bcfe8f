"""Sampling a model: from parameters (`generate`) or from a run's checkpoint (`restore_params`,
`sample_checkpoint`, the notebook function). `python main.py --mode=sample` is
freqprior/sample_main.py.

Samplers are compiled once per model config, method, key type and guidance scale, and kept: a
notebook that samples again, or a training run that draws a grid at every evaluation, reuses
them.
"""
import contextlib
import functools
import threading
from typing import Callable, Optional

import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import ml_collections
import numpy as np

from freqprior import checkpoint as checkpoint_lib
from freqprior import errors
from freqprior import mesh as mesh_lib
from freqprior import models
from freqprior import sample_options
from freqprior import state as state_lib
from freqprior.models import guidance
from freqprior.sampling import SAMPLERS


class _Sampler:
  """jit((params, key data [B, ...], labels_B, tokens_BT, temperature) -> uint8 [B, H, W, C]);
  guided sampling draws each image beside its null-input twin.

  With `report_rows`, the compiled program calls back to the host as each image row completes.
  The callback is fixed when the program is traced, while the function that wants the rows
  belongs to one `generate` call; so the callback forwards to whichever listener `listening`
  installed, and the lock keeps two calls from sharing the sampler at the same time.
  """

  def __init__(self, frozen: ml_collections.FrozenConfigDict, method: str, report_rows: bool,
               impl, guidance_scale: float):
    model = models.build_model(frozen)
    size, channels = frozen.dataset.image_size, frozen.dataset.channels
    sampler = functools.partial(SAMPLERS[method], image_shape=(size, size, channels),
                                on_row=self._report_row if report_rows else None,
                                guidance_scale=guidance_scale)

    def run(params, key_data_B, labels_B, tokens_BT, temperature):
      keys_B = jax.random.wrap_key_data(key_data_B, impl=impl)
      batch = keys_B.shape[0]
      if guidance_scale != 1.0:
        keys_B, labels_B, tokens_BT = guidance.with_unconditional_half(
            keys_B, labels_B, tokens_BT, frozen.dataset.num_classes)
      return model.apply({'params': params}, labels_B, keys_B, temperature, tokens_BT=tokens_BT,
                         method=sampler)[:batch]

    self._jitted = jax.jit(run)
    self._lock = threading.Lock()
    self._listener: Optional[Callable[[int], None]] = None

  def _report_row(self, row) -> None:
    listener = self._listener
    if listener is not None:
      listener(int(row))

  @contextlib.contextmanager
  def listening(self, listener: Optional[Callable[[int], None]]):
    """Sends row callbacks to `listener(row)` inside the block (None: drops them)."""
    with self._lock:
      self._listener = listener
      try:
        yield self
      finally:
        self._listener = None

  def __call__(self, *args):
    return self._jitted(*args)

  def lower(self, *args):
    return self._jitted.lower(*args)


@functools.lru_cache(maxsize=16)
def _compiled(frozen: ml_collections.FrozenConfigDict, method: str, report_rows: bool,
              impl, guidance_scale: float = 1.0) -> _Sampler:
  return _Sampler(frozen, method, report_rows, impl, guidance_scale)


def _batch_layout(params) -> tuple[Optional[jax.sharding.Sharding], int]:
  """Splits each batch over the mesh the parameters live on (None: let jit place it)."""
  sharding = getattr(jax.tree.leaves(params)[0], 'sharding', None)
  if isinstance(sharding, jax.sharding.NamedSharding):
    return mesh_lib.batch_sharding(sharding.mesh), sharding.mesh.size
  return None, 1


def _to_host(x: jax.Array) -> np.ndarray:
  return np.asarray(jax.device_get(x) if x.is_fully_addressable
                    else multihost_utils.process_allgather(x, tiled=True))


def generate(params, config: ml_collections.ConfigDict, labels, rng: jax.Array, *,
             method: Optional[str] = None, temperature: Optional[float] = None,
             on_row: Optional[Callable[[int, int], None]] = None,
             prompts: Optional[list[str]] = None,
             guidance_scale: Optional[float] = None) -> np.ndarray:
  """Draws uint8 images [N, H, W, C] from `params` (the EMA ones, for a trained run).

  labels: int32 [N], or None (N = config.sample.num_images; the null label if the model is
  conditional). Image n uses the key fold_in(rng, n), so it does not depend on N or on
  config.sample.batch_size. method / temperature default to config.sample. `on_row(done,
  total)` is called on the host as image rows (of all batches) complete: progress. Text models:
  `prompts` [N] (default: `sample_options.parse_prompts`); guidance_scale defaults to
  config.sample.
  """
  method, temperature = sample_options.check_options(config, method, temperature)
  num_images = config.sample.num_images if labels is None else len(labels)
  if num_images <= 0:
    raise ValueError(f'generate needs at least one image, got {num_images}')
  models.check_labels(labels, num_images, config)
  prompts = sample_options.parse_prompts(config, num_images) if prompts is None else prompts
  tokens = models.prompt_tokens(prompts, num_images, config)
  guidance_scale = sample_options.check_guidance(config, guidance_scale)
  if not jnp.issubdtype(rng.dtype, jax.dtypes.prng_key):
    rng = jax.random.wrap_key_data(rng)
  sampler = _compiled(ml_collections.FrozenConfigDict(
      {'model': config.model, 'dataset': config.dataset}), method, on_row is not None,
      jax.random.key_impl(rng), guidance_scale)
  sharding, divisor = _batch_layout(params)
  batch = -(-min(config.sample.batch_size, num_images) // divisor) * divisor
  chunks, height = [], config.dataset.image_size
  total_rows = -(-num_images // batch) * height
  first_row = 0  # rows of the earlier batches, for the progress of this one
  listener = None if on_row is None else (
      lambda row: on_row(first_row + row + 1, total_rows))
  with sampler.listening(listener):
    for start in range(0, num_images, batch):
      first_row = start // batch * height
      index_B = np.arange(start, start + batch)  # past N: padding, dropped below
      # Host arrays, identical on every process, so device_put works on any mesh.
      key_data_B = np.asarray(jax.random.key_data(
          jax.vmap(jax.random.fold_in, (None, 0))(rng, index_B)))
      labels_B = (None if labels is None
                  else np.resize(np.asarray(labels, np.int32)[start:], batch))
      tokens_BT = None if tokens is None else np.resize(tokens[start:], (batch, tokens.shape[1]))
      if sharding is not None:
        key_data_B, labels_B, tokens_BT = jax.device_put((key_data_B, labels_B, tokens_BT),
                                                         sharding)
      # Reading the batch back waits for the program, and with it for its row callbacks, so
      # `first_row` changes only after they have all run.
      chunks.append(_to_host(sampler(params, key_data_B, labels_B, tokens_BT,
                                     np.float32(temperature))))
  return np.concatenate(chunks)[:num_images]


# ------------------------------------------------------------------------------------------------
# Restoring a run.
# ------------------------------------------------------------------------------------------------
def sampling_mesh(config: ml_collections.ConfigDict) -> jax.sharding.Mesh:
  """All of this machine's (or job's) devices on the 'data' axis, whatever trained the model."""
  axes = tuple(config.mesh.axes)
  if 'data' not in axes:
    raise errors.ConfigError(f"config.mesh.axes={axes} must include 'data'")
  shape = tuple(jax.device_count() if a == 'data' else 1 for a in axes)
  return jax.make_mesh(shape, axes, axis_types=(jax.sharding.AxisType.Auto,) * len(axes))


def restore_params(config: ml_collections.ConfigDict, workdir: str, step: int = -1):
  """(EMA parameters replicated over `sampling_mesh`, step) of the checkpoint `step` in
  DIR/checkpoints (-1: the best one by validation bits/dim, else the latest)."""
  model = models.build_model(config)
  abstract = state_lib.abstract_state(model, config, state_lib.make_optimizer(config))
  replicated = mesh_lib.replicated(sampling_mesh(config))
  shardings = jax.tree.map(lambda _: replicated, abstract)
  checkpoints = checkpoint_lib.Checkpoints(workdir, config, read_only=True)
  try:
    step = checkpoints.resolve_step(step, 'best')
    trained = checkpoints.saved_signature(step)['model']
    sample_options.check_null_condition(config, trained.get('cond_dropout', 0.0),
                                        f'checkpoint {step} in {checkpoints.directory}')
    state = checkpoints.restore(step, abstract, shardings)
  finally:
    checkpoints.close()
  return state.ema_params, step


def sample_checkpoint(config: ml_collections.ConfigDict, workdir: str,
                      on_row: Optional[Callable[[int, int], None]] = None
                      ) -> tuple[np.ndarray, int]:
  """Restore + sample for notebooks: (uint8 [N, H, W, C], step), all options from
  config.sample (num_images, class_label, prompt, prompt_file, guidance_scale, temperature, seed,
  method, step, batch_size)."""
  method, temperature = sample_options.check_options(config)
  labels = sample_options.parse_labels(config)
  sample_options.parse_prompts(config, config.sample.num_images)
  sample_options.check_guidance(config)
  params, step = restore_params(config, workdir, config.sample.step)
  images = generate(params, config, labels, jax.random.key(config.sample.seed),
                    method=method, temperature=temperature, on_row=on_row)
  return images, step
