"""Config validation: settings that cannot work are errors, settings that would do nothing warn."""
import logging
import re

import jax
import pytest

from configs import digits, digits_text
from freqprior import errors
from freqprior import validate


def _check(config):
  validate.check(config, 'train', devices=jax.devices()[:1], num_processes=1)


def _warnings(caplog):
  return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_shipped_defaults_are_quiet(caplog):
  with caplog.at_level(logging.WARNING):
    _check(digits.get_config())
    _check(digits_text.get_config())
  assert not _warnings(caplog)


@pytest.mark.parametrize('config_module,changes,message', [
    (digits_text, {'text': 'pooled', 'cross_attention_blocks': '1'},
     "cross_attention_blocks='1' has no effect"),
    (digits, {'class_conditional': False, 'cond_dropout': 0.1}, 'cond_dropout=0.1 has no effect'),
])
def test_settings_that_do_nothing_warn_once(caplog, config_module, changes, message):
  config = config_module.get_config()
  config.model.update(changes)
  config.sample.class_label = ''
  with caplog.at_level(logging.WARNING):
    _check(config)
  assert [m for m in _warnings(caplog) if message in m] == _warnings(caplog)
  assert len(_warnings(caplog)) == 1


@pytest.mark.parametrize('key,value,message', [
    ('cross_attention_blocks', '4', 'config.model.cross_attention_blocks'),
    ('prior_blocks', '0,9', 'config.model.prior_blocks'),
    ('cross_attention_heads', 5, 'config.model.cross_attention_heads=5 must divide'),
    ('head', 'gaussian', 'config.model.head'),
])
def test_impossible_model_settings_are_errors(key, value, message):
  config = digits_text.get_config()
  config.model[key] = value
  with pytest.raises(errors.ConfigError, match=message):
    _check(config)


def test_guidance_needs_labels_or_prompts():
  config = digits.get_config()
  config.model.class_conditional = False
  config.sample.update(class_label='', guidance_scale=3.0)
  with pytest.raises(errors.ConfigError, match='guidance_scale=3.0 needs a class- or prompt'):
    _check(config)


@pytest.mark.parametrize('key,value,message', [
    ('batch_size', -8, 'config.batch_size=-8 must be a positive integer'),
    ('eval.batch_size', 0, 'config.eval.batch_size=0 must be a positive'),
    ('num_train_steps', 0, 'config.num_train_steps=0 must be a positive'),
    ('dataset.channels', 2, 'config.dataset.channels=2 must be 1 or 3'),
    ('model.dtype', 'float16', 'config.model.dtype'),
    ('model.prior_blocks', '7', 'config.model.prior_blocks'),
    ('model.dropout', 1.5, 'config.model.dropout=1.5'),
    ('eval.split', 'dev', 'config.eval.split'),
    ('mesh.shape', (3, 1), 'config.mesh.shape'),
    ('optim.learning_rate', 0.0, 'config.optim.learning_rate'),
])
def test_bad_values_are_errors_naming_the_setting(key, value, message):
  config = digits.get_config()
  group, _, name = key.rpartition('.')
  (config[group] if group else config)[name] = value
  with pytest.raises(errors.ConfigError, match=re.escape(message)):
    _check(config)


def test_sample_options_are_checked_for_sampling_and_sample_grids():
  config = digits.get_config()
  config.sample.prompt_file = '/no/such/file'
  with pytest.raises(errors.ConfigError, match='prompt_file'):
    validate.check(config, 'sample', devices=jax.devices()[:1], num_processes=1)
  config.eval.samples = False
  _check(config)  # no sample grids: sampling options play no part in training
