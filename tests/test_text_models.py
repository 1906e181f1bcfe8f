"""Prompt-conditioned models: exact causality, prompts change likelihoods, null-input dropout."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import cifar100_text, coco, digits_text
from freqprior import models
from freqprior import sample_options
from freqprior.models import tokenizer
from freqprior.models.causality import causality_deviation
from tests.conftest import tiny_config

# Exact: an earlier subpixel's log-likelihood is bit-for-bit unchanged (causality_deviation compares
# at equal batch positions, so no GEMM rounding differences enter).
TOLERANCE = 0.0
PROMPT = 'a handwritten digit 7'


def text_config(mode='cross_attention', rgb=False, head='categorical', conditional=False,
                **model):
  config = tiny_config(rgb=rgb, head=head, conditional=conditional, num_blocks=3,
                       size=6 if rgb else 8)
  config.model.update({**dict(text=mode, text_width=16, text_depth=2, text_heads=2,
                              max_prompt_length=32, cross_attention_blocks='0,2',
                              cross_attention_heads=2), **model})
  return config


@pytest.fixture(scope='module', params=['pooled', 'cross_attention'])
def text_model(request):
  """(config, log_prob) of a class- and prompt-conditioned RGB mixture model."""
  config = text_config(request.param, rgb=True, head='logistic_mixture', conditional=True)
  return config, models.build_log_prob(config, seed=1)


def random_image(batch=1):
  return np.random.RandomState(0).randint(0, 256, (batch, 6, 6, 3)).astype(np.uint8)


def test_no_subpixel_depends_on_a_later_one(text_model):
  _, log_prob = text_model
  with_prompt = lambda images, labels: log_prob(images, labels, [PROMPT] * len(images))
  leak, own_change = causality_deviation(with_prompt, random_image()[0], label=4)
  assert leak <= TOLERANCE
  assert own_change > 1e-4


def test_prompts_and_labels_change_the_likelihood(text_model):
  _, log_prob = text_model
  prompts = ['a handwritten digit seven', 'a handwritten digit eight', 'Ein Bild', '', PROMPT]
  labels = np.array([4, 4, 4, 4, 7])
  logp = np.asarray(log_prob(random_image(len(prompts)), labels, prompts))
  for a in range(len(logp)):
    for b in range(a):
      assert np.abs(logp[a] - logp[b]).max() > 1e-4, (a, b)  # incl. a last-word difference


def test_no_prompt_is_the_empty_prompt(text_model):
  _, log_prob = text_model
  np.testing.assert_array_equal(log_prob(random_image()), log_prob(random_image(), prompts=['']))


def test_null_input_dropout_in_training():
  """With cond_dropout=0.5, train=True scores each example with its label and prompt, or with
  the null label and the empty prompt, in the configured proportion."""
  config = text_config('pooled', True, 'logistic_mixture', conditional=True, cond_dropout=0.5)
  model = models.build_model(config)  # shaped like text_model's: its initialisation is cached
  params = models.init_params(model, config, jax.random.key(0))
  n = 128
  images = jnp.asarray(random_image(n), jnp.uint8)
  labels = jnp.arange(n) % 10
  tokens = jnp.asarray(tokenizer.tokenize([PROMPT], 32)).repeat(n, 0)
  score = jax.jit(lambda labels, tokens, train: model.apply(
      {'params': params}, images, labels, train, tokens, rngs={'dropout': jax.random.key(5)}),
      static_argnums=2)
  trained = np.asarray(score(labels, tokens, True)).reshape(n, -1)
  conditional = np.asarray(score(labels, tokens, False)).reshape(n, -1)
  null_labels = jnp.full((n,), config.dataset.num_classes)
  null_tokens = jnp.asarray(tokenizer.null_tokens(n, 32))
  null = np.asarray(score(null_labels, null_tokens, False)).reshape(n, -1)
  is_conditional = np.abs(trained - conditional).max(1) < 1e-5
  is_null = np.abs(trained - null).max(1) < 1e-5
  assert (is_conditional ^ is_null).all()
  assert abs(is_null.mean() - 0.5) < 4 * np.sqrt(0.25 / n)


def test_bad_input(text_model):
  _, log_prob = text_model
  with pytest.raises(ValueError, match='B=1'):
    log_prob(random_image(), prompts=[PROMPT] * 2)
  with pytest.raises(ValueError, match='B=1'):
    log_prob(random_image(), prompts=PROMPT)
  with pytest.raises(ValueError, match='without text conditioning'):
    models.prompt_tokens([PROMPT], 1, tiny_config())  # what build_log_prob's log_prob calls
  with pytest.raises(ValueError, match="'pooled'"):
    models.build_model(text_config('pool'))
  with pytest.raises(ValueError, match='cross_attention_heads=3'):
    models.build_model(text_config(cross_attention_heads=3))
  with pytest.raises(ValueError, match='cross_attention_blocks'):
    models.build_model(text_config(cross_attention_blocks='5'))


@pytest.mark.parametrize('module', [digits_text, cifar100_text, coco])
def test_text_configs_build_and_sample_by_prompt(module):
  config = module.get_config()
  assert models.text_config(config).mode == config.model.text
  sample_options.check_options(config)
  sample_options.check_guidance(config)
  assert sample_options.parse_labels(config) is None
  prompts = sample_options.parse_prompts(config, 10)
  assert all(len(p.encode()) + 2 <= config.model.max_prompt_length for p in prompts)
