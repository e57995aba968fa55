"""Audio clip -> RGB image, the paper's encoding (docs/encoding.md).

    image = encode(waveform, sample_rate, image_size=512)   # uint8 (N, N, 3), RGB
    waveform, rate = decode_green(image)

Command line: one PNG per clip of every file given (directories are walked):

    python -m pipeline.encode speech.wav corpus/ --out imgs/ [--image_size 256]
"""

from __future__ import annotations

import dataclasses
import os
import sys

import numpy as np

from pipeline import planes
from pipeline.audio import AUDIO_EXTENSIONS, AudioError, to_working_rate
from pipeline.clips import clips_of
from pipeline.console import CommandParser
from pipeline.features import describe
from pipeline.spec import DEFAULT_SPEC, IMAGE_SIZES, TRACK_INDEX, EncodingSpec


@dataclasses.dataclass(frozen=True)
class EncodedClip:
  image: np.ndarray        # uint8 (N, N, 3): red, green, blue
  descriptors: np.ndarray  # float32, the red plane's statistics before quantisation


def encode_clip(x: np.ndarray, image_size: int = 512, spec: EncodingSpec = DEFAULT_SPEC,
                require_speech: bool = True, band: float | None = None) -> EncodedClip:
  """Encodes a clip already at the working rate (as `segment` returns them).

  `require_speech=False` skips the clip's own speech check, for clips that
  `segment` already accepted on the recording's activity. `band`: the upper
  edge of the spectral descriptors' band (`Clip.band`; None: the working
  rate's Nyquist frequency).
  """
  if image_size < 7 * 2:
    raise ValueError(f"image_size {image_size} is too small for the 7x7 grid")
  x = x[:spec.clip_samples]
  d = describe(x, spec, band)
  active = np.count_nonzero(~np.isnan(d.tracks[TRACK_INDEX["rms"]]))
  if active == 0 and require_speech:
    raise AudioError("silent")
  speech = active * spec.hop_length / spec.sample_rate
  if require_speech and speech < spec.min_speech_seconds:
    raise AudioError("too_short", f"{speech:.2f} s of speech, "
                     f"{spec.min_speech_seconds:g} s needed")
  image = np.empty((image_size, image_size, 3), np.uint8)
  planes.red_plane(d.descriptors, image_size, out=image[..., 0])
  planes.green_plane(x, image_size, spec, out=image[..., 1])
  planes.blue_plane(d.tracks, image_size, out=image[..., 2])
  return EncodedClip(image=image, descriptors=d.descriptors)


def encode(waveform: np.ndarray, sample_rate: int, image_size: int = 512,
           spec: EncodingSpec = DEFAULT_SPEC) -> np.ndarray:
  """One clip (any rate, mono float) -> uint8 RGB image of image_size x image_size.

  Audio beyond one clip (spec.clip_seconds) is ignored: cut long recordings
  with `pipeline.clips.segment` first. Raises AudioError for unusable input.
  """
  return encode_clip(to_working_rate(waveform, sample_rate, spec), image_size, spec,
                     band=spec.analysis_band(sample_rate)).image


def decode_green(image: np.ndarray, spec: EncodingSpec = DEFAULT_SPEC):
  """Green plane -> (float32 waveform, sample_rate), peak-normalised."""
  return planes.waveform_from_green(np.asarray(image)[..., 1], spec)


def si_snr(reference: np.ndarray, estimate: np.ndarray) -> float:
  """Scale-invariant signal-to-noise ratio in dB (Le Roux et al. 2019)."""
  n = min(len(reference), len(estimate))
  s = np.asarray(reference[:n], np.float64)
  e = np.asarray(estimate[:n], np.float64)
  s, e = s - s.mean(), e - e.mean()
  target = (e @ s) / max(s @ s, 1e-20) * s
  noise = e - target
  return float(10 * np.log10(max(target @ target, 1e-20) / max(noise @ noise, 1e-20)))


def _inputs(paths):
  """(file, name relative to its argument) for files and walked directories."""
  for arg in paths:
    if os.path.isdir(arg):
      for root, dirs, files in os.walk(arg):
        dirs.sort()
        for name in sorted(files):
          if os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS:
            path = os.path.join(root, name)
            yield path, os.path.relpath(path, arg)
    else:
      yield arg, os.path.basename(arg)


def main(argv=None) -> int:
  parser = CommandParser(
      prog="python -m pipeline.encode", description="Encode audio files as RGB images.")
  parser.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR")
  parser.add_argument("--out", required=True, help="output directory for the PNGs")
  parser.add_argument("--image_size", type=int, default=512, choices=IMAGE_SIZES)
  args = parser.parse_args(argv)
  for arg in args.inputs:
    if not os.path.exists(arg):
      parser.error(f"no such file or directory: {arg}")
  from PIL import Image

  from pipeline.bulk import prepare_process

  prepare_process()
  os.makedirs(args.out, exist_ok=True)
  failed = written = 0
  for path, rel in _inputs(args.inputs):
    try:
      clips = clips_of(path)
      stem = os.path.join(args.out, os.path.splitext(rel)[0])
      os.makedirs(os.path.dirname(stem) or ".", exist_ok=True)
      for clip in clips:
        image = encode_clip(clip.samples, args.image_size, band=clip.band).image
        out = f"{stem}_clip{clip.index:03d}.png"
        Image.fromarray(image, "RGB").save(out)
        written += 1
        print(f"{out}\t{path}\tclip {clip.index} at {clip.start_seconds():.3f} s")
    except AudioError as e:
      failed += 1
      print(f"FAILED {path}: {e}", file=sys.stderr)
  print(f"{written} images written to {args.out}; {failed} files failed", file=sys.stderr)
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
