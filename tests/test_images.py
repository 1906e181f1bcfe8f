"""Sample grids a person can read (whole-number upscale, grey gaps) and the PNGs behind them."""
import numpy as np
from PIL import Image
import pytest

from freqprior import images


def _images(n, size, channels, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (n, size, size, channels), np.uint8)


@pytest.mark.parametrize('size,scale', [(8, 8), (28, 3), (32, 2), (64, 1), (100, 1)])
def test_small_images_are_scaled_up_to_at_least_the_cell_size(size, scale):
  assert images.grid_scale(size) == scale
  assert size * scale >= images.CELL_PIXELS or scale == 1
  assert size * (scale - 1) < images.CELL_PIXELS  # the smallest such scale


@pytest.mark.parametrize('channels', [1, 3])
def test_grid_cells_hold_each_image_scaled_with_grey_gaps_between(channels):
  x = _images(7, 8, channels)
  grid = images.image_grid(x, columns=3)
  cell, gap = 8 * 8, images.GAP_PIXELS
  assert grid.shape == (3 * cell + 2 * gap, 3 * cell + 2 * gap, channels)
  for i, image in enumerate(x):
    top, left = (i // 3) * (cell + gap), (i % 3) * (cell + gap)
    np.testing.assert_array_equal(grid[top:top + cell, left:left + cell],
                                  np.kron(image, np.ones((8, 8, 1), np.uint8)))
  assert (grid[cell:cell + gap] == images.GAP_VALUE).all()  # between rows
  assert (grid[:, cell:cell + gap] == images.GAP_VALUE).all()  # between columns
  assert (grid[2 * (cell + gap):, cell + gap:] == images.GAP_VALUE).all()  # the unused cells


def test_a_28x28_grid_is_large_enough_to_look_at():
  grid = images.image_grid(_images(20, 28, 1), columns=10)
  assert grid.shape[:2] == (2 * 84 + images.GAP_PIXELS, 10 * 84 + 9 * images.GAP_PIXELS)


@pytest.mark.parametrize('labels,num_images,columns', [
    (np.resize(np.arange(10), 30), 30, 10),  # one class per column
    (np.array([4, 7, 4]), 3, 2),
    (None, 16, 4),  # near-square
    (None, 17, 5),
    (np.full(9, 3), 9, 3),  # a single class: near-square
    (np.arange(20), 20, 5),  # too many classes for a column each
])
def test_grid_columns(labels, num_images, columns):
  assert images.grid_columns(num_images, labels) == columns


@pytest.mark.parametrize('channels,mode', [(1, 'L'), (3, 'RGB')])
def test_png_round_trip(tmp_path, channels, mode):
  x = _images(1, 5, channels)[0]
  images.write_png(tmp_path / 'a.png', x)
  with Image.open(tmp_path / 'a.png') as png:
    assert png.mode == mode
    np.testing.assert_array_equal(np.asarray(png).reshape(x.shape), x)


def test_sample_dir_replaces_earlier_samples_whole(tmp_path):
  directory = tmp_path / 'samples' / '10'
  images.write_sample_dir(_images(3, 8, 1), directory, columns=3)
  second = _images(2, 8, 1, seed=1)
  images.write_sample_dir(second, directory, columns=2)
  assert sorted(p.name for p in directory.iterdir()) == ['0000.png', '0001.png', 'grid.png']
  for n, image in enumerate(second):
    np.testing.assert_array_equal(np.asarray(Image.open(directory / f'{n:04d}.png')),
                                  image[..., 0])
  np.testing.assert_array_equal(np.asarray(Image.open(directory / 'grid.png')),
                                images.image_grid(second, 2)[..., 0])
  assert sorted(p.name for p in directory.parent.iterdir()) == ['10']  # no temporary folders
