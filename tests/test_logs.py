"""The run's own lines, and the config listing that --mode=show_config prints."""
import shlex

from absl import flags
import ml_collections
from ml_collections import config_flags
import pytest

from configs import digits
from freqprior import logs


@pytest.mark.parametrize('seconds,text', [(0, '0s'), (44.6, '45s'), (184, '3m04s'),
                                          (7500, '2h05m'), (float('inf'), '?')])
def test_duration(seconds, text):
  assert logs.duration(seconds) == text


def test_progress_line_has_step_loss_bits_rate_and_eta():
  line = logs.progress_line(50, 1000, 1.2345678, 1.7812345, 4.0)
  assert line == 'step   50/1000  loss 1.2346  1.7812 bits/dim  4.00 steps/s  ETA 3m58s'
  assert logs.progress_line(1000, 1000, 1.0, 1.0, 4.0).endswith('ETA 0s')


def test_eval_line_names_each_split_and_the_samples():
  assert logs.eval_line(250, {'validation': 1.66, 'test': 1.7123}, '/w/eval/s.png') == (
      'step 250 eval: validation 1.6600 bits/dim, test 1.7123 bits/dim; samples /w/eval/s.png')
  assert logs.eval_line(3, {'test': 2.0}) == 'step 3 eval: test 2.0000 bits/dim'


def _num_leaves(config) -> int:
  return sum(_num_leaves(v) if isinstance(v, ml_collections.ConfigDict) else 1
             for v in config.values())


def test_config_flags_list_every_key_and_parse_back_to_the_same_config():
  config = digits.get_config()
  config.model.width = 12
  config.mesh.shape = (2, -1)
  config.sample.class_label = '3'
  lines = logs.config_flags(config)
  assert len(lines) == _num_leaves(config) and lines == sorted(lines)
  assert '--config.model.width=12' in lines
  assert '--config.mesh.axes="(\'data\', \'fsdp\')"' in lines
  # Through a shell and ml_collections' own flag parser, onto the shipped config.
  argv = ['prog', f'--config={digits.__file__}', *sum((shlex.split(l) for l in lines), [])]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file('config', flag_values=values, sys_argv=argv)
  values(argv)
  assert values.config.to_dict() == config.to_dict()
