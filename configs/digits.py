"""The embedded default: class-conditional 8x8 handwritten digits (sklearn's bundled set).

Command:  python main.py --config=configs/digits.py --workdir=/tmp/digits
Hardware: 2 CPU cores; no dataset download (the images ship inside scikit-learn).
Expected: test bits/dim <= 1.6 (target) within 10 minutes including evaluation.
"""
from configs import common


def get_config():
  config = common.base_config()
  return config
