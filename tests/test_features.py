"""Frame features recomputed against librosa and against signals with known answers."""

import librosa
import numpy as np
import pytest
import scipy.fft

from pipeline import features
from pipeline.audio import load_audio
from pipeline.spec import DEFAULT_SPEC, TRACK_INDEX
from tests.helpers import SR, tone

S = DEFAULT_SPEC


def _spectra(x):
  """Our shared STFT, rebuilt with librosa: centred frames, 640-window in a 1024 FFT."""
  stft = librosa.stft(x, n_fft=S.n_fft, hop_length=S.hop_length, win_length=S.win_length,
                      window="hann", center=True, pad_mode="constant")
  return np.abs(stft), np.abs(stft) ** 2


def test_spectral_shape_matches_librosa(speech):
  x = speech["en+f3"][:S.clip_samples]
  mag, power = _spectra(x)
  d = features.describe(x)
  active = ~np.isnan(d.tracks[TRACK_INDEX["rms"]])
  n = mag.shape[1]
  act = active[:n]
  ref = {
      "centroid": librosa.feature.spectral_centroid(S=mag, sr=SR, n_fft=S.n_fft)[0],
      "bandwidth": librosa.feature.spectral_bandwidth(S=mag, sr=SR, n_fft=S.n_fft)[0],
      "rolloff": librosa.feature.spectral_rolloff(S=mag, sr=SR, n_fft=S.n_fft)[0],
      "flatness": 10 * np.log10(librosa.feature.spectral_flatness(S=mag)[0]),
  }
  for name, want in ref.items():
    got = d.tracks[TRACK_INDEX[name], :n][act]
    atol = SR / S.n_fft if name == "rolloff" else 0.5   # one bin: see the real-speech test
    np.testing.assert_allclose(got, want[act], rtol=2e-3, atol=atol, err_msg=name)


def test_mfcc_chroma_contrast_match_librosa(speech):
  x = speech["en+m3"][:S.clip_samples]
  mag, power = _spectra(x)
  d = features.describe(x)
  act = ~np.isnan(d.tracks[TRACK_INDEX["rms"], :mag.shape[1]])
  mel = librosa.feature.melspectrogram(S=power, sr=SR, n_mels=S.n_mels)
  mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel, top_db=None), n_mfcc=S.n_mfcc)
  chroma = librosa.feature.chroma_stft(S=power, sr=SR, tuning=0.0)
  contrast = librosa.feature.spectral_contrast(S=mag, sr=SR, fmin=S.contrast_fmin, n_bands=6)
  # Contrast takes dB of near-empty high-band bins, where float32 rounding shows.
  for first, want, atol in (("mfcc0", mfcc, 0.05), ("chroma_C", chroma, 0.01),
                            ("contrast0", contrast, 1.0)):
    k = TRACK_INDEX[first]
    got = d.tracks[k:k + len(want), :mag.shape[1]][:, act]
    np.testing.assert_allclose(got, want[:, act], rtol=1e-3, atol=atol, err_msg=first)


@pytest.mark.parametrize("f0", [80.0, 110.0, 220.0, 410.0, 580.0])
def test_pitch_of_harmonic_tone(f0):
  # A voice-like harmonic complex with decaying harmonics.
  x = sum(tone(f0 * h, 1.5, amp=0.4 / h) for h in range(1, 8) if f0 * h < SR / 2)
  d = features.describe(x)
  f0_track = d.tracks[TRACK_INDEX["f0"]]
  voiced = f0_track[~np.isnan(f0_track)]
  assert len(voiced) > 100
  assert np.median(voiced) == pytest.approx(f0, rel=0.01)


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_hnr_of_tone_in_white_noise(snr_db):
  rng = np.random.default_rng(1)
  x = tone(200.0, 2.0, amp=0.3)
  noise_std = np.sqrt(0.3 ** 2 / 2 / 10 ** (snr_db / 10))
  x = x + rng.normal(0, noise_std, len(x)).astype(np.float32)
  d = features.describe(x)
  hnr = d.descriptors[2 * TRACK_INDEX["hnr"]]  # median
  assert hnr == pytest.approx(snr_db, abs=1.5)


def test_rms_and_zcr_of_a_sine():
  d = features.describe(tone(1000.0, 1.0, amp=0.5))
  rms_median = d.descriptors[2 * TRACK_INDEX["rms"]]
  zcr_median = d.descriptors[2 * TRACK_INDEX["zcr"]]
  assert rms_median == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.1)
  assert zcr_median == pytest.approx(2 * 1000 / SR, abs=0.004)


