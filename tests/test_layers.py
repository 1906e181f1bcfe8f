"""Layer helpers: initialisers drawn flat draw exactly what they would draw in their own shape."""
import flax.linen as nn
import jax
import numpy as np
import pytest

from freqprior.models import layers


@pytest.mark.parametrize('shape', [(2, 3, 8, 16), (4, 7, 5)])
@pytest.mark.parametrize('init', [nn.initializers.lecun_normal(), nn.initializers.normal(0.3)],
                         ids=['lecun_normal', 'normal'])
def test_drawn_flat_is_the_same_draw(init, shape):
  key = jax.random.key(5)
  np.testing.assert_array_equal(layers.drawn_flat(init)(key, shape), init(key, shape))
