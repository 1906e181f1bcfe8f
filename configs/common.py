"""Defaults shared by every config; each `configs/<name>.py` edits a copy in `get_config()`."""
import ml_collections


def base_config() -> ml_collections.ConfigDict:
  """All keys the library reads, with defaults that suit a small CPU run."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.num_train_steps = 1000
  config.batch_size = 64  # global, over all hosts and devices
  config.eval_every_steps = 500
  config.checkpoint_every_steps = 500
  config.log_every_steps = 50
  config.keep_checkpoints = 2

  config.dataset = ml_collections.ConfigDict()
  config.dataset.name = 'digits'
  config.dataset.data_dir = ''  # TFDS data_dir: local path or gs://bucket/...
  config.dataset.image_size = 8  # H = W
  config.dataset.channels = 1
  config.dataset.num_classes = 10
  config.dataset.random_flip = False
  config.dataset.validation_examples = 0  # carved from train, used to pick the best checkpoint
  config.dataset.worker_count = 0  # grain worker processes
  config.dataset.read_threads = 4  # grain reader threads per process (or worker)

  config.model = ml_collections.ConfigDict()
  config.model.head = 'categorical'  # or 'logistic_mixture'
  config.model.num_mixtures = 5  # logistic_mixture only
  config.model.width = 32
  config.model.num_blocks = 4
  config.model.head_width = 64
  config.model.dropout = 0.0
  config.model.class_conditional = True
  config.model.frequency_prior = True
  config.model.prior_blocks = 'all'  # 'all', 'last', or block indices such as '1,3'
  config.model.prior_kernel = 'full'  # 'full' spatial kernel, or 'implicit' (any resolution)
  config.model.prior_channels = 0  # channels the prior filters after a 1x1 projection; 0: width
  # Prompt conditioning (byte-level UTF-8 tokens, a pre-LN transformer encoder trained jointly):
  # 'none'; 'pooled': the mean-pooled prompt gated into every block, h + sigmoid(W_g e) * W_v e;
  # 'cross_attention': every image position attends to the prompt tokens in the blocks below.
  config.model.text = 'none'  # 'none' | 'pooled' | 'cross_attention'
  config.model.text_width = 64
  config.model.text_depth = 2
  config.model.text_heads = 4
  config.model.max_prompt_length = 64  # tokens: UTF-8 bytes + BOS + EOS; longer prompts truncated
  config.model.cross_attention_blocks = 'all'  # 'all', 'last', or block indices such as '1,3'
  config.model.cross_attention_heads = 4  # must divide config.model.width
  config.model.cond_dropout = 0.0  # training: P(label and prompt -> null inputs), for guidance
  config.model.position_embedding = False  # learned per-position start features [H, W, width]
  config.model.input_corruption = 0.0  # training: P(input pixel -> uniform noise), targets kept
  # Rematerialise each scanned block group in the backward pass: 'none', 'full', or a
  # jax.checkpoint_policies name (e.g. 'dots_saveable'); trades compute for activation memory.
  config.model.remat = 'none'
  config.model.dtype = 'float32'  # compute dtype: 'float32' or 'bfloat16'

  config.optim = ml_collections.ConfigDict()
  config.optim.learning_rate = 2e-3
  config.optim.warmup_steps = 100
  config.optim.weight_decay = 1e-4
  config.optim.grad_clip = 1.0
  config.optim.ema_decay = 0.999

  config.mesh = ml_collections.ConfigDict()
  config.mesh.shape = (-1, 1)  # -1 fills the remaining devices
  config.mesh.axes = ('data', 'fsdp')
  config.mesh.fsdp = False  # shard parameters over 'fsdp' instead of replicating them
  config.mesh.fsdp_min_size = 4096  # parameters with fewer elements stay replicated

  config.eval = ml_collections.ConfigDict()
  config.eval.step = -1  # -1: the config.eval.checkpoint one
  config.eval.batch_size = 256
  config.eval.split = 'test'
  # when eval.step == -1: 'best' by validation bits/dim (the latest if no validation split), or
  # 'latest'
  config.eval.checkpoint = 'best'
  config.eval.samples = True  # sample grid (freqprior.sample) at each eval

  config.sample = ml_collections.ConfigDict()
  config.sample.num_images = 16
  config.sample.batch_size = 16
  config.sample.temperature = 1.0
  config.sample.seed = 0
  config.sample.class_label = '0,1,2,3,4,5,6,7,8,9'  # one label or a comma list cycled
  # text models: one prompt, or a list cycled over the images ('' and no file: unconditional)
  config.sample.prompt = ml_collections.FieldReference('', field_type=object)
  config.sample.prompt_file = ''  # or one prompt a line, cycled
  config.sample.guidance_scale = 1.0  # classifier-free guidance; 1.0 = off
  config.sample.method = 'cached'  # or 'naive'
  config.sample.step = -1  # -1: best checkpoint
  return config
