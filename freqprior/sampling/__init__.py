"""Samplers: `naive` (the reference, a full forward per subpixel) and `cached` (incremental).

Both draw the same noise per subpixel (`draws`), so for a seed and temperature they give the
same images: in float32 every image in the tests matches; the two compute each layer in another
order, so round-off can still flip a rare near-tie draw (more often in bfloat16, where one
differing rounding moves a logistic mixture's mean by ~1e-3 of the [-1, 1] range), after which
that image goes its own, equally likely, way. Temperature T means one thing for both heads, with
or without guidance (`draws`): each subpixel's exact 256-way conditional p becomes p^(1/T) / Z.
`freqprior.sample` is the entry point (generate, restore + sample); --mode=sample is
`freqprior.sample_main`.
"""
from freqprior.sampling import cached
from freqprior.sampling import naive

SAMPLERS = {'cached': cached.sample, 'naive': naive.sample}
