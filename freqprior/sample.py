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
import uuid
from typing import Callable, Optional

from etils import epath
import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

from freqprior import errors
from freqprior import mesh as mesh_lib
from freqprior import models
from freqprior.models import guidance
from freqprior.models import tokenizer
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
    raise errors.ConfigError(f'config.sample.method must be one of {sorted(SAMPLERS)}, got '
                             f'{method!r}')
  if not np.isfinite(temperature) or temperature < 0:
    raise errors.ConfigError('config.sample.temperature must be >= 0 (0: greedy), got '
                             f'{temperature}')
  if config.sample.batch_size <= 0:
    raise errors.ConfigError('config.sample.batch_size must be positive, got '
                             f'{config.sample.batch_size}')
  return method, float(temperature)


def parse_labels(config: ml_collections.ConfigDict) -> Optional[np.ndarray]:
  """config.sample.class_label ('3', or '0,1,2' cycled over config.sample.num_images) as int32
  [N]; '' or 'none' gives None (the null label of a conditional model)."""
  num_images = config.sample.num_images
  if num_images <= 0:
    raise errors.ConfigError(f'config.sample.num_images must be positive, got {num_images}')
  spec = str(config.sample.class_label).strip()
  if spec.lower() in ('', 'none'):
    return None
  if not config.model.class_conditional:
    raise errors.ConfigError(f'config.sample.class_label={spec!r} was given to an unconditional '
                             'model (config.model.class_conditional is False); pass '
                             "--config.sample.class_label=''")
  try:
    labels = [int(s) for s in spec.split(',')]
  except ValueError:
    raise errors.ConfigError('config.sample.class_label must be one label or a comma list like '
                             f"'0,1,2'; got {spec!r}") from None
  labels_N = np.resize(np.asarray(labels, np.int32), num_images)
  models.check_labels(labels_N, num_images, config)
  return labels_N


def parse_prompts(config: ml_collections.ConfigDict, num_images: int) -> Optional[list[str]]:
  """config.sample.prompt / prompt_file as `num_images` prompts (tokenizer.load_prompts; none
  set: the empty, unconditional prompt); None for a model without text conditioning."""
  if config.model.text == 'none':
    if config.sample.prompt or config.sample.prompt_file:
      raise errors.ConfigError('config.sample.prompt / prompt_file were given to a model without '
                               "text conditioning (config.model.text == 'none')")
    return None
  return tokenizer.load_prompts(config.sample.prompt, config.sample.prompt_file, num_images)


def check_guidance(config: ml_collections.ConfigDict, scale: Optional[float] = None) -> float:
  """The classifier-free guidance scale (default config.sample.guidance_scale; 1.0: off)."""
  scale = config.sample.guidance_scale if scale is None else scale
  if not np.isfinite(scale):
    raise errors.ConfigError(f'config.sample.guidance_scale must be finite, got {scale}')
  if scale != 1.0 and not config.model.class_conditional and config.model.text == 'none':
    raise errors.ConfigError(f'config.sample.guidance_scale={scale} needs a class- or '
                             'prompt-conditioned model; use 1.0')
  return float(scale)


def uses_null_condition(config: ml_collections.ConfigDict) -> bool:
  """Whether config.sample asks for the null label or prompt: guidance, or no label / prompt."""
  m, s = config.model, config.sample
  if s.guidance_scale != 1.0:
    return True
  if m.class_conditional and str(s.class_label).strip().lower() in ('', 'none'):
    return True
  if m.text != 'none':
    prompts = parse_prompts(config, s.num_images)
    return any(not p for p in prompts)
  return False


def check_null_condition(config: ml_collections.ConfigDict, trained_cond_dropout: float,
                         where: str = 'this config') -> None:
  """Guidance and unconditional samples need a model that learned the null inputs."""
  if trained_cond_dropout > 0 or not uses_null_condition(config):
    return
  if not config.model.class_conditional and config.model.text == 'none':
    return
  s = config.sample
  raise errors.ConfigError(f'config.sample (guidance_scale={s.guidance_scale}, '
                           f'class_label={s.class_label!r}, prompt={s.prompt!r}) needs the null '
                           'label / empty prompt, which a model trained with '
                           f'config.model.cond_dropout=0 ({where}) never learned: give every image '
                           'a label or prompt and guidance_scale=1, or train with '
                           '--config.model.cond_dropout=0.1')


# ------------------------------------------------------------------------------------------------
# Sampling from parameters.
# ------------------------------------------------------------------------------------------------
_row_listener: list[Callable[[int], None]] = []  # set by `generate` while it runs


def _report_row(row) -> None:
  for listener in _row_listener:
    listener(int(row))


