"""freqprior: autoregressive pixel-level image generation with a causal frequency prior."""
