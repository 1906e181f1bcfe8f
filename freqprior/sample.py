"""Sampling entry points: `generate` (params -> images), `sample_checkpoint` (restore + sample,
for notebooks) and `sample_main` (`python main.py --mode=sample`).

  python main.py --mode=sample --config=configs/digits.py --workdir=DIR \
      [--config.sample.num_images=16 --config.sample.class_label=3 --config.sample.method=naive]

restores the best checkpoint of DIR (or `config.sample.step`) with its EMA parameters onto this
machine's devices and writes DIR/samples/<step>/grid.png plus one PNG per image. Every input is
checked before anything is restored or written.
"""
import functools
import sys
from typing import Callable, Optional

from etils import epath
import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

from freqprior import mesh as mesh_lib
from freqprior import models
from freqprior.sampling import SAMPLERS

GRID_MIN_SIZE = 256  # grid.png is scaled up (nearest neighbour) to at least this many pixels


# ------------------------------------------------------------------------------------------------
# Input checks.
# ------------------------------------------------------------------------------------------------
def check_options(config: ml_collections.ConfigDict, method: Optional[str] = None,
                  temperature: Optional[float] = None) -> tuple[str, float]:
  """(method, temperature), defaulting to config.sample; ValueError for bad values."""
  method = config.sample.method if method is None else method
  temperature = config.sample.temperature if temperature is None else temperature
  if method not in SAMPLERS:
    raise ValueError(f'config.sample.method must be one of {sorted(SAMPLERS)}, got {method!r}')
  if not np.isfinite(temperature) or temperature < 0:
    raise ValueError(f'config.sample.temperature must be >= 0 (0: greedy), got {temperature}')
  if config.sample.batch_size <= 0:
    raise ValueError(f'config.sample.batch_size must be positive, got {config.sample.batch_size}')
  return method, float(temperature)


def parse_labels(config: ml_collections.ConfigDict) -> Optional[np.ndarray]:
  """config.sample.class_label ('3', or '0,1,2' cycled over config.sample.num_images) as int32
  [N]; '' or 'none' gives None (the null label of a conditional model)."""
  num_images = config.sample.num_images
  if num_images <= 0:
    raise ValueError(f'config.sample.num_images must be positive, got {num_images}')
  spec = str(config.sample.class_label).strip()
  if spec.lower() in ('', 'none'):
    return None
  if not config.model.class_conditional:
    raise ValueError(f'config.sample.class_label={spec!r} was given to an unconditional model '
                     "(config.model.class_conditional is False); pass --config.sample.class_label=''")
  try:
    labels = [int(s) for s in spec.split(',')]
  except ValueError:
    raise ValueError(f"config.sample.class_label must be one label or a comma list like '0,1,2'; "
                     f'got {spec!r}') from None
  labels_N = np.resize(np.asarray(labels, np.int32), num_images)
  models.check_labels(labels_N, num_images, config)
  return labels_N