@functools.lru_cache(maxsize=16)
def _compiled(frozen: ml_collections.FrozenConfigDict, method: str, report_rows: bool,
              impl, guidance_scale: float = 1.0) -> Callable:
  """jit((params, key data [B, ...], labels_B, tokens_BT, temperature) -> uint8 [B, H, W, C]);
  guided sampling draws each image beside its null-input twin."""
  model = models.build_model(frozen)
  size, channels = frozen.dataset.image_size, frozen.dataset.channels
  sampler = functools.partial(SAMPLERS[method], image_shape=(size, size, channels),
                              on_row=_report_row if report_rows else None,
                              guidance_scale=guidance_scale)

  def run(params, key_data_B, labels_B, tokens_BT, temperature):
    keys_B = jax.random.wrap_key_data(key_data_B, impl=impl)
    batch = keys_B.shape[0]
    if guidance_scale != 1.0:
      keys_B, labels_B, tokens_BT = guidance.with_unconditional_half(
          keys_B, labels_B, tokens_BT, frozen.dataset.num_classes)
    return model.apply({'params': params}, labels_B, keys_B, temperature, tokens_BT=tokens_BT,
                       method=sampler)[:batch]

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
             on_row: Optional[Callable[[int, int], None]] = None,
             prompts: Optional[list[str]] = None,
             guidance_scale: Optional[float] = None) -> np.ndarray:
  """Draws uint8 images [N, H, W, C] from `params` (the EMA ones, for a trained run).

  labels: int32 [N], or None (N = config.sample.num_images; the null label if the model is
  conditional). Image n uses the key fold_in(rng, n), so it does not depend on N or on
  config.sample.batch_size. method / temperature default to config.sample. `on_row(done,
  total)` is called on the host as image rows (of all batches) complete: progress. Text models:
  `prompts` [N] (default: `parse_prompts`); guidance_scale defaults to config.sample.
  """
  method, temperature = check_options(config, method, temperature)
  num_images = config.sample.num_images if labels is None else len(labels)
  if num_images <= 0:
    raise ValueError(f'generate needs at least one image, got {num_images}')
  models.check_labels(labels, num_images, config)
  prompts = parse_prompts(config, num_images) if prompts is None else prompts
  tokens = models.prompt_tokens(prompts, num_images, config)
  guidance_scale = check_guidance(config, guidance_scale)
  if not jnp.issubdtype(rng.dtype, jax.dtypes.prng_key):
    rng = jax.random.wrap_key_data(rng)
  sampler = _compiled(ml_collections.FrozenConfigDict(
      {'model': config.model, 'dataset': config.dataset}), method, on_row is not None,
      jax.random.key_impl(rng), guidance_scale)
  sharding, divisor = _batch_layout(params)
  batch = -(-min(config.sample.batch_size, num_images) // divisor) * divisor
  chunks, height = [], config.dataset.image_size
  total_rows = -(-num_images // batch) * height
  try:
    for start in range(0, num_images, batch):
      first_row = start // batch * height
      _row_listener[:] = [] if on_row is None else [
          lambda row, first_row=first_row: on_row(first_row + row + 1, total_rows)]
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
      chunks.append(_to_host(sampler(params, key_data_B, labels_B, tokens_BT,
                                     np.float32(temperature))))
  finally:
    _row_listener.clear()
  return np.concatenate(chunks)[:num_images]


# ------------------------------------------------------------------------------------------------
# Restoring a run: the notebook function and --mode=sample.
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
  from freqprior import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
  from freqprior import state as state_lib  # pylint: disable=g-import-not-at-top
  model = models.build_model(config)
  abstract = state_lib.abstract_state(model, config, state_lib.make_optimizer(config))
  replicated = mesh_lib.replicated(sampling_mesh(config))
  shardings = jax.tree.map(lambda _: replicated, abstract)
  checkpoints = checkpoint_lib.Checkpoints(workdir, config, read_only=True)
  try:
    step = checkpoints.resolve_step(step, 'best')
    trained = checkpoints.saved_signature(step)['model']
    check_null_condition(config, trained.get('cond_dropout', 0.0),
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
  method, temperature = check_options(config)
  labels = parse_labels(config)
  parse_prompts(config, config.sample.num_images)
  check_guidance(config)
  params, step = restore_params(config, workdir, config.sample.step)
  images = generate(params, config, labels, jax.random.key(config.sample.seed),
                    method=method, temperature=temperature, on_row=on_row)
  return images, step


class RowProgress:
  """A one-line text progress bar of image rows done (each device may report a row)."""

  def __init__(self, stream=sys.stderr, width: int = 30):
    self.stream, self.width, self.done = stream, width, 0

  def __call__(self, done: int, total: int) -> None:
    if done <= self.done:
      return
    self.done = done
    filled = self.width * done // total
    self.stream.write(f'\rsampling: {done}/{total} rows [{"#" * filled}'
                      f'{"." * (self.width - filled)}]' + ('\n' if done == total else ''))
    self.stream.flush()


def write_images(images_NHWC: np.ndarray, directory: epath.Path, columns: int) -> None:
  """directory/grid.png (scaled up to >= GRID_MIN_SIZE px) and directory/<nnnn>.png per image,
  written beside it first and then moved in place of any earlier samples of that step."""
  from freqprior.train import image_grid  # pylint: disable=g-import-not-at-top
  to_pil = lambda a: Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a)
  tmp = directory.parent / f'.{directory.name}.tmp-{uuid.uuid4().hex}'
  tmp.mkdir(parents=True)
  for n, image in enumerate(images_NHWC):
    with (tmp / f'{n:04d}.png').open('wb') as f:
      to_pil(image).save(f, format='PNG')
  grid = image_grid(images_NHWC, columns)
  scale = max(1, GRID_MIN_SIZE // max(grid.shape[:2]))
  with (tmp / 'grid.png').open('wb') as f:
    to_pil(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST).save(
        f, format='PNG')
  if directory.exists():
    directory.rmtree()
  tmp.rename(directory)


def sample_main(config: ml_collections.ConfigDict, workdir: str) -> epath.Path:
  """--mode=sample: restore, sample with a progress bar, write DIR/samples/<step>/; returns it."""
  images, step = sample_checkpoint(config, workdir, on_row=RowProgress())  # checks inputs first
  num_images = len(images)
  directory = epath.Path(workdir) / 'samples' / str(step)
  if jax.process_index() == 0:
    labels = parse_labels(config)
    columns = len(set(labels.tolist())) if labels is not None else 0  # one class per column
    columns = columns if 1 < columns <= 16 else int(np.ceil(np.sqrt(num_images)))
    write_images(images, directory, columns)
    print(f'wrote {num_images} samples of step {step} to {directory}', flush=True)
  return directory
