"""Decoding files of every common kind, and cutting recordings into clips."""

import dataclasses

import numpy as np
import pytest
import soundfile as sf

from pipeline.audio import AudioError, load_audio, load_recording
from pipeline.clips import clips_of, segment
from pipeline.spec import DEFAULT_SPEC
from tests.helpers import SR, tone, write_compressed, write_wav

S = DEFAULT_SPEC


@pytest.mark.parametrize("fmt,subtype,rate,channels", [
    ("WAV", "PCM_16", 44100, 2),
    ("WAV", "PCM_U8", 8000, 1),
    ("WAV", "PCM_24", 48000, 1),
    ("WAV", "FLOAT", 22050, 1),
    ("FLAC", "PCM_16", 16000, 1),
    ("OGG", "VORBIS", 32000, 2),
    ("MP3", "MPEG_LAYER_III", 24000, 1),
])
def test_formats_rates_and_channels_decode_to_16k_mono(tmp_path, fmt, subtype, rate, channels):
  x = tone(440.0, 1.0, amp=0.5, sr=rate)
  data = np.stack([x] * channels, axis=1) if channels > 1 else x
  path = tmp_path / f"a.{fmt.lower()}"
  sf.write(str(path), data, rate, format=fmt, subtype=subtype)
  y = load_audio(str(path))
  assert y.dtype == np.float32 and y.ndim == 1
  assert abs(len(y) - SR) < 0.06 * SR                       # codecs may pad a little
  spectrum = np.abs(np.fft.rfft(y))
  assert np.argmax(spectrum) * SR / len(y) == pytest.approx(440.0, abs=3)
  # The file's own rate is kept: with band_limit="recording" its clips are
  # described up to its Nyquist frequency, at most the working rate's.
  assert load_recording(str(path)).source_rate == rate
  assert [c.band for c in clips_of(str(path))] == [SR / 2]
  own = dataclasses.replace(S, band_limit="recording")
  assert [c.band for c in clips_of(str(path), own)] == [min(rate, SR) / 2]


@pytest.mark.parametrize("name,codec,container,rate,channels", [
    ("voxceleb2.m4a", "aac", "mp4", 16000, 1),       # VoxCeleb2's own format
    ("stereo.m4a", "aac", "mp4", 44100, 2),
    ("talk.mp4", "aac", "mp4", 48000, 1),
    ("raw.aac", "aac", "adts", 22050, 1),
    ("voice.webm", "libopus", "webm", 48000, 1),
])
def test_compressed_containers_decode_through_ffmpeg(tmp_path, speech, name, codec, container,
                                                     rate, channels):
  """Real speech encoded by FFmpeg's encoders comes back at 16 kHz, the same
  length give or take the codec's priming, and the same signal."""
  from pipeline.audio import resample

  x = resample(speech["en+f3"], SR, rate)
  path = write_compressed(tmp_path / name, x, rate, codec, container, channels)
  y, source_rate = load_recording(str(path))
  assert source_rate == rate
  reference = load_audio(str(write_wav(tmp_path / "reference.wav", x, rate)))
  assert y.dtype == np.float32 and y.ndim == 1
  assert abs(len(y) - len(reference)) < 0.1 * SR              # priming and padding only
  # Aligned on their cross-correlation, the lossy copy follows the original.
  n = len(reference) - SR // 4
  lags = [np.dot(y[k:k + n], reference[:n]) for k in range(0, SR // 8)]
  k = int(np.argmax(lags))
  snr = 10 * np.log10(np.sum(reference[:n] ** 2) / np.sum((y[k:k + n] - reference[:n]) ** 2))
  assert snr > 10.0, (k, snr)


def test_a_truncated_or_damaged_container_is_reported_not_fatal(tmp_path, speech):
  whole = write_compressed(tmp_path / "whole.m4a", speech["en+m3"], SR).read_bytes()
  (tmp_path / "garbled.m4a").write_bytes(whole[:8] + np.random.default_rng(1).bytes(4000))
  with pytest.raises(AudioError) as err:
    load_audio(str(tmp_path / "garbled.m4a"))
  assert err.value.reason == "corrupt"
  video_only = tmp_path / "no_audio.mp4"
  import av

  with av.open(str(video_only), "w", format="mp4") as out:
    stream = out.add_stream("mpeg4", rate=5)
    stream.width = stream.height = 32
    for i in range(3):
      frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 40 * i, np.uint8), format="rgb24")
      for packet in stream.encode(frame):
        out.mux(packet)
    for packet in stream.encode(None):
      out.mux(packet)
  with pytest.raises(AudioError) as err:
    load_audio(str(video_only))
  assert err.value.reason == "not_audio" and "without an audio stream" in err.value.detail


