"""The encoding record: complete, and refused when it would be misread."""

import dataclasses
import json
import re

import pytest

from pipeline.spec import (DEFAULT_SPEC, GRID, STATISTICS, TRACKS, EncodingSpec, SpecMismatch,
                           Track)


def record():
  return json.loads(json.dumps(DEFAULT_SPEC.to_dict()))     # as a dataset or model stores it


def test_the_record_holds_every_number_that_decides_a_pixel():
  r = record()
  assert set(f.name for f in dataclasses.fields(EncodingSpec)) <= set(r)
  assert r["layout"]["grid"] == GRID and r["layout"]["statistics"] == list(STATISTICS)
  tracks = r["layout"]["tracks"]
  assert [t["name"] for t in tracks] == [t.name for t in TRACKS]        # cell order
  fields = {f.name for f in dataclasses.fields(Track)}
  assert all(set(t) == fields for t in tracks)                          # range, scale, unit
  assert tracks[0] == {"name": "f0", "lo": 75.0, "hi": 600.0, "scale": "log", "unit": "Hz"}
  assert r["green_law"] == "mulaw" and r["mu"] == 255
  assert EncodingSpec.from_dict(r) == DEFAULT_SPEC


@pytest.mark.parametrize("change,message", [
    (lambda r: r["layout"]["tracks"][0].update(hi=500.0), "tracks[f0].hi is 500.0"),
    (lambda r: r["layout"]["tracks"][8].update(scale="log"), "tracks[mfcc0].scale"),
    (lambda r: r["layout"].update(grid=8), "grid is 8"),
    (lambda r: r["layout"]["tracks"].pop(), "46 entries, expected 47"),
    (lambda r: r.update(version="1.0.0"), "written with encoding spec 1.0.0"),
    (lambda r: r.update(version="3.0.0"), "written with encoding spec 3.0.0"),
    (lambda r: r.pop("version"), "encoding spec unrecorded"),
    (lambda r: r.update(pitch_method="yin"), "unknown encoding settings ['pitch_method']"),
    (lambda r: r.update(band_limit="octave"), "band_limit 'octave'"),
])
def test_a_record_this_code_would_misread_is_refused(change, message):
  r = record()
  change(r)
  with pytest.raises(SpecMismatch, match=re.escape(message)):
    EncodingSpec.from_dict(r)


def test_settings_and_a_newer_minor_version_are_honoured():
  r = record()
  r.update(mu=127, version="2.9.0")
  spec = EncodingSpec.from_dict(r)
  assert spec.mu == 127 and spec.version == "2.9.0"
  del r["layout"]                  # a 2.x record from before the layout was stored
  assert EncodingSpec.from_dict(r).mu == 127


def test_the_analysis_band_is_the_working_rates_or_the_recordings_own():
  assert DEFAULT_SPEC.band_limit == "working"
  assert {DEFAULT_SPEC.analysis_band(rate) for rate in (8000, 16000, 44100, None)} == {8000.0}
  own = dataclasses.replace(DEFAULT_SPEC, band_limit="recording")
  assert [own.analysis_band(rate) for rate in (8000, 11025, 16000, 44100, None)] == [
      4000.0, 5512.5, 8000.0, 8000.0, 8000.0]
  assert EncodingSpec.from_dict(json.loads(own.to_json())) == own
  with pytest.raises(ValueError, match="band_limit 'octave'"):
    dataclasses.replace(DEFAULT_SPEC, band_limit="octave").analysis_band(8000)


def test_a_spec_2_0_record_reads_with_the_fixed_band_it_was_written_with():
  """Spec 2.0.0 measured every recording to the working rate's Nyquist
  frequency: its records, which do not name the setting, read as that."""
  r = record()
  del r["band_limit"]
  r["version"] = "2.0.0"
  spec = EncodingSpec.from_dict(r)
  assert spec.band_limit == "working" and spec.analysis_band(8000) == 8000.0
