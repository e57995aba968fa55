"""trainer.layers read the encoding as it was written, with the dataset's spec."""

import numpy as np
import pytest

from pipeline import planes
from pipeline.encode import encode_clip
from pipeline.spec import DEFAULT_SPEC as S, TRACKS, cell_origin, cell_size


@pytest.mark.parametrize("size", [64, 128, 256, 512])   # cells of 9, 18, 36 and 73 px
def test_cell_reader_returns_what_the_encoder_wrote(speech, size):
  """Reading a real clip's red and blue planes gives back, per track, its two
  quantised statistics and its quantised time course: one value per frame
  where cells hold every frame (256, 512 px), every pixel where pixels
  average frames (64, 128 px)."""
  from pipeline.features import describe
  from trainer.layers import CellReader

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


@pytest.mark.parametrize("size", [64, 256, 512])
def test_green_waveform_reads_back_the_encoded_clip(speech, size):
  """The waveform branch's input is the clip: the green plane unfolded in
  raster order, the encoder's mu-law undone, averaged down to at most 16 kHz."""
  from trainer.layers import GreenWaveform

  image = encode_clip(speech["en+f3"], size).image
  layer = GreenWaveform.for_spec(S)
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

  from trainer.heads import calibrate_fusion
  from trainer.layers import Fusion

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
