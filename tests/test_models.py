"""The models read the encoding as it was written: cells, planes, dtypes."""

import numpy as np
import pytest

from pipeline import planes
from pipeline.encode import encode_clip
from pipeline.spec import GRID, TRACKS, cell_origin, cell_size


@pytest.mark.parametrize("size", [64, 128, 512])   # cells of 9, 18 and 73 px: odd and even
def test_cell_pooling_returns_the_red_statistics(speech, size):
  """Pooling a real clip's red plane onto the half-cells gives back its 94
  quantised statistics, median and mean apart, in track order."""
  from trainer.models import CellPooling

  clip = encode_clip(speech["en+m3"], size)
  pooled = np.asarray(CellPooling()(clip.image[None].astype(np.float32)))[0]
  assert pooled.shape == (GRID, 2 * GRID, 3)
  red = pooled[..., 0].reshape(GRID * GRID, 2)
  expected = planes.quantize(planes.to_unit(clip.descriptors.reshape(len(TRACKS), 2)))
  np.testing.assert_allclose(red[:len(TRACKS)], expected, atol=1e-3)
  assert (red[len(TRACKS):] == 0).all()                     # the spare cells
  # Blue: each half-cell average is the mean of that half of the track's patch.
  p = cell_size(size)
  for k in (0, 2, len(TRACKS) - 1):
    r, c = cell_origin(k, size)
    patch = clip.image[r:r + p, c:c + p, 2].astype(np.float64)
    np.testing.assert_allclose(pooled[k // GRID, 2 * (k % GRID):2 * (k % GRID) + 2, 2],
                               [patch[:, :p // 2].mean(), patch[:, p // 2:].mean()], rtol=1e-4)


@pytest.mark.parametrize("planes_", ["rgb", "r", "g", "b", "rg", "rb", "gb"])
def test_cells_model_takes_any_planes(planes_):
  """Each channel choice builds; the descriptor branch exists only with red or
  blue, the waveform branch only with green."""
  from trainer.models import build_model

  model = build_model("cells", 64, planes_, 5)
  names = {layer.name for layer in model.layers}
  assert ("cell_pool" in names) == any(c in planes_ for c in "rb")
  assert any(n.startswith("conv2d") for n in names) == ("g" in planes_)
  x = np.random.default_rng(0).integers(0, 256, (2, 64, 64, len(planes_))).astype(np.float32)
  probs = np.asarray(model(x, training=False))
  assert probs.shape == (2, 5) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_cells_model_ignores_pixels_outside_the_grid():
  """The margin right of and below the 7x7 grid carries nothing: red/blue
  values there must not change the prediction (green is the waveform and
  fills the plane, so it is left alone)."""
  from trainer.models import build_model

  model = build_model("cells", 64, "rb", 3)
  x = np.random.default_rng(1).integers(0, 256, (2, 64, 64, 2)).astype(np.float32)
  y = x.copy()
  edge = GRID * cell_size(64)
  y[:, edge:, :, :] = 255
  y[:, :, edge:, :] = 255
  np.testing.assert_allclose(model(x, training=False), model(y, training=False), atol=1e-6)


def test_unknown_planes_or_model_refused():
  from trainer.models import build_model

  with pytest.raises(ValueError, match="planes"):
    build_model("cells", 64, "rx", 3)
  with pytest.raises(ValueError, match="unknown model"):
    build_model("vgg", 64, "rgb", 3)
