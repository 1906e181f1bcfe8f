"""The launchers parse, pass shellcheck (where installed), and print their usage without args."""
import glob
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = sorted(glob.glob(os.path.join(ROOT, 'launch', '*.sh')))


def test_launchers_exist():
  assert [os.path.basename(s) for s in SCRIPTS] == ['slurm.sh', 'tpu.sh']


@pytest.mark.parametrize('script', SCRIPTS, ids=os.path.basename)
def test_usage_without_arguments(script):
  out = subprocess.run(['bash', script], capture_output=True, text=True, timeout=30)
  assert out.returncode == 2
  assert 'main.py' in out.stdout


@pytest.mark.skipif(shutil.which('shellcheck') is None, reason='shellcheck not installed')
def test_shellcheck_clean():
  out = subprocess.run(['shellcheck', *SCRIPTS], capture_output=True, text=True, timeout=60)
  assert out.returncode == 0, out.stdout
