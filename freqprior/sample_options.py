"""`config.sample`, checked and parsed before anything is compiled, restored or written.

validate.py runs these for --mode=sample and for training runs that draw sample grids;
freqprior.sample runs them again for callers that come straight from a notebook.
"""
from typing import Optional

import ml_collections
import numpy as np

from freqprior import errors
from freqprior import models
from freqprior.models import tokenizer
from freqprior.sampling import SAMPLERS


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
