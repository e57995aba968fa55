"""The encoding spec: every number that decides what a pixel means.

docs/encoding.md is the prose version of this module. A dataset and a trained
model both record `EncodingSpec.to_dict()`: the analysis settings, the green
law and the layout (grid, statistics, every track's range and scale), so an
image can always be read back with the settings that wrote it, and is never
read with others: `from_dict` refuses a record of another major version, an
unknown setting or a layout this code does not write.
"""

from __future__ import annotations

import dataclasses
import json

IMAGE_SIZES = (64, 128, 256, 512)
SPEC_VERSION = "2.1.0"   # major: what a pixel means; minor: what the record holds
BAND_LIMITS = ("recording", "working")


class SpecMismatch(ValueError):
  """A recorded encoding that this code cannot read as it was written."""


@dataclasses.dataclass(frozen=True)
class Track:
  """One frame-level descriptor track and the fixed range that maps it to pixels."""

  name: str
  lo: float
  hi: float
  scale: str = "linear"  # "linear" or "log"
  unit: str = ""


# Order matters: track k sits in grid cell k of both the red and blue planes.
_SCALAR_TRACKS = (
    Track("f0", 75.0, 600.0, "log", "Hz"),
    Track("hnr", 0.0, 40.0, "linear", "dB"),
    Track("rms", -70.0, 0.0, "linear", "dBFS"),
    Track("zcr", 0.0, 0.5, "linear", "crossings/sample"),
    Track("centroid", 100.0, 8000.0, "log", "Hz"),
    Track("bandwidth", 100.0, 4000.0, "log", "Hz"),
    Track("rolloff", 100.0, 8000.0, "log", "Hz"),
    Track("flatness", -60.0, 0.0, "linear", "dB"),
)
# MFCC ranges: c0 carries the overall log-mel level (40 bands of -100..0 dB
# give c0 in [-632, 0]); higher coefficients carry spectral shape and shrink
# with order. Ranges cover speech at any level with margin; see encoding.md.
_MFCC_RANGES = ((-650.0, 50.0), (-100.0, 250.0)) + tuple(
    (-120.0 / (1 + 0.15 * k), 120.0 / (1 + 0.15 * k)) for k in range(2, 20))
_MFCC_TRACKS = tuple(
    Track(f"mfcc{k}", lo, hi, "linear", "dB") for k, (lo, hi) in enumerate(_MFCC_RANGES))
_CONTRAST_TRACKS = tuple(
    Track(f"contrast{k}", 0.0, 60.0, "linear", "dB") for k in range(7))
_CHROMA_TRACKS = tuple(
    Track(f"chroma_{pc}", 0.0, 1.0, "linear", "")
    for pc in ("C", "Cs", "D", "Ds", "E", "F", "Fs", "G", "Gs", "A", "As", "B"))

TRACKS: tuple[Track, ...] = (
    _SCALAR_TRACKS + _MFCC_TRACKS + _CONTRAST_TRACKS + _CHROMA_TRACKS)
TRACK_INDEX = {t.name: k for k, t in enumerate(TRACKS)}
STATISTICS = ("median", "mean")
DESCRIPTOR_NAMES = tuple(f"{t.name}_{s}" for t in TRACKS for s in STATISTICS)
GRID = 7  # 7 x 7 cells: 47 tracks, 2 spare cells left at 0.
assert len(TRACKS) <= GRID * GRID


