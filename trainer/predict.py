"""Predict the speaker of audio files with a trained model.

    python -m trainer.predict --model runs/a2i_speakers/model.keras speech.wav other.flac
    python -m trainer.predict --model RUN/model.keras --threshold auto --json long.wav

Each file is encoded exactly as the model's training data was (encoding.json
beside the model, written when training starts: a run still training, or
killed, predicts with its best checkpoint so far). Prints one line per clip
and, for files of several clips, one overall line (mean probability). A
file that cannot be used gets a one-line reason; the others go on.

The classifier is closed-set: it names one of the speakers it was trained
on, whoever speaks. With --threshold it also answers "unknown": a clip whose
voice descriptors lie farther than the threshold from the chosen speaker's
training profile (trainer/openset.py; 'auto': the distance that accepts 95 %
of the run's validation clips, from speakers.json in the run folder).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from pipeline.console import CommandParser

BATCH = 16   # clips encoded and scored at a time: memory stays bounded for any length


def load_run(model_path: str):
  """(model, encoding settings) of a saved run; safe deserialisation only."""
  import keras

  from pipeline.spec import EncodingSpec
  from trainer import layers  # noqa: F401  registers the custom layers
  from trainer.report import ENCODING_FILE

  with open(os.path.join(os.path.dirname(os.path.abspath(model_path)), ENCODING_FILE)) as f:
    settings = json.load(f)
  settings["spec"] = EncodingSpec.from_dict(settings["encoding"])
  return keras.saving.load_model(model_path, safe_mode=True), settings


def clip_batches(settings, path: str):
  """(clips of the file, then for each BATCH of them (images in the model's
  planes, encoded clips)): the file encoded exactly as the run's training
  data was (encoding.json). Raises AudioError."""
  import numpy as np

  from pipeline.clips import clips_of
  from pipeline.encode import encode_clip
  from trainer.data import CHANNELS

  spec = settings["spec"]
  clips = clips_of(path, spec)

  def batches():
    for start in range(0, len(clips), BATCH):
      encoded = [encode_clip(c.samples, settings["image_size"], spec, require_speech=False,
                             band=c.band)
                 for c in clips[start:start + BATCH]]
      images = np.stack([e.image for e in encoded])[..., CHANNELS[settings["channels"]]]
      yield images.astype(np.float32), encoded

  return clips, batches()


def predict_file(model, settings, path: str, progress=None):
  """(clips, probabilities, descriptors) of one file, scored BATCH clips at
  a time; raises AudioError."""
  import numpy as np

  clips, batches = clip_batches(settings, path)
  probs, descriptors = [], []
  for images, encoded in batches:
    probs.append(np.asarray(model.predict_on_batch(images), np.float64))
    descriptors.extend(e.descriptors for e in encoded)
    if progress is not None:
      progress.update(len(encoded))
  return clips, np.concatenate(probs), np.array(descriptors, np.float64)


def embed_file(embedder, settings, path: str):
  """The utterance's embedding: the mean of its clips' embeddings (the
  network's `embedding` layer, `embedder`), each clip scored as predict
  scores it. Raises AudioError."""
  import numpy as np

  _, batches = clip_batches(settings, path)
  parts = [np.asarray(embedder.predict_on_batch(images), np.float64) for images, _ in batches]
  return np.concatenate(parts).mean(axis=0)


def decide(probs, descriptors, speakers, profiles, threshold):
  """(speaker or 'unknown', probability, distance or None) of each row."""
  from trainer import openset

  best = probs.argmax(axis=1)
  chosen = [speakers[k] for k in best]
  far = (openset.distances(profiles, descriptors, chosen) if threshold is not None
         else [None] * len(best))
  return [(name if d is None or d <= threshold else "unknown", float(p[k]),
           None if d is None else float(d))
          for name, k, p, d in zip(chosen, best, probs, far)]


def main(argv=None) -> int:
  parser = CommandParser(prog="python -m trainer.predict",
                                   description=__doc__.split("\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog="\n".join(__doc__.split("\n")[2:]))
  parser.add_argument("--model", required=True, help="model.keras of a trainer.fit run")
  parser.add_argument("--threshold", help="answer 'unknown' for clips farther than this from "
                                          "the speaker's descriptor profile; 'auto' for the "
                                          "run's own (95 %% of its validation clips)")
  parser.add_argument("--json", action="store_true", help="one JSON object per file on stdout")
  parser.add_argument("files", nargs="+", metavar="FILE")
  args = parser.parse_args(argv)
  from trainer import quiet

  quiet.start_tensorflow()
  from trainer.report import CENTROIDS_FILE, ENCODING_FILE

  folder = os.path.dirname(os.path.abspath(args.model))
  if not os.path.isfile(args.model):
    parser.error(f"--model {args.model}: no such file (a run writes it after its first epoch)")
  if not os.path.isfile(os.path.join(folder, ENCODING_FILE)):
    parser.error(f"no {ENCODING_FILE} beside {args.model}: not a trainer.fit run folder")
  profiles = threshold = None
  if args.threshold is not None:
    path = os.path.join(folder, CENTROIDS_FILE)
    if not os.path.isfile(path):
      parser.error(f"--threshold needs {CENTROIDS_FILE} beside the model, written when "
                   "trainer.fit finishes")
    with open(path) as f:
      profiles = json.load(f)
    try:
      threshold = (profiles["threshold_95"] if args.threshold == "auto"
                   else float(args.threshold))
    except ValueError:
      parser.error(f"--threshold takes a number or 'auto', got {args.threshold!r}")
    if "descriptor_mean" not in profiles:
      parser.error(f"{path} holds no descriptor profiles (an older run): train it again")
  from tqdm import tqdm

  from pipeline.audio import AudioError
  from pipeline.spec import SpecMismatch

  try:
    model, settings = load_run(args.model)
  except SpecMismatch as e:
    parser.error(f"{args.model}: {e}")
  speakers = settings["speakers"]
  failed = 0
  for path in args.files:
    with tqdm(desc=os.path.basename(path), unit="clip", disable=not sys.stderr.isatty(),
              leave=False) as bar:
      try:
        clips, probs, descriptors = predict_file(model, settings, path, bar)
      except (AudioError, OSError) as e:
        failed += 1
        print(f"{path}: error: {e}", file=sys.stderr)
        continue
    rows = decide(probs, descriptors, speakers, profiles, threshold)
    overall = decide(probs.mean(axis=0, keepdims=True), descriptors.mean(axis=0, keepdims=True),
                     speakers, profiles, threshold)[0]
    if args.json:
      print(json.dumps({"file": path, "speaker": overall[0], "probability": overall[1],
                        "distance": overall[2], "threshold": threshold, "clips": [
                            {"index": c.index, "start_seconds": c.start_seconds(settings["spec"]),
                             "speaker": r[0], "probability": r[1], "distance": r[2]}
                            for c, r in zip(clips, rows)]}))
      continue
    for c, (name, p, _) in zip(clips, rows):
      print(f"{path}\tclip {c.index} at {c.start_seconds(settings['spec']):.2f} s\t{name}\t{p:.3f}")
    if len(clips) > 1:
      print(f"{path}\toverall ({len(clips)} clips)\t{overall[0]}\t{overall[1]:.3f}")
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
