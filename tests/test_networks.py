"""trainer.networks: each network builds from the spec, takes its planes, and
reads nothing the encoder did not write."""

import numpy as np
import pytest

from pipeline.encode import encode_clip
from pipeline.spec import DEFAULT_SPEC as S, GRID, TRACKS, cell_size


@pytest.mark.parametrize("planes_", ["rgb", "r", "g", "b", "rg", "rb", "gb"])
def test_cells_model_takes_any_planes(planes_):
  """Each channel choice builds; the descriptor branch exists only with red or
  blue, the waveform branch only with green."""
  from trainer.networks import build_model

  model = build_model("cells", S, 64, planes_, 5)
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
  from trainer.networks import build_model

  model = build_model("cells", S, 64, "rb", 3)
  x = np.random.default_rng(1).integers(0, 256, (2, 64, 64, 2)).astype(np.float32)
  y = x.copy()
  edge = GRID * cell_size(64)
  y[:, edge:, :, :] = 255
  y[:, :, edge:, :] = 255
  np.testing.assert_allclose(model(x, training=False), model(y, training=False), atol=1e-6)


def test_unknown_planes_or_model_refused():
  from trainer.networks import build_model

  with pytest.raises(ValueError, match="planes"):
    build_model("cells", S, 64, "rx", 3)
  with pytest.raises(ValueError, match="unknown model"):
    build_model("vgg", S, 64, "rgb", 3)


def test_cells_fuses_its_plane_groups():
  """Red/blue and green each give evidence; one plane group needs no fusion."""
  from trainer.heads import calibrate_fusion
  from trainer.layers import Fusion
  from trainer.networks import build_model

  assert any(isinstance(layer, Fusion) for layer in build_model("cells", S, 64, "rgb", 5).layers)
  for planes_ in ("rb", "g"):
    model = build_model("cells", S, 64, planes_, 5)
    assert calibrate_fusion(model, []) is None


def test_logmel_baseline_pools_statistics_over_time():
  """The TDNN baseline: frames in, one distribution over speakers out, through
  the mean and standard deviation over time of its last layer's 256 channels."""
  from trainer.networks import build_logmel_model

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

  from trainer.layers import TrackLevels
  from trainer.networks import TRACK_NAMES, build_model

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

  model = build_model("cells", S, 64, "rgb", 3, pooling="voiced")
  assert model.get_layer("soft_histogram").output.shape[-1] == 2 * 16
  x = rng.integers(0, 256, (2, 64, 64, 3)).astype(np.float32)
  model.save(tmp_path / "m.keras")
  again = keras.saving.load_model(tmp_path / "m.keras", compile=False)
  np.testing.assert_allclose(again(x, training=False), model(x, training=False), atol=1e-6)
  with pytest.raises(ValueError, match="pooling"):
    build_model("cells", S, 64, "rgb", 3, pooling="loud")


