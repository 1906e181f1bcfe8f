"""config.sample parsed and checked before anything is compiled or restored."""
import numpy as np
import pytest

from freqprior import errors
from freqprior import sample_options
from tests.conftest import tiny_config


@pytest.mark.parametrize('key,value,match', [
    ('num_images', 0, 'num_images'),
    ('class_label', '3,x', 'class_label'),
    ('class_label', '12', 'num_classes'),
])
def test_bad_labels_are_errors_naming_the_setting(key, value, match):
  config = tiny_config()
  config.sample[key] = value
  with pytest.raises(errors.ConfigError, match=match):
    sample_options.parse_labels(config)


def test_labels_cycle_over_the_images_and_none_means_the_null_label():
  config = tiny_config()
  config.sample.update(class_label='1,2', num_images=5)
  np.testing.assert_array_equal(sample_options.parse_labels(config), [1, 2, 1, 2, 1])
  unconditional = tiny_config(conditional=False)
  with pytest.raises(errors.ConfigError, match='unconditional'):
    sample_options.parse_labels(unconditional)
  unconditional.sample.class_label = ''
  assert sample_options.parse_labels(unconditional) is None


@pytest.mark.parametrize('method,temperature,batch_size,match', [
    ('beam', 1.0, 4, 'method'),
    ('cached', -0.5, 4, 'temperature'),
    ('cached', float('nan'), 4, 'temperature'),
    ('naive', 1.0, 0, 'batch_size'),
])
def test_bad_method_temperature_or_batch(method, temperature, batch_size, match):
  config = tiny_config()
  config.sample.update(method=method, temperature=temperature, batch_size=batch_size)
  with pytest.raises(errors.ConfigError, match=match):
    sample_options.check_options(config)


def test_options_default_to_the_config_and_arguments_win():
  config = tiny_config()
  config.sample.update(method='naive', temperature=0.5)
  assert sample_options.check_options(config) == ('naive', 0.5)
  assert sample_options.check_options(config, 'cached', 0.0) == ('cached', 0.0)


def test_null_condition_needs_a_model_trained_with_cond_dropout():
  config = tiny_config()
  config.sample.class_label = ''  # the null label
  with pytest.raises(errors.ConfigError, match=r'cond_dropout=0 \(checkpoint 7\)'):
    sample_options.check_null_condition(config, 0.0, 'checkpoint 7')
  sample_options.check_null_condition(config, 0.1)
  config.sample.class_label = '3'
  sample_options.check_null_condition(config, 0.0)  # every image has its label