# ------------------------------------------------------------------------------------------------
# Sampling from parameters.
# ------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=16)
def _compiled(frozen: ml_collections.FrozenConfigDict, method: str,
              on_row: Optional[Callable]) -> Callable:
  """jit((params, keys_B, labels_B, temperature) -> uint8 [B, H, W, C]) for one model config."""
  model = models.build_model(frozen)
  size, channels = frozen.dataset.image_size, frozen.dataset.channels
  sampler = functools.partial(SAMPLERS[method], image_shape=(size, size, channels),
                              on_row=on_row)

  def run(params, keys_B, labels_B, temperature):
    return model.apply({'params': params}, labels_B, keys_B, temperature, method=sampler)

  return jax.jit(run)


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
             on_row: Optional[Callable[[int], None]] = None) -> np.ndarray:
  """Draws uint8 images [N, H, W, C] from `params` (the EMA ones, for a trained run).

  labels: int32 [N], or None (N = config.sample.num_images; the null label if the model is
  conditional). Image n uses the key fold_in(rng, n), so it does not depend on N or on
  config.sample.batch_size. method / temperature default to config.sample. `on_row(i)` is
  called on the host after row i of each batch (progress).
  """
  method, temperature = check_options(config, method, temperature)
  num_images = config.sample.num_images if labels is None else len(labels)
  if num_images <= 0:
    raise ValueError(f'generate needs at least one image, got {num_images}')
  models.check_labels(labels, num_images, config)
  if not jnp.issubdtype(rng.dtype, jax.dtypes.prng_key):
    rng = jax.random.wrap_key_data(rng)
  sampler = _compiled(ml_collections.FrozenConfigDict(
      {'model': config.model, 'dataset': config.dataset}), method, on_row)
  sharding, divisor = _batch_layout(params)
  batch = -(-min(config.sample.batch_size, num_images) // divisor) * divisor
  chunks = []
  for start in range(0, num_images, batch):
    index_B = np.arange(start, start + batch)  # past N: padding, dropped below
    keys_B = jax.vmap(jax.random.fold_in, (None, 0))(rng, index_B)
    labels_B = None if labels is None else np.resize(np.asarray(labels, np.int32)[start:], batch)
    if sharding is not None:
      keys_B, labels_B = jax.device_put((keys_B, labels_B), sharding)
    chunks.append(_to_host(sampler(params, keys_B, labels_B, jnp.float32(temperature))))
  return np.concatenate(chunks)[:num_images]


# ------------------------------------------------------------------------------------------------
# Restoring a run: the notebook function and --mode=sample.
# ------------------------------------------------------------------------------------------------
def sampling_mesh(config: ml_collections.ConfigDict) -> jax.sharding.Mesh:
  """All of this machine's (or job's) devices on the 'data' axis, whatever trained the model."""
  axes = tuple(config.mesh.axes)
  if 'data' not in axes:
    raise ValueError(f"config.mesh.axes={axes} must include 'data'")
  shape = tuple(jax.device_count() if a == 'data' else 1 for a in axes)
  return jax.make_mesh(shape, axes, axis_types=(jax.sharding.AxisType.Auto,) * len(axes))


def restore_params(config: ml_collections.ConfigDict, workdir: str, step: int = -1):
  """(EMA parameters replicated over `sampling_mesh`, step) of the checkpoint `step` in
  DIR/checkpoints (-1: the best one by validation bits/dim, else the latest)."""
  from freqprior import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
  from freqprior import state as state_lib  # pylint: disable=g-import-not-at-top
  model = models.build_model(config)
  abstract = state_lib.abstract_state(model, config, state_lib.make_optimizer(config))
  replicated = mesh_lib.replicated(sampling_mesh(config))
  shardings = jax.tree.map(lambda _: replicated, abstract)
  checkpoints = checkpoint_lib.Checkpoints(workdir, config, read_only=True)
  try:
    step = checkpoints.resolve_step(step, 'best')
    state = checkpoints.restore(step, abstract, shardings)
  finally:
    checkpoints.close()
  return state.ema_params, step


def sample_checkpoint(config: ml_collections.ConfigDict, workdir: str,
                      on_row: Optional[Callable[[int], None]] = None) -> tuple[np.ndarray, int]:
  """Restore + sample for notebooks: (uint8 [N, H, W, C], step), all options from
  config.sample (num_images, class_label, temperature, seed, method, step, batch_size)."""
  method, temperature = check_options(config)
  labels = parse_labels(config)
  params, step = restore_params(config, workdir, config.sample.step)
  images = generate(params, config, labels, jax.random.key(config.sample.seed),
                    method=method, temperature=temperature, on_row=on_row)
  return images, step


class RowProgress:
  """A one-line text progress bar of image rows done, over all batches."""

  def __init__(self, total_rows: int, height: int, stream=sys.stderr):
    self.total, self.height, self.stream = total_rows, height, stream
    self.done, self.batch, self.last_row = 0, 0, -1

  def __call__(self, row) -> None:
    row = int(row)
    if row <= self.last_row and row != 0:
      return  # the same row reported by another device
    if row == 0 and self.last_row == self.height - 1:
      self.batch, self.last_row = self.batch + 1, -1
    if row > self.last_row:
      self.last_row = row
      self.done = self.batch * self.height + row + 1
      filled = 30 * self.done // self.total
      self.stream.write(f'\rsampling rows {self.done}/{self.total} '
                        f'[{"#" * filled}{"." * (30 - filled)}]')
      if self.done == self.total:
        self.stream.write('\n')
      self.stream.flush()


def write_images(images_NHWC: np.ndarray, directory: epath.Path, columns: int) -> None:
  """directory/grid.png (scaled up to >= GRID_MIN_SIZE px) and directory/<n>.png per image."""
  from freqprior.train import image_grid  # pylint: disable=g-import-not-at-top
  to_pil = lambda a: Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a)
  directory.mkdir(parents=True, exist_ok=True)
  for n, image in enumerate(images_NHWC):
    with (directory / f'{n:04d}.png').open('wb') as f:
      to_pil(image).save(f, format='PNG')
  grid = image_grid(images_NHWC, columns)
  scale = max(1, GRID_MIN_SIZE // max(grid.shape[:2]))
  with (directory / 'grid.png').open('wb') as f:
    to_pil(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST).save(
        f, format='PNG')


def sample_main(config: ml_collections.ConfigDict, workdir: str) -> epath.Path:
  """--mode=sample: restore, sample with a progress bar, write DIR/samples/<step>/; returns it."""
  check_options(config)
  parse_labels(config)
  num_images, batch = config.sample.num_images, config.sample.batch_size
  height = config.dataset.image_size
  progress = RowProgress(-(-num_images // batch) * height, height)
  images, step = sample_checkpoint(config, workdir, on_row=progress)
  directory = epath.Path(workdir) / 'samples' / str(step)
  if jax.process_index() == 0:
    labels = parse_labels(config)
    columns = len(set(labels.tolist())) if labels is not None else 0
    columns = columns if 1 < columns <= 16 else int(np.ceil(np.sqrt(num_images)))
    write_images(images, directory, columns)
    print(f'wrote {num_images} samples of step {step} to {directory}', flush=True)
  return directory
