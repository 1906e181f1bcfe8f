"""Model construction from a config, input checks and the likelihood API (re-exported)."""
from freqprior.models.build import DTYPES, build_model, prior_block_indices, text_config
from freqprior.models.inputs import check_images, check_labels, dummy_inputs, prompt_tokens
from freqprior.models.likelihood import bits_per_dim, build_log_prob, init_params
from freqprior.models.pixelcnn import BackboneSettings, PixelCNN
