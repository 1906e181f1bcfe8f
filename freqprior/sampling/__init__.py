"""Samplers: `naive` (the reference, a full forward per subpixel) and `cached` (incremental).

Both draw the same noise per subpixel (`draws`), so for a seed and temperature they give the
same images. `freqprior.sample` is the entry point (generate, restore + sample, --mode=sample).
"""
from freqprior.sampling import cached
from freqprior.sampling import naive

SAMPLERS = {'cached': cached.sample, 'naive': naive.sample}
