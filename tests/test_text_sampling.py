"""Sampling prompt-conditioned models: cached == naive with text, and classifier-free guidance."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from freqprior import models
from freqprior import sample
from freqprior import sample_options
from freqprior.models import guidance
from freqprior.models import tokenizer
from freqprior.sampling import SAMPLERS
from tests import sampling_helpers
from tests.conftest import tiny_config
from tests.test_text_models import text_config

PROMPTS = ['a handwritten digit 3', 'a handwritten digit 8', 'ein Hund', '']
SCALE = 3.0


def case_config(name):
  mode, rgb, head = {'pooled-gray-categorical': ('pooled', False, 'categorical'),
                     'cross-rgb-mixture': ('cross_attention', True, 'logistic_mixture')}[name]
  config = text_config(mode, rgb, head, conditional=True, cross_attention_blocks='1')
  config.dataset.image_size = 4
  config.model.num_blocks = 2
  return config


@functools.lru_cache(maxsize=None)
def case(name):
  config = case_config(name)
  model = models.build_model(config)
  params = models.init_params(model, config, jax.random.key(7))
  shape = (4, 4, config.dataset.channels)

  @functools.partial(jax.jit, static_argnums=(4, 5))
  def draw(keys_B, labels_B, tokens_BT, temperature, method, scale):
    """scale None: the sampler's default (unguided)."""
    batch = keys_B.shape[0]
    if scale not in (None, 1.0):
      keys_B, labels_B, tokens_BT = guidance.with_unconditional_half(keys_B, labels_B, tokens_BT,
                                                                      config.dataset.num_classes)
    options = {} if scale is None else {'guidance_scale': scale}
    sampler = functools.partial(SAMPLERS[method], image_shape=shape, **options)
    return model.apply({'params': params}, labels_B, keys_B, temperature, tokens_BT=tokens_BT,
                       method=sampler)[:batch]

  inputs = (jax.random.split(jax.random.key(3), len(PROMPTS)), jnp.array([1, 1, 2, 2]),
            jnp.asarray(tokenizer.tokenize(PROMPTS, config.model.max_prompt_length)))
  return config, model, params, draw, inputs


@pytest.fixture(scope='module', params=['pooled-gray-categorical', 'cross-rgb-mixture'])
def drawn(request):
  config, model, params, draw, inputs = case(request.param)
  images = {(method, SCALE, t): np.asarray(draw(*inputs, jnp.float32(t), method, SCALE))
            for method in ('cached', 'naive') for t in (1.0, 0.0)}
  return request.param, images


def test_cached_equals_naive_with_prompts_and_guidance(drawn):
  """The cached sampler's text conditioning (Stepper._text) matches the full model's."""
  name, images = drawn
  for t in (1.0, 0.0):
    sampling_helpers.assert_same_draws(images['cached', SCALE, t], images['naive', SCALE, t])
  _, model, params, _, (_, labels_B, tokens_BT) = case(name)
  full, stepped = sampling_helpers.cached_features(model, params, images['naive', SCALE, 1.0],
                                                   labels_B, tokens_BT)
  sampling_helpers.assert_features_match(full, stepped, rtol=1e-5)


def test_prompts_change_the_samples(drawn):
  _, images = drawn
  assert len({image.tobytes() for image in images['cached', SCALE, 1.0]}) == len(PROMPTS)


def test_scale_one_is_exactly_unguided_and_other_scales_are_not():
  draw, inputs = case('pooled-gray-categorical')[3:]
  unguided = draw(*inputs, jnp.float32(1.0), 'cached', None)  # the sampler's default
  np.testing.assert_array_equal(draw(*inputs, jnp.float32(1.0), 'cached', 1.0), unguided)
  guided = draw(*inputs, jnp.float32(1.0), 'cached', SCALE)
  assert (np.asarray(guided) != np.asarray(unguided)).any(axis=(1, 2, 3)).sum() >= 2


def test_greedy_guided_samples_are_the_guided_mode(drawn):
  """T = 0: each subpixel is the argmax of uncond + s * (cond - uncond) of the model's own
  conditionals given the sampled past, recomputed from full forward passes."""
  name, images = drawn
  config, model, params, _, (_, labels_B, tokens_BT) = case(name)
  images_BHWC = jnp.asarray(images['cached', SCALE, 0.0])
  batch, channels = len(PROMPTS), config.dataset.channels
  null_BT = jnp.asarray(tokenizer.null_tokens(batch, config.model.max_prompt_length))

  def subpixel_log_probs(m, labels_B, tokens_BT):
    features_NF = m.features(images_BHWC, labels_B, tokens_BT=tokens_BT)
    features_NF = features_NF.reshape(-1, features_NF.shape[-1])
    pixels_NC = images_BHWC.reshape(-1, channels)
    return jnp.stack([guidance.subpixel_log_probs(m.output_head, features_NF, pixels_NC, c)
                      for c in range(channels)], axis=1)  # [N, C, 256]

  score = jax.jit(lambda l, t: model.apply({'params': params}, l, t, method=subpixel_log_probs))
  cond = score(labels_B, tokens_BT)
  uncond = score(jnp.full_like(labels_B, config.dataset.num_classes), null_BT)
  guided = np.asarray(guidance.guided_logits(cond, uncond, SCALE))
  np.testing.assert_array_equal(np.argmax(guided, -1),
                                np.asarray(images_BHWC).reshape(-1, channels))


def test_generate_reads_prompts_and_guidance_from_the_config():
  _, _, params, _, (_, labels_B, _) = case('pooled-gray-categorical')
  config = case_config('pooled-gray-categorical')
  config.sample.update(num_images=len(PROMPTS), batch_size=len(PROMPTS), method='cached')
  config.sample.prompt = PROMPTS[:2]  # cycled over the images
  labels = np.asarray(labels_B)
  generate = lambda **kw: sample.generate(params, config, labels, jax.random.key(0), **kw)
  from_config = generate()
  np.testing.assert_array_equal(from_config, generate(prompts=PROMPTS[:2] * 2, guidance_scale=1.0))
  config.sample.guidance_scale = SCALE
  assert (generate() != from_config).any()


def test_bad_sampling_options(tmp_path):
  config = text_config('pooled')
  config.sample.prompt_file = str(tmp_path / 'missing.txt')
  with pytest.raises(FileNotFoundError, match='prompt_file'):
    sample_options.parse_prompts(config, 4)
  plain = tiny_config(conditional=False)
  plain.sample.prompt = 'a cat'
  with pytest.raises(ValueError, match='without text conditioning'):
    sample_options.parse_prompts(plain, 4)
  plain.sample.prompt = ''
  with pytest.raises(ValueError, match='guidance_scale=2.0 needs'):
    sample_options.check_guidance(plain, 2.0)
  assert sample_options.check_guidance(text_config('pooled'), 2.0) == 2.0
