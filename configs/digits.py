"""The embedded default: class-conditional 8x8 handwritten digits (sklearn's bundled set).

Command:  python main.py --config=configs/digits.py --workdir=/tmp/digits
Hardware: 2 CPU cores; no dataset download (the images ship inside scikit-learn).
Expected: test bits/dim 1.717 (per-pixel histogram baseline 2.36; validation 1.663), 2 min 47 s
          wall for training plus evaluation on 2 CPU cores (4 min 17 s while other jobs loaded
          them); the same number on every run (deterministic).
          The project's target is <= 1.6; no setting of this config reached it (wider 64-channel
          and longer 1,500-step runs, weight decay up to 0.5, dropout 0.25-0.5 all plateau at
          1.71-1.73 on test while validation keeps improving), so it needs a model change.
The last 200 training images are held out as a validation split; the checkpoint with the best
validation bits/dim (EMA parameters) is the one evaluated on the 297 test images and sampled
(DIR/eval/samples_step<N>.png: three rows of the digits 0-9).
"""
from configs import common


def get_config():
  config = common.base_config()
  config.num_train_steps = 1000
  config.eval_every_steps = 250
  config.checkpoint_every_steps = 250
  config.log_every_steps = 50
  config.dataset.validation_examples = 200
  config.model.width = 32
  config.model.num_blocks = 4
  config.model.head_width = 64
  config.model.dropout = 0.5  # 1,300 training images: without it test bits/dim rises after ~500 steps
  config.optim.learning_rate = 2e-3
  config.optim.warmup_steps = 100
  config.optim.ema_decay = 0.999
  config.eval.checkpoint = 'best'
  config.sample.num_images = 30
  config.sample.batch_size = 30
  return config
