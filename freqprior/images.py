"""Sample grids and PNG files: what a person looks at.

A grid scales each image up by a whole number (nearest neighbour, so every pixel stays a sharp
square) until it is about `CELL_PIXELS` wide, and separates images by a mid-grey gap that shows
against black backgrounds (digits) and white ones alike. Individual PNGs keep the model's own
resolution, so they hold exactly the sampled values.
"""
import uuid

from etils import epath
import numpy as np
from PIL import Image

CELL_PIXELS = 64  # images in a grid are scaled up to at least this width (8x8 -> 64, 28 -> 84)
GAP_PIXELS = 4  # between grid cells, after scaling
GAP_VALUE = 128  # mid grey


def grid_scale(image_size: int) -> int:
  """The whole-number upscale that makes an image of `image_size` pixels >= CELL_PIXELS."""
  return max(1, -(-CELL_PIXELS // image_size))


def grid_columns(num_images: int, labels_N=None) -> int:
  """One column per class when 2 to 16 classes are drawn (a row then reads 0, 1, 2, ...), else
  a near-square grid."""
  classes = 0 if labels_N is None else len(set(np.asarray(labels_N).tolist()))
  if 1 < classes <= 16:
    return classes
  return max(1, int(np.ceil(np.sqrt(num_images))))


def image_grid(images_NHWC: np.ndarray, columns: int, scale: int = 0) -> np.ndarray:
  """uint8 [N, H, W, C] -> one uint8 grid [rows*(sH+g)-g, columns*(sW+g)-g, C]: images scaled up
  `scale` times (0: `grid_scale(W)`), row-major, GAP_PIXELS g of GAP_VALUE between them."""
  n, h, w, c = images_NHWC.shape
  scale = scale or grid_scale(max(h, w))
  columns = max(1, min(columns, n))
  rows = -(-n // columns)
  cell_h, cell_w = h * scale, w * scale
  grid = np.full((rows * (cell_h + GAP_PIXELS) - GAP_PIXELS,
                  columns * (cell_w + GAP_PIXELS) - GAP_PIXELS, c), GAP_VALUE, np.uint8)
  for i, image in enumerate(np.asarray(images_NHWC, np.uint8)):
    top, left = (i // columns) * (cell_h + GAP_PIXELS), (i % columns) * (cell_w + GAP_PIXELS)
    grid[top:top + cell_h, left:left + cell_w] = image.repeat(scale, 0).repeat(scale, 1)
  return grid


def write_png(path: epath.Path, image_HWC: np.ndarray) -> None:
  """uint8 [H, W, 1 or 3] as a greyscale or RGB PNG (local or gs:// paths)."""
  image = Image.fromarray(image_HWC[..., 0] if image_HWC.shape[-1] == 1 else image_HWC)
  with epath.Path(path).open('wb') as f:
    image.save(f, format='PNG')


def write_sample_dir(images_NHWC: np.ndarray, directory: epath.Path, columns: int) -> None:
  """directory/grid.png and directory/<nnnn>.png per image, written into a sibling folder first
  and then moved in place of any earlier `directory`, so a reader never sees half of a set."""
  directory = epath.Path(directory)
  tmp = directory.parent / f'.{directory.name}.tmp-{uuid.uuid4().hex}'
  tmp.mkdir(parents=True)
  for n, image in enumerate(images_NHWC):
    write_png(tmp / f'{n:04d}.png', image)
  write_png(tmp / 'grid.png', image_grid(images_NHWC, columns))
  if directory.exists():
    directory.rmtree()
  tmp.rename(directory)
