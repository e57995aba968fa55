"""One recording, whatever its sample format, is one recording; two are two."""

import numpy as np
import pytest
import soundfile as sf

from pipeline.audio import load_audio
from pipeline.fingerprint import Fingerprint, first_of_each, fingerprint
from tests.helpers import tone

FORMATS = (("wav", "FLOAT"), ("wav", "DOUBLE"), ("wav", "PCM_24"), ("wav", "PCM_16"),
           ("flac", "PCM_24"), ("flac", "PCM_16"))


def stored(tmp_path, x, rate, ext, subtype):
  path = tmp_path / f"{subtype.lower()}.{ext}"
  path.parent.mkdir(parents=True, exist_ok=True)
  sf.write(str(path), x, rate, subtype=subtype)
  return load_audio(str(path))


@pytest.fixture(scope="module")
def voice():
  from pipeline.espeak import synthesize

  x, rate = synthesize("The birch canoe slid on the smooth planks.", "en+f3", rate=150, pitch=60)
  return np.asarray(x, np.float32) * 0.8, rate


def test_the_same_recording_in_any_format_is_one_recording(tmp_path, voice):
  x, rate = voice
  decoded = {f"{ext}/{subtype}": stored(tmp_path, x, rate, ext, subtype)
             for ext, subtype in FORMATS}
  # The formats do decode to different samples: a hash of them would differ.
  assert len({d.tobytes() for d in decoded.values()}) > 2
  repeats = first_of_each((name, fingerprint(d)) for name, d in decoded.items())
  first = min(decoded)
  assert repeats == {name: first for name in decoded if name != first}


def test_other_recordings_of_the_same_length_and_level_are_not_the_same(tmp_path, voice):
  """Two voices saying the same words, cut to one length; two tones of one
  level and length; the voice and a copy 6 dB quieter."""
  from pipeline.espeak import synthesize

  x, rate = voice
  y, _ = synthesize("The birch canoe slid on the smooth planks.", "en+m3", rate=150, pitch=20)
  n = min(len(x), len(y))
  recordings = {"ana": x[:n], "ben": np.asarray(y, np.float32)[:n] * 0.8,
                "quieter": x[:n] * 0.5,
                "a440": tone(440, (n + 0.5) / rate, 0.3, sr=rate)[:n],
                "a880": tone(880, (n + 0.5) / rate, 0.3, sr=rate)[:n]}
  prints = [(name, fingerprint(stored(tmp_path / name, r, rate, "wav", "FLOAT")))
            for name, r in recordings.items()]
  assert len({fp.samples for _, fp in prints}) == 1
  assert first_of_each(prints) == {}


def test_a_difference_above_the_tolerance_in_any_value_is_another_recording():
  base = Fingerprint.of(1000, tuple([0.1] * 32))
  for k in range(32):
    values = list(base.values)
    values[k] += 0.001
    assert not base.matches(Fingerprint.of(1000, tuple(values)))
  assert base.matches(Fingerprint.of(1000, tuple(v + 1e-5 for v in base.values)))
  assert not base.matches(Fingerprint.of(1001, base.values))
