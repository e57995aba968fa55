"""The RGB layout of docs/encoding.md, recomputed from audio."""

import math
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pipeline.audio import AudioError
from pipeline.encode import decode_green, encode, encode_clip, main, si_snr
from pipeline.audio import load_audio, resample, to_working_rate
from pipeline.spec import DEFAULT_SPEC, GRID, cell_origin, cell_size
from tests.helpers import SR, tone, write_wav

S = DEFAULT_SPEC


def f0_pixel(hz):
  """Spec: f0 on a log scale over 75..600 Hz, defined values 1..255."""
  return 1 + round(254 * math.log(hz / 75) / math.log(8))


def cell(plane, name, size):
  r, c = cell_origin(name, size)
  p = cell_size(size)
  return plane[r:r + p, c:c + p]


@pytest.mark.parametrize("size", [64, 128, 256, 512])
def test_tone_pitch_lands_in_red_f0_cell(size):
  image = encode(tone(150.0, 2.0), SR, size)
  assert image.shape == (size, size, 3) and image.dtype == np.uint8
  f0 = cell(image[..., 0], "f0", size)
  p = cell_size(size)
  assert (f0[:, :p // 2] == f0_pixel(150.0)).all()   # median
  assert (f0[:, p // 2:] == f0_pixel(150.0)).all()   # mean
  assert (image[GRID * p:, :, 0] == 0).all()          # margin below the grid


def test_red_cells_follow_the_track_order():
  image = encode(tone(300.0, 2.0), SR, 256)
  red = image[..., 0]
  for name in ("f0", "hnr", "rms", "mfcc0", "chroma_B"):
    values = np.unique(cell(red, name, 256))
    assert len(values) <= 2 and values.min() > 0, name   # median | mean halves
  spare = red[6 * cell_size(256):7 * cell_size(256), 5 * cell_size(256):7 * cell_size(256)]
  assert (spare == 0).all()   # 47 tracks, cells 47 and 48 unused


def test_blue_f0_patch_moves_with_pitch():
  x = np.concatenate([tone(100.0, 2.048), tone(400.0, 2.048)])
  image = encode(x, SR, 256)
  patch = cell(image[..., 2], "f0", 256).reshape(-1)   # row-major time
  half = len(patch) // 2
  low, high = np.median(patch[:half - 40]), np.median(patch[half + 40:])
  assert low == pytest.approx(f0_pixel(100.0), abs=1)
  assert high == pytest.approx(f0_pixel(400.0), abs=1)
  # Swap the halves: the patch content moves, the red statistics do not.
  swapped = encode(np.concatenate([tone(400.0, 2.048), tone(100.0, 2.048)]), SR, 256)
  patch2 = cell(swapped[..., 2], "f0", 256).reshape(-1)
  assert np.median(patch2[:half - 40]) == pytest.approx(f0_pixel(400.0), abs=1)
  np.testing.assert_array_equal(cell(image[..., 0], "f0", 256)[:, 20:],
                                cell(swapped[..., 0], "f0", 256)[:, 20:])


@pytest.mark.parametrize("size", [64, 128, 512])
def test_planes_written_into_the_image_equal_planes_on_their_own(speech, size):
  """encode_clip writes each plane straight into its channel of the image;
  the planes built alone are the same, and nothing left in a reused buffer
  survives in the margins or spare cells."""
  from pipeline import planes
  from pipeline.features import describe
  x = speech["en+f3"][:S.clip_samples]
  d = describe(x)
  image = encode_clip(x, size).image
  alone = [planes.red_plane(d.descriptors, size), planes.green_plane(x, size),
           planes.blue_plane(d.tracks, size)]
  dirty = np.full((size, size, 3), 77, np.uint8)
  planes.red_plane(d.descriptors, size, out=dirty[..., 0])
  planes.green_plane(x, size, out=dirty[..., 1])
  planes.blue_plane(d.tracks, size, out=dirty[..., 2])
  for c in range(3):
    np.testing.assert_array_equal(image[..., c], alone[c])
    np.testing.assert_array_equal(dirty[..., c], alone[c])


def test_blue_is_zero_where_there_is_no_speech():
  image = encode(tone(200.0, 1.0), SR, 256)      # 1 s of 4.096 s: the rest is padding
  patch = cell(image[..., 2], "rms", 256).reshape(-1)
  filled = len(patch) * 1.0 / S.clip_seconds
  assert (patch[:int(filled) - 20] > 0).all()
  assert (patch[int(filled) + 20:] == 0).all()


@pytest.mark.parametrize("size", [256, 512])
def test_green_decodes_back_to_the_speech(speech, size):
  x = speech["en+f3"][:3 * SR]                     # shorter than a clip: padded
  y, rate = decode_green(encode(x, SR, size))
  assert rate == SR and len(y) == S.clip_samples
  assert si_snr(x, y[:len(x)]) >= 35.0
  assert np.abs(y[len(x) + 200:]).max() < 1e-3     # padding decodes to silence


def test_green_of_small_images_holds_the_downsampled_clip(speech):
  x = speech["en+m3"][:S.clip_samples]
  y, rate = decode_green(encode(x, SR, 128))
  assert rate == 128 * 128 / S.clip_seconds == 4000
  assert si_snr(resample(x, SR, rate), y) >= 25.0


def test_green_pixel_order_is_row_major():
  x = np.zeros(S.clip_samples, np.float32)
  x[: S.clip_samples // 2] = tone(250.0, 2.048)       # sound in the first half only (whole
                                                       # cycles: no offset to remove)
  green = encode(x, SR, 256)[..., 1].astype(int)
  assert np.abs(green[:120] - 128).max() > 50          # first rows carry the tone
  assert np.abs(green[136:] - 128).max() <= 1          # last rows: silence


def test_a_dc_offset_changes_nothing_and_alone_is_silence(speech):
  """The recording's mean is removed before anything else: an offset does
  not reach the descriptors or the waveform, and an offset alone is no sound."""
  x = speech["en+m3"][:S.clip_samples]
  x = x - x.mean()
  plain = encode_clip(to_working_rate(x, SR), 128)
  offset = encode_clip(to_working_rate(x + 0.2, SR), 128)
  # Rounding only (the offset is removed in float32): 0.1 %, or 0.05 for values near 0.
  np.testing.assert_allclose(offset.descriptors, plain.descriptors, rtol=1e-3, atol=0.05)
  assert np.abs(offset.image[..., 1].astype(int) - plain.image[..., 1]).max() <= 1
  with pytest.raises(AudioError) as e:
    encode(np.full(SR, 0.3, np.float32), SR, 128)
  assert e.value.reason == "silent" and "constant" in e.value.detail


def test_two_voices_differ_in_red_and_blue(speech):
  low = encode(speech["en+m3"], SR, 256)
  high = encode(speech["en+f3"], SR, 256)
  f0_low = cell(low[..., 0], "f0", 256)[0, 0]
  f0_high = cell(high[..., 0], "f0", 256)[0, 0]
  assert int(f0_high) - int(f0_low) > 40                # clearly higher pitch
  assert np.mean(low[..., 0] != high[..., 0]) > 0.3
  assert np.mean(cell(high[..., 2], "f0", 256)) > np.mean(cell(low[..., 2], "f0", 256))


def test_encode_resamples_any_rate(speech):
  x = speech["en+f3"]
  at_44k = resample(x, SR, 44100)
  a, b = encode(x, SR, 256), encode(at_44k, 44100, 256)
  assert abs(int(cell(a[..., 0], "f0", 256)[0, 0]) - int(cell(b[..., 0], "f0", 256)[0, 0])) <= 1
  assert encode_clip(x, 256).descriptors.shape == (94,)


@pytest.mark.parametrize("waveform,rate,reason", [
    (np.zeros(0, np.float32), SR, "empty"),
    (np.zeros(SR, np.float32), SR, "silent"),
    (tone(200.0, 0.2), SR, "too_short"),
    (np.full(SR, np.nan, np.float32), SR, "non_finite"),
    (np.where(np.arange(SR) == 777, np.inf, tone(200.0, 1.0)).astype(np.float32), SR,
     "non_finite"),
    (np.where(np.arange(SR) % 5000 == 1, np.inf, 1) * np.where(np.arange(SR) % 10000 == 1, -1, 1)
     * tone(200.0, 1.0), SR, "non_finite"),                 # +inf and -inf: a sum of NaN
    (tone(200.0, 1.0), 0, "zero_rate"),
])
def test_bad_waveforms_raise_typed_errors(waveform, rate, reason):
  with pytest.raises(AudioError) as err:
    encode(waveform, rate, 64)
  assert err.value.reason == reason


def test_core_imports_neither_tensorflow_nor_beam():
  code = ("import sys, pipeline.encode; "
          "print(any(m in sys.modules for m in ('tensorflow', 'apache_beam')))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == "False"


def test_numba_is_imported_on_the_first_encoding_not_with_the_encoder():
  code = ("import sys, numpy as np, pipeline.encode as e; before = 'numba' in sys.modules; "
          "t = np.arange(16000) / 16000; "
          "e.encode((0.3 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), 16000, 64); "
          "print(before, 'numba' in sys.modules)")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.split() == ["False", "True"]


def test_cli_writes_one_png_per_clip_and_reports_failures(tmp_path, speech, capsys):
  long = np.concatenate([speech["en+m3"], speech["en+f3"]])       # ~10 s: 3 clips
  write_wav(tmp_path / "in" / "a b.wav", long)
  (tmp_path / "in" / "broken.wav").write_bytes(b"RIFF\x00\x00garbage")
  code = main([str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--image_size", "64"])
  out, err = capsys.readouterr()
  pngs = sorted((tmp_path / "out").glob("*.png"))
  n_clips = math.ceil(len(long) / S.clip_samples)
  assert code == 1 and len(pngs) == n_clips == len(out.strip().splitlines())
  assert "broken.wav" in err and "corrupt" in err
  first = np.asarray(Image.open(pngs[0]))
  decoded = load_audio(str(tmp_path / "in" / "a b.wav"))      # 16-bit PCM on disk
  np.testing.assert_array_equal(first, encode_clip(decoded[:S.clip_samples], 64).image)


def test_cli_missing_path_is_a_one_line_error(tmp_path):
  out = subprocess.run([sys.executable, "-m", "pipeline.encode", str(tmp_path / "nope"),
                        "--out", str(tmp_path)], capture_output=True, text=True)
  assert out.returncode == 2 and "no such file" in out.stderr
  assert "Traceback" not in out.stderr


def test_view_draws_any_clip_or_image_and_refuses_what_it_cannot(tmp_path, speech, capsys):
  from pipeline import view

  wav = write_wav(tmp_path / "speech.wav", speech["en+f3"])
  assert view.main([str(wav), "--out", str(tmp_path / "a.png"), "--image_size", "128"]) == 0
  drawn = Image.open(tmp_path / "a.png")
  assert drawn.size[0] > 3 * drawn.size[1]                      # four panels side by side
  Image.fromarray(encode(speech["en+f3"], SR, image_size=64)).save(tmp_path / "clip.png")
  assert view.main([str(tmp_path / "clip.png"), "--out", str(tmp_path / "b.png")]) == 0
  for argv, message in (([str(tmp_path / "nope.wav")], "no such file"),
                        ([str(wav), "--clip", "9"], "clip(s)")):
    with pytest.raises(SystemExit) as e:
      view.main(argv + ["--out", str(tmp_path / "c.png")])
    assert e.value.code == 2 and message in capsys.readouterr().err
