"""The embedded default: class-conditional 8x8 handwritten digits (sklearn's bundled set).

Command:  python main.py --config=configs/digits.py --workdir=/tmp/digits
Model:    236K parameters, the frequency prior in blocks 0, 1, 2, 3.
Hardware: 2 CPU cores; no dataset download (the images ship inside scikit-learn).
Expected: test bits/dim 1.712 (per-pixel histogram baseline 2.36; validation 1.662), 2 min 1 s
          wall for training plus evaluation on the otherwise idle 2 CPU cores (4 min 39 s with
          the test suite sharing them); the same number on every run (deterministic, measured
          three times, the last on 2026-11-27 with the faster filter of commit 5abf2ed).
          The project's target is <= 1.6 and this config does not reach it. Config knobs alone
          (wider 64-channel and longer 1,500-step runs, weight decay up to 0.5, dropout 0.25-0.5)
          plateau at 1.71-1.73 on test while validation keeps improving. Model changes measured
          on this config (validation / test bits/dim, wall time with two runs sharing the cores):
            no position embedding (before)           1.663 / 1.717
            position_embedding (shipped)             1.662 / 1.712   5 min 18 s
            input_corruption 0.15 (no position emb.) 1.760 / 1.776   5 min 15 s
            + input_corruption 0.05                  1.701 / 1.734   5 min 9 s
            + cond_dropout 0.1                       1.665 / 1.702   5 min 5 s
            + width 48                               1.653 / 1.717   7 min 2 s
            + num_blocks 5                           1.660 / 1.722   5 min 56 s
          Rows with '+' add to position_embedding. Width 48 has the best validation but does not
          improve test, so it is not shipped.
          The test images are about two writers absent from training (sklearn stores its 13
          writers one after another); benchmarks/studies/digits_splits.py measures this config on five
          other unseen-writer blocks (1.66-1.80) and on a random split (1.656).
200 training images (a random 200: TFDS stores records in key-hash order) are held out as a
validation split; the checkpoint with the best validation bits/dim (EMA parameters) is the one
evaluated on the 297 test images and sampled (DIR/eval/samples_step<N>.png: three rows of the
digits 0-9).
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
  config.model.position_embedding = True  # centred digits: position alone is informative
  config.optim.learning_rate = 2e-3
  config.optim.warmup_steps = 100
  config.optim.ema_decay = 0.999
  config.sample.num_images = 30
  config.sample.batch_size = 30
  return config