def test_silence_and_unvoiced_frames_stay_undefined():
  rng = np.random.default_rng(0)
  x = np.concatenate([tone(150.0, 1.0), np.zeros(SR, np.float32),
                      rng.normal(0, 0.1, SR).astype(np.float32)])
  d = features.describe(x)
  frames = lambda a, b: slice(int(a * 100) + 3, int(b * 100) - 3)
  rms, f0 = d.tracks[TRACK_INDEX["rms"]], d.tracks[TRACK_INDEX["f0"]]
  assert not np.isnan(f0[frames(0, 1)]).any()          # tone: voiced
  assert np.isnan(rms[frames(1, 2)]).all()             # silence: inactive
  assert not np.isnan(rms[frames(2, 3)]).any()         # noise: active ...
  assert np.isnan(f0[frames(2, 3)]).mean() > 0.9       # ... but unvoiced
  assert np.isnan(rms[frames(3, 4.096)]).all()         # beyond the audio: padding


def test_autocorrelation_needs_no_wrap():
  # The FFT is long enough that |X|^2 -> irfft is the linear autocorrelation.
  x = np.random.default_rng(0).normal(size=S.win_length).astype(np.float32)
  circular = scipy.fft.irfft(np.abs(scipy.fft.rfft(x, n=S.n_fft)) ** 2, n=S.n_fft)
  linear = np.correlate(x, x, "full")[S.win_length - 1:]
  lag_hi = int(S.sample_rate / S.f0_min) + 2
  np.testing.assert_allclose(circular[:lag_hi], linear[:lag_hi], rtol=1e-4, atol=1e-3)


def test_spectral_descriptors_match_librosa_on_real_speech(real_speech):
  """Centroid, bandwidth, rolloff, flatness, MFCC, chroma and contrast of 20
  real voices against librosa on the same STFT, active frames only.
  Tolerances: spectral shape 0.2 % (+0.5 Hz / 0.5 dB), rolloff one FFT bin
  (15.6 Hz: where the 85 % crossing falls between two bins, float32
  rounding of the magnitudes picks either), MFCC 0.05 dB, chroma 0.01,
  contrast 1 dB where the band's valley is above float32 rounding (a lossy
  encoder may empty a band: both sides then take dB of noise)."""
  import glob

  speakers = sorted(glob.glob(str(real_speech / "klettres" / "*")))
  paths = [p for s in speakers for p in sorted(glob.glob(f"{s}/*/*.ogg"))[::17][:2]]
  assert len(paths) == 40
  for path in paths:
    x = load_audio(path)[:S.clip_samples]
    mag, power = _spectra(x)
    d = features.describe(x)
    act = ~np.isnan(d.tracks[TRACK_INDEX["rms"], :mag.shape[1]])
    if act.sum() < 5:
      continue
    reference = _librosa_reference(mag, power, SR)
    lossless = _bands_above_rounding(mag)
    for first, (want, rtol, atol) in reference.items():
      k = TRACK_INDEX[first]
      got = d.tracks[k:k + len(want), :mag.shape[1]][:, act]
      keep = lossless[:, act] if first == "contrast0" else np.ones_like(got, bool)
      np.testing.assert_allclose(got[keep], want[:, act][keep], rtol=rtol, atol=atol,
                                 err_msg=f"{first} on {path}")


def _librosa_reference(mag, power, rate):
  """First track name -> (librosa's tracks from these spectra at `rate`
  (the FFT length follows from their bins), rtol, atol)."""
  mel = librosa.feature.melspectrogram(S=power, sr=rate, n_mels=S.n_mels)
  return {
      "centroid": (librosa.feature.spectral_centroid(S=mag, sr=rate), 2e-3, 0.5),
      "bandwidth": (librosa.feature.spectral_bandwidth(S=mag, sr=rate), 2e-3, 0.5),
      "rolloff": (librosa.feature.spectral_rolloff(S=mag, sr=rate), 0, SR / S.n_fft),
      "flatness": (10 * np.log10(librosa.feature.spectral_flatness(S=mag)), 2e-3, 0.5),
      "mfcc0": (librosa.feature.mfcc(S=librosa.power_to_db(mel, top_db=None),
                                     n_mfcc=S.n_mfcc), 1e-3, 0.05),
      "chroma_C": (librosa.feature.chroma_stft(S=power, sr=rate, tuning=0.0), 1e-3, 0.01),
      "contrast0": (librosa.feature.spectral_contrast(S=mag, sr=rate, fmin=S.contrast_fmin,
                                                      n_bands=6), 1e-3, 1.0),
  }


def _bands_above_rounding(mag, band=S.sample_rate / 2):
  """(7, frames): contrast bands whose quietest 2 % of bins stand clear of
  float32 rounding (1e-6 of the frame's peak); a band above `band` (None
  in the analysis) is not."""
  bands = features._analysis(S, band).contrast_bands
  out = np.zeros((len(bands), mag.shape[1]), bool)
  for k, (first, end, q) in enumerate(b for b in bands if b is not None):
    valley = np.sort(mag[first:end], axis=0)[:q].mean(axis=0)
    out[k] = valley > 1e-6 * mag.max(axis=0)
  return out