def test_compressed_files_respect_the_duration_cap(tmp_path):
  path = write_compressed(tmp_path / "long.m4a", tone(150.0, 5.0), SR)
  with pytest.raises(AudioError) as err:
    load_audio(str(path), max_seconds=2.0)
  assert err.value.reason == "too_long"


@pytest.mark.parametrize("content,reason", [
    (b"", "empty"),
    (b"hello, this is a text file\n" * 20, "not_audio"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt " + np.random.default_rng(0).bytes(64), "corrupt"),
])
def test_bad_files_raise_typed_errors(tmp_path, content, reason):
  path = tmp_path / "x.wav"
  path.write_bytes(content)
  with pytest.raises(AudioError) as err:
    load_audio(str(path))
  assert err.value.reason == reason


def test_duration_cap(tmp_path):
  path = write_wav(tmp_path / "long.wav", tone(100.0, 5.0))
  with pytest.raises(AudioError) as err:
    load_audio(str(path), max_seconds=2.0)
  assert err.value.reason == "too_long"
  assert len(load_audio(str(path), max_seconds=10.0)) == 5 * SR


def test_long_recording_is_cut_back_to_back_and_tail_kept():
  x = tone(150.0, 10.0)                     # 2 full clips + a 1.8 s tail
  clips = segment(x)
  assert [c.start for c in clips] == [0, S.clip_samples, 2 * S.clip_samples]
  assert [len(c.samples) for c in clips] == [S.clip_samples, S.clip_samples,
                                             len(x) - 2 * S.clip_samples]
  np.testing.assert_array_equal(np.concatenate([c.samples for c in clips]), x)


def test_short_utterance_kept_silent_clip_and_short_tail_dropped():
  assert len(segment(tone(150.0, 1.2))) == 1              # shorter than a clip: kept
  x = np.concatenate([tone(150.0, 4.096), np.zeros(S.clip_samples, np.float32),
                      tone(150.0, 0.2)])
  clips = segment(x)                                      # silent clip and 0.2 s tail go
  assert [c.index for c in clips] == [0] and clips[0].start == 0


def test_recordings_without_enough_speech_are_refused():
  with pytest.raises(AudioError, match="too_short"):
    segment(tone(150.0, 0.3))
  with pytest.raises(AudioError, match="silent"):
    segment(np.zeros(3 * SR, np.float32))


def test_resampling_reuses_a_resampler_with_one_shot_results():
  """resample() keeps one soxr resampler per rate pair and clears it between
  signals: every output equals soxr's one-shot resampling of that signal
  alone, in any order of calls and lengths."""
  import soxr

  from pipeline.audio import resample
  rng = np.random.default_rng(0)
  for rate, target in [(48000, 16000), (16000, 65536), (44100, 16000), (16000, 8000)] * 2:
    for n in (1, 7, 1000, 22784):
      x = rng.standard_normal(n).astype(np.float32)
      got = resample(x, rate, target)
      np.testing.assert_array_equal(got, soxr.resample(x, rate, target, quality="HQ"))
      assert got.dtype == np.float32