@pytest.mark.parametrize("size", [128, 512])
def test_recorded_pooling_leaves_out_a_short_clips_padding(speech, size, tmp_path):
  """pooling="recorded", 1.2 s of speech in a 4.096 s clip: the waveform's
  statistics are the mean and standard deviation over the frames that hold
  a recorded sample (a green pixel other than the encoder's silence), by
  their definition in numpy, and those frames end where the recording
  ends; each track's soft histogram and mean pool only the pixels of the
  frames the encoder measured (describe's tracks). The model saves and
  loads."""
  import keras

  from pipeline.features import describe
  from pipeline.planes import silence_pixel
  from trainer.networks import build_model

  x = speech["en+f3"][:int(1.2 * S.sample_rate)]
  image = encode_clip(x, size).image[None]
  model = build_model("cells", S, size, "rgb", 3, pooling="recorded")
  stats, hist, mean = (model.get_layer(n) for n in ("green_stats", "soft_histogram",
                                                    "course_mean"))
  probe = keras.Model(model.input, [*stats.input, stats.output, *hist.input, hist.output,
                                    mean.output])
  frames, mask, got, course, red, got_hist, got_mean = (
      np.asarray(v)[0] for v in probe(image.astype(np.float32), training=False))

  # A frame: 10 ms of filterbank steps, pooled twice by 2; each step `stride`
  # samples, each sample `pool` pixels.
  per = model.get_layer("green_waveform").pool(size) * model.get_layer("filterbank").strides[0]
  green = image[0, ..., 1].reshape(-1)[:len(mask) * per * 40].reshape(len(mask), -1)
  recorded = np.any(green != silence_pixel(S), axis=1)
  np.testing.assert_array_equal(mask[:, 0], recorded)
  last = np.flatnonzero(recorded)[-1] + 1
  assert abs(last * S.clip_seconds / len(mask) - 1.2) < 0.05 and not recorded[last:].any()
  kept = frames[recorded]
  np.testing.assert_allclose(got, np.concatenate([kept.mean(0), np.sqrt(kept.var(0) + 1e-5)]),
                             rtol=1e-4, atol=1e-5)

  defined = ~np.isnan(describe(x).tracks).all(axis=0)      # the frames measured
  pixels = course.shape[1]
  if pixels == S.clip_frames:                               # a pixel per frame
    measured = defined
  else:                                                     # pixels average frames
    measured = np.add.reduceat(defined, np.arange(pixels) * S.clip_frames // pixels) > 0
  assert 0 < measured.sum() < pixels / 2
  np.testing.assert_array_equal(course.max(axis=0) > 0, measured)
  np.testing.assert_allclose(got_mean[:, 0], course[:, measured].mean(axis=1), rtol=1e-5)
  layer = model.get_layer("soft_histogram")
  w, b, r = (np.asarray(v) for v in (layer.w, layer.b, layer.red))
  active = np.maximum(course[..., None] * w + b + (red @ r)[:, None, :], 0)
  np.testing.assert_allclose(got_hist, active[:, measured].mean(axis=1), rtol=1e-4, atol=1e-6)

  model.save(tmp_path / "m.keras")
  again = keras.saving.load_model(tmp_path / "m.keras", compile=False)
  np.testing.assert_allclose(again(image, training=False), model(image, training=False),
                             atol=1e-6)

  # On a GPU the model computes in bfloat16, in which the rescaled pixels 127
  # and 128 come within half a level of each other: the mask is read from
  # the stored values, in float32.
  keras.mixed_precision.set_global_policy("mixed_bfloat16")
  try:
    half = build_model("cells", S, size, "rgb", 3, pooling="recorded")
    half_mask = keras.Model(half.input, half.get_layer("green_stats").input[1])
    np.testing.assert_array_equal(np.asarray(half_mask(image.astype(np.float32)))[0], mask)
  finally:
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("clip_seconds,size", [(2.048, 256), (2.048, 64), (8.192, 512)])
def test_every_layer_that_reads_a_plane_is_built_from_the_datasets_spec(speech, clip_seconds,
                                                                        size):
  """A dataset of 2.048 s (or 8.192 s) clips: the network reads each cell
  with that spec's frames per clip (what the encoder wrote, value for
  value) and unfolds green at that spec's rate, not the default's."""
  import dataclasses

  import keras

  from pipeline import planes
  from pipeline.encode import encode_clip
  from pipeline.features import describe
  from trainer.networks import build_model

  spec = dataclasses.replace(S, clip_seconds=clip_seconds)
  x = np.tile(speech["en+f3"], 2)[:spec.clip_samples]
  image = encode_clip(x, size, spec).image
  model = build_model("cells", spec, size, "rgb", 3)
  reader = model.get_layer("cell_reader")
  green = model.get_layer("green_waveform")
  assert reader.frames == spec.clip_frames != S.clip_frames
  assert green.clip_seconds == clip_seconds and green.rate(size) <= spec.sample_rate
  cells = np.asarray(keras.Model(model.input, reader.output)(image[None].astype(np.float32)))[0]
  p = cell_size(size)
  if p * p >= spec.clip_frames:     # one value per frame: the quantised tracks (/ 255)
    np.testing.assert_allclose(cells[:, 2:] * 255,
                               planes.quantize(planes.to_unit(describe(x, spec).tracks)),
                               atol=1e-3)
  unfolded = np.asarray(keras.Model(model.input, green.output)(image[None].astype(np.float32)))
  assert unfolded.shape[1] == round(spec.green_rate(size) / green.pool(size) * clip_seconds)