def test_a_narrowband_recording_is_described_as_librosa_would_at_its_own_rate(speech):
  """An 8 kHz recording, brought to the working rate, is described over
  0-4 kHz: its spectral descriptors are librosa's on the FFT bins up to
  4 kHz, that is on the STFT it would have at 8 kHz with a 512-point FFT
  (the same 15.6 Hz bins); the resampler's empty stop band above weighs in
  none of them. Pitch, HNR, level and zero crossings do not depend on the band."""
  from pipeline.audio import resample, to_working_rate

  rate, band = 8000, 4000.0
  x = to_working_rate(resample(speech["en+f3"], SR, rate), rate)[:S.clip_samples]
  mag, power = _spectra(x)
  bins = S.n_fft * rate // (2 * SR) + 1          # 0 Hz to 4 kHz
  mag, power = mag[:bins], power[:bins]
  d = features.describe(x, band=band)
  act = ~np.isnan(d.tracks[TRACK_INDEX["rms"], :mag.shape[1]])
  lossless = _bands_above_rounding(mag, band)
  assert lossless[:, act].mean() > 0.95
  for first, (want, rtol, atol) in _librosa_reference(mag, power, rate).items():
    k = TRACK_INDEX[first]
    got = d.tracks[k:k + len(want), :mag.shape[1]][:, act]
    keep = lossless[:, act] if first == "contrast0" else np.ones_like(got, bool)
    np.testing.assert_allclose(got[keep], want[:, act][keep], rtol=rtol, atol=atol,
                               err_msg=first)
  whole = features.describe(x)                   # the same clip over the working band
  for name in ("f0", "hnr", "rms", "zcr"):
    np.testing.assert_array_equal(d.tracks[TRACK_INDEX[name]], whole.tracks[TRACK_INDEX[name]])
  flatness = 2 * TRACK_INDEX["flatness"]
  assert whole.descriptors[flatness] < -45 < d.descriptors[flatness]   # not the empty band's


def test_a_band_under_an_octave_edge_leaves_those_contrast_bands_undefined(speech):
  """A 4 kHz recording holds 0-2 kHz: contrast's 1.6-3.2 kHz band is read
  to 2 kHz, the band above 3.2 kHz does not exist (NaN, as pitch is where
  there is no voice), and a working-band clip keeps all seven."""
  x = speech["en+m3"][:S.clip_samples]
  c0 = TRACK_INDEX["contrast0"]
  narrow = features.describe(x, band=2000.0).descriptors.reshape(-1, 2)[c0:c0 + 7]
  assert np.isfinite(narrow[:6]).all() and np.isnan(narrow[6]).all()
  assert np.isfinite(features.describe(x).descriptors.reshape(-1, 2)[c0:c0 + 7]).all()
  np.testing.assert_array_equal(features.describe(x, band=8000.0).tracks,
                                features.describe(x).tracks)


def test_statistics_are_numpys_median_and_mean():
  """One sort gives every track's median: the same values np.median gives,
  f0 and HNR over their defined (voiced) frames only, NaN when there are none."""
  rng = np.random.default_rng(0)
  f0, hnr = TRACK_INDEX["f0"], TRACK_INDEX["hnr"]
  for n in (0, 1, 2, 7, 40):
    values = rng.normal(size=(len(features.TRACKS), n)).astype(np.float32).round(1)
    values[f0, rng.random(n) < 0.5] = np.nan
    values[hnr] = np.nan
    stats = features._statistics(values).reshape(-1, 2)
    for k in range(len(values)):
      row = values[k][~np.isnan(values[k])] if k in (f0, hnr) else values[k]
      expected = (np.median(row), row.mean()) if row.size else (np.nan, np.nan)
      np.testing.assert_array_equal(stats[k], np.float32(expected), err_msg=f"n={n} track {k}")


def test_rolloff_is_the_first_bin_where_the_running_sum_reaches_85_percent(speech):
  """The compiled rolloff search finds, bit for bit, the bin
  np.argmax(np.cumsum(mag, 1) >= 0.85 * total) finds: on real spectra, on
  random ones, with silent and single-bin frames."""
  from pipeline.compiled import compiled
  from pipeline.features import _rolloff_bins
  rng = np.random.default_rng(0)
  x = speech["en+f3"][:SR]
  frames = np.lib.stride_tricks.sliding_window_view(x, S.win_length)[::S.hop_length]
  real = np.abs(np.fft.rfft(frames * np.hanning(S.win_length), S.n_fft)).astype(np.float32)
  cases = [real, rng.random((1, 513), dtype=np.float32) ** 8,
           np.zeros((3, 513), np.float32), np.eye(5, 513, 200, dtype=np.float32)]
  for mag in cases:
    cum = np.cumsum(mag, axis=1)
    expected = np.argmax(cum >= 0.85 * cum[:, -1:], axis=1)
    got = compiled(_rolloff_bins)(np.ascontiguousarray(mag.T), np.float32(0.85))
    np.testing.assert_array_equal(got, expected)
  np.testing.assert_array_equal(got, np.arange(200, 205))   # one bin each: that bin
  assert len(np.unique(compiled(_rolloff_bins)(np.ascontiguousarray(real.T),
                                               np.float32(0.85)))) > 10
