"""The models read the encoding as it was written: cells, planes, dtypes."""

import numpy as np
import pytest

from pipeline import planes
from pipeline.encode import encode_clip
from pipeline.spec import DEFAULT_SPEC as S, GRID, TRACKS, cell_origin, cell_size


@pytest.mark.parametrize("size", [64, 128, 256, 512])   # cells of 9, 18, 36 and 73 px
def test_cell_reader_returns_what_the_encoder_wrote(speech, size):
  """Reading a real clip's red and blue planes gives back, per track, its two
  quantised statistics and its quantised time course: one value per frame
  where cells hold every frame (256, 512 px), every pixel where pixels
  average frames (64, 128 px)."""
  from pipeline.features import describe
  from trainer.models import CellReader

  clip = encode_clip(speech["en+m3"], size)
  read = np.asarray(CellReader("rb", S.clip_frames)(clip.image[None][..., [0, 2]]
                                                    .astype(np.float32)))[0]
  expected = planes.quantize(planes.to_unit(clip.descriptors.reshape(len(TRACKS), 2)))
  np.testing.assert_array_equal(read[:, :2], expected)
  p = cell_size(size)
  if p * p >= S.clip_frames:
    tracks = planes.quantize(planes.to_unit(describe(speech["en+m3"]).tracks))
    np.testing.assert_array_equal(read[:, 2:], tracks)
  else:
    for k in (0, 2, len(TRACKS) - 1):
      r, c = cell_origin(k, size)
      np.testing.assert_array_equal(read[k, 2:], clip.image[r:r + p, c:c + p, 2].reshape(-1))


@pytest.mark.parametrize("planes_", ["rgb", "r", "g", "b", "rg", "rb", "gb"])
def test_cells_model_takes_any_planes(planes_):
  """Each channel choice builds; the descriptor branch exists only with red or
  blue, the waveform branch only with green."""
  from trainer.models import build_model

  model = build_model("cells", 64, planes_, 5)
  names = {layer.name for layer in model.layers}
  assert ("cell_reader" in names) == any(c in planes_ for c in "rb")
  assert ("green_waveform" in names) == ("g" in planes_)
  assert model.get_layer("embedding") is not None
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


@pytest.mark.parametrize("size", [64, 256, 512])
def test_green_waveform_reads_back_the_encoded_clip(speech, size):
  """The waveform branch's input is the clip: the green plane unfolded in
  raster order, the encoder's mu-law undone, averaged down to at most 16 kHz."""
  from trainer.models import GreenWaveform

  image = encode_clip(speech["en+f3"], size).image
  layer = GreenWaveform()
  got = np.asarray(layer(image[None, ..., 1:2].astype(np.float32) / 255.0))[0, :, 0]
  linear = planes._from_pixels(image[..., 1].reshape(-1), S)        # raster order
  pool = layer.pool(size)
  assert pool == max(1, size * size // S.clip_samples) and layer.rate(size) <= S.sample_rate
  np.testing.assert_allclose(got, linear.reshape(-1, pool).mean(axis=1), atol=2e-5)


def test_fusion_weights_follow_the_evidence_that_generalises(tmp_path):
  """Two groups' evidence: one names the speaker, one is confident and
  wrong. Fitted on held-out clips, the fusion keeps the first and all but
  drops the second; the weights survive saving and loading the model."""
  import keras
  import tensorflow as tf

  from trainer.models import Fusion, calibrate_fusion

  rng = np.random.default_rng(0)
  classes, n = 4, 200
  y = rng.integers(0, classes, n)
  good = 3.0 * np.eye(classes)[y] + rng.normal(size=(n, classes))
  bad = 6.0 * np.eye(classes)[rng.integers(0, classes, n)]
  a, b = keras.Input((classes,)), keras.Input((classes,))
  model = keras.Model([a, b], keras.layers.Activation("softmax", name="speaker")(
      Fusion(name="fusion")([a, b])))
  held_out = tf.data.Dataset.from_tensor_slices(
      ((good.astype(np.float32), bad.astype(np.float32)), y)).batch(32)
  w = calibrate_fusion(model, held_out)
  assert w[0] > 1.0 and w[1] < 0.1 * w[0]
  probs = np.asarray(model.predict([good, bad], verbose=0))
  assert (probs.argmax(axis=1) == y).mean() > 0.9
  model.save(tmp_path / "m.keras")
  again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
  np.testing.assert_allclose(again.get_layer("fusion").scale.numpy(), w, rtol=1e-6)


def test_cells_fuses_its_plane_groups():
  """Red/blue and green each give evidence; one plane group needs no fusion."""
  from trainer.models import Fusion, build_model, calibrate_fusion

  assert any(isinstance(layer, Fusion) for layer in build_model("cells", 64, "rgb", 5).layers)
  for planes_ in ("rb", "g"):
    model = build_model("cells", 64, planes_, 5)
    assert calibrate_fusion(model, []) is None


def test_logmel_baseline_pools_statistics_over_time():
  """The TDNN baseline: frames in, one distribution over speakers out, through
  the mean and standard deviation over time of its last layer's 256 channels."""
  from trainer.models import build_logmel_model

  model = build_logmel_model(64, 100, 5)
  x = np.random.default_rng(0).normal(size=(2, 64, 100, 1)).astype(np.float32)
  probs = np.asarray(model(x, training=False))
  assert probs.shape == (2, 5) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
  assert model.get_layer("statistics").output.shape == (None, 2 * 256)


def test_voiced_pooling_averages_over_the_frames_with_pitch(tmp_path):
  """pooling="voiced": each track's soft histogram over all frames, then over
  the frames where the pitch track is defined (non-zero), by its definition
  in numpy; the model doubles the histogram's width and saves and loads."""
  import keras

  from trainer.models import TRACK_NAMES, TrackLevels, build_model

  rng = np.random.default_rng(4)
  course = rng.uniform(0, 1, (3, len(TRACKS), 50)).astype(np.float32)
  pitch = TRACK_NAMES.index("f0")
  course[:, pitch, rng.uniform(size=50) < 0.4] = 0.0      # unvoiced frames
  course[2, pitch] = 0.0                                  # a clip with no voiced frame
  red = rng.uniform(0, 1, (3, len(TRACKS), 2)).astype(np.float32)
  layer = TrackLevels(4, voiced_track=pitch)
  got = np.asarray(layer([course, red]))
  w, b, r = (np.asarray(v) for v in (layer.w, layer.b, layer.red))
  active = np.maximum(course[..., None] * w + b + (red @ r)[:, :, None, :], 0)
  voiced = (course[:, pitch:pitch + 1, :] > 0)[..., None]
  over_voiced = (active * voiced).sum(axis=2) / (voiced.sum(axis=2) + 1)
  np.testing.assert_allclose(got, np.concatenate([active.mean(axis=2), over_voiced], -1),
                             rtol=1e-5, atol=1e-6)
  assert np.all(got[2, :, 4:] == 0)

  model = build_model("cells", 64, "rgb", 3, pooling="voiced")
  assert model.get_layer("soft_histogram").output.shape[-1] == 2 * 16
  x = rng.integers(0, 256, (2, 64, 64, 3)).astype(np.float32)
  model.save(tmp_path / "m.keras")
  again = keras.saving.load_model(tmp_path / "m.keras", compile=False)
  np.testing.assert_allclose(again(x, training=False), model(x, training=False), atol=1e-6)
  with pytest.raises(ValueError, match="pooling"):
    build_model("cells", 64, "rgb", 3, pooling="loud")
