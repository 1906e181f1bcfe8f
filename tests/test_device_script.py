"""benchmarks/device.py --cpu_smoke runs every part and ends with the JSON record a device run
prints. With the tests' compilation cache warm it takes ~40 s on 2 cores; cold, ~4.5 minutes
(nearly all of it compiling the train steps)."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PARTS = {'compile_float32', 'cifar100_float32_batch64', 'cifar100_float32_largest',
         'cifar100_bfloat16_batch64', 'cifar100_bfloat16_largest', 'prior_overhead',
         'imagenet64_bfloat16', 'sampling', 'prior_dft'}


def test_cpu_smoke_prints_every_part_as_json():
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  run = subprocess.run([sys.executable, 'benchmarks/device.py', '--cpu_smoke'], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=900)
  assert run.returncode == 0, run.stderr[-3000:]
  record = json.loads(run.stdout.strip().splitlines()[-1])
  assert set(record) == PARTS | {'device', 'num_devices', 'smoke', 'total_s'}
  assert record['smoke'] is True
  assert {'cached_2_s', 'naive_2_s', 'speedup_2'} <= set(record['sampling'])
  prior_dft = record['prior_dft']
  assert prior_dft['row_dft'] == {'8': 'matmul'}  # the CPU's choice
  assert {'fft_s', 'matmul_s', 'fft_over_matmul'} <= set(prior_dft['timings']['8'])
  assert prior_dft['precisions']['8']['HIGHEST']['error'] < 1e-5
  assert prior_dft['accuracy']['matmul_cpu'] < 1e-5
  assert prior_dft['accuracy']['matmul_bf16x3_emulated'] < 1e-4