@dataclasses.dataclass(frozen=True)
class EncodingSpec:
  """Analysis settings shared by the encoder, the dataset and the model."""

  sample_rate: int = 16000          # working rate: all audio is resampled to it
  clip_seconds: float = 4.096       # 65,536 samples: one image holds one clip
  win_length: int = 640             # 40 ms analysis window (2 periods at 50 Hz)
  n_fft: int = 1024                 # zero-padded: autocorrelation without wrap
  hop_length: int = 160             # 10 ms frame step
  f0_min: float = 75.0              # pitch range: Praat's standard 75-600 Hz, whose
  f0_max: float = 600.0             # floor is 3 periods of the 40 ms window
  voicing_threshold: float = 0.45   # Praat's defaults for the pitch path (pipeline.pitch):
  silence_threshold: float = 0.03   # frame peak / clip peak below which voicing fades out
  octave_cost: float = 0.01         # per octave, favours the shorter period
  octave_jump_cost: float = 0.35    # per octave of f0 change between frames
  voiced_unvoiced_cost: float = 0.14  # per voicing change
  pitch_candidates: int = 6         # autocorrelation peaks kept per frame
  harmonics_required: int = 5       # a voice: its fundamental or this many of its first 20
  harmonic_range_db: float = 25.0   # harmonics within 25 dB of the frame's spectral peak
  n_mels: int = 40
  n_mfcc: int = 20
  contrast_fmin: float = 100.0
  silence_floor_db: float = -70.0   # frames quieter than this are never speech
  silence_relative_db: float = 40.0  # ... nor frames 40 dB below the loudest
  noise_margin_db: float = 6.0      # ... nor frames within 6 dB of the noise floor
  noise_percentile: float = 10.0    # the noise floor: this percentile of frame levels
  min_speech_seconds: float = 0.5   # a clip needs this much active audio
  band_limit: str = "working"       # spectral descriptors up to the working rate's Nyquist
                                    # frequency; "recording": up to the recording's own when
                                    # lower (docs/encoding.md: measured, not the default)
  green_law: str = "mulaw"          # "mulaw" or "linear"
  mu: int = 255
  version: str = SPEC_VERSION

  @property
  def clip_samples(self) -> int:
    return int(round(self.clip_seconds * self.sample_rate))

  @property
  def clip_frames(self) -> int:
    return 1 + self.clip_samples // self.hop_length

  def analysis_band(self, source_rate: float | None = None) -> float:
    """Upper edge in Hz of the band the spectral descriptors are measured
    over, for a recording sampled at `source_rate` (None: unknown, taken as
    at least the working rate): the working rate's Nyquist frequency, or
    with band_limit="recording" the recording's own when lower, so that an
    8 kHz recording's empty 4-8 kHz band (the resampler's stop band) weighs
    in no descriptor."""
    nyquist = self.sample_rate / 2
    if self.band_limit not in BAND_LIMITS:
      raise ValueError(f"band_limit {self.band_limit!r}: one of {', '.join(BAND_LIMITS)}")
    if self.band_limit == "working" or not source_rate:
      return nyquist
    return min(nyquist, source_rate / 2)

  def green_rate(self, image_size: int) -> float:
    """Sample rate of the waveform laid out in the green plane."""
    return image_size * image_size / self.clip_seconds

  def to_dict(self) -> dict:
    return {**dataclasses.asdict(self), "layout": layout()}

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), sort_keys=True)

  @classmethod
  def from_dict(cls, d: dict) -> "EncodingSpec":
    """The spec a record describes; SpecMismatch when this code would read
    its pixels differently from how they were written."""
    d = dict(d)
    version = str(d.get("version", "unrecorded"))
    if version.split(".")[0] != SPEC_VERSION.split(".")[0]:
      raise SpecMismatch(f"written with encoding spec {version}; this a2i reads spec "
                         f"{SPEC_VERSION} (docs/encoding.md): rebuild the dataset or retrain "
                         "the model with this version, or use the a2i that wrote it")
    recorded = d.pop("layout", None)   # records of spec 2.0.0 written before the layout was
    if recorded is not None:           # recorded have this code's layout by their version
      difference = _first_difference(json.loads(json.dumps(recorded)),
                                     json.loads(json.dumps(layout())))
      if difference:
        raise SpecMismatch(f"the recorded encoding layout differs from this a2i's "
                           f"({difference}): its pixels would be misread")
    d.setdefault("band_limit", "working")   # recorded before the setting existed
    if d["band_limit"] not in BAND_LIMITS:
      raise SpecMismatch(f"band_limit {d['band_limit']!r} (spec {version}): written by another a2i")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
      raise SpecMismatch(f"unknown encoding settings {unknown} (spec {version}): "
                         "written by another a2i")
    return cls(**d)


def layout() -> dict:
  """Where each descriptor sits and how its values map to pixel levels."""
  return {"grid": GRID, "statistics": list(STATISTICS),
          "tracks": [dataclasses.asdict(t) for t in TRACKS]}


def _first_difference(recorded, expected, where: str = "") -> str | None:
  """A readable path to the first value that differs, or None."""
  if isinstance(expected, dict) and isinstance(recorded, dict):
    for key in sorted(set(expected) | set(recorded)):
      if key not in recorded or key not in expected:
        return f"{where}{key}: {'missing' if key not in recorded else 'unexpected'}"
      found = _first_difference(recorded[key], expected[key], f"{where}{key}.")
      if found:
        return found
    return None
  if isinstance(expected, list) and isinstance(recorded, list):
    if len(recorded) != len(expected):
      return f"{where.rstrip('.')}: {len(recorded)} entries, expected {len(expected)}"
    for k, (r, e) in enumerate(zip(recorded, expected)):
      name = e.get("name", k) if isinstance(e, dict) else k
      found = _first_difference(r, e, f"{where.rstrip('.')}[{name}].")
      if found:
        return found
    return None
  return None if recorded == expected else f"{where.rstrip('.')} is {recorded!r}, expected {expected!r}"


DEFAULT_SPEC = EncodingSpec()


def cell_size(image_size: int) -> int:
  """Side of one grid cell in pixels (the grid is anchored top-left)."""
  return image_size // GRID


def cell_origin(track: int | str, image_size: int) -> tuple[int, int]:
  """(row, col) of the top-left pixel of a track's cell."""
  k = TRACK_INDEX[track] if isinstance(track, str) else track
  p = cell_size(image_size)
  return (k // GRID) * p, (k % GRID) * p
