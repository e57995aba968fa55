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
embedding's cosine similarity to the chosen speaker's mean training
embedding is below the threshold ('auto': the value that accepts 95 % of
that model's validation clips; speakers.json in the run folder).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BATCH = 16   # clips encoded and scored at a time: memory stays bounded for any length


def load_run(model_path: str):
  """(model, encoding settings) of a saved run; safe deserialisation only."""
  import keras

  from pipeline.spec import EncodingSpec
  from trainer import models  # noqa: F401  registers the custom layers
  from trainer.report import ENCODING_FILE

  with open(os.path.join(os.path.dirname(os.path.abspath(model_path)), ENCODING_FILE)) as f:
    settings = json.load(f)
  settings["spec"] = EncodingSpec.from_dict(settings["encoding"])
  return keras.saving.load_model(model_path, safe_mode=True), settings


def predict_file(model, settings, path: str, progress=None):
  """(clips, probabilities, embeddings) of one file, scored BATCH clips at a
  time; raises AudioError."""
  import keras
  import numpy as np

  from pipeline.audio import load_audio
  from pipeline.clips import segment
  from pipeline.encode import encode_clip
  from trainer.data import CHANNELS

  spec = settings["spec"]
  clips = segment(load_audio(path, spec), spec)
  both = keras.Model(model.input, [model.output, model.get_layer("embedding").output])
  probs, embeddings = [], []
  for start in range(0, len(clips), BATCH):
    batch = clips[start:start + BATCH]
    images = np.stack([encode_clip(c.samples, settings["image_size"], spec,
                                   require_speech=False).image for c in batch])
    p, e = both.predict_on_batch(images[..., CHANNELS[settings["channels"]]].astype(np.float32))
    probs.append(np.asarray(p, np.float64))
    embeddings.append(np.asarray(e, np.float64))
    if progress is not None:
      progress.update(len(batch))
  return clips, np.concatenate(probs), np.concatenate(embeddings)


def decide(probs, embeddings, speakers, centroids, threshold):
  """(speaker or 'unknown', probability, similarity or None) of each row."""
  import numpy as np

  best = probs.argmax(axis=1)
  out = []
  for k, p, e in zip(best, probs, embeddings):
    similarity = None
    if threshold is not None:
      similarity = float(e @ centroids[k] / (np.linalg.norm(e) * np.linalg.norm(centroids[k])
                                             + 1e-12))
    name = speakers[k] if similarity is None or similarity >= threshold else "unknown"
    out.append((name, float(p[k]), similarity))
  return out


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m trainer.predict",
                                   description=__doc__.split("\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog="\n".join(__doc__.split("\n")[2:]))
  parser.add_argument("--model", required=True, help="model.keras of a trainer.fit run")
  parser.add_argument("--threshold", help="answer 'unknown' below this cosine similarity to "
                                          "the speaker's mean embedding; 'auto' for the run's own")
  parser.add_argument("--json", action="store_true", help="one JSON object per file on stdout")
  parser.add_argument("files", nargs="+", metavar="FILE")
  args = parser.parse_args(argv)
  from trainer.report import CENTROIDS_FILE, ENCODING_FILE

  folder = os.path.dirname(os.path.abspath(args.model))
  if not os.path.isfile(args.model):
    parser.error(f"--model {args.model}: no such file (a run writes it after its first epoch)")
  if not os.path.isfile(os.path.join(folder, ENCODING_FILE)):
    parser.error(f"no {ENCODING_FILE} beside {args.model}: not a trainer.fit run folder")
  centroids = threshold = None
  if args.threshold is not None:
    path = os.path.join(folder, CENTROIDS_FILE)
    if not os.path.isfile(path):
      parser.error(f"--threshold needs {CENTROIDS_FILE} beside the model, written when "
                   "trainer.fit finishes")
    with open(path) as f:
      known = json.load(f)
    try:
      threshold = known["threshold_95"] if args.threshold == "auto" else float(args.threshold)
    except ValueError:
      parser.error(f"--threshold takes a number or 'auto', got {args.threshold!r}")
  import numpy as np
  from tqdm import tqdm

  from pipeline.audio import AudioError

  model, settings = load_run(args.model)
  speakers = settings["speakers"]
  if threshold is not None:
    centroids = np.array([known["centroids"][s] for s in speakers])
  failed = 0
  for path in args.files:
    with tqdm(desc=os.path.basename(path), unit="clip", disable=not sys.stderr.isatty(),
              leave=False) as bar:
      try:
        clips, probs, embeddings = predict_file(model, settings, path, bar)
      except (AudioError, OSError) as e:
        failed += 1
        print(f"{path}: error: {e}", file=sys.stderr)
        continue
    rows = decide(probs, embeddings, speakers, centroids, threshold)
    overall = decide(probs.mean(axis=0, keepdims=True), embeddings.mean(axis=0, keepdims=True),
                     speakers, centroids, threshold)[0]
    if args.json:
      print(json.dumps({"file": path, "speaker": overall[0], "probability": overall[1],
                        "similarity": overall[2], "threshold": threshold, "clips": [
                            {"index": c.index, "start_seconds": c.start_seconds(settings["spec"]),
                             "speaker": r[0], "probability": r[1], "similarity": r[2]}
                            for c, r in zip(clips, rows)]}))
      continue
    for c, (name, p, _) in zip(clips, rows):
      print(f"{path}\tclip {c.index} at {c.start_seconds(settings['spec']):.2f} s\t{name}\t{p:.3f}")
    if len(clips) > 1:
      print(f"{path}\toverall ({len(clips)} clips)\t{overall[0]}\t{overall[1]:.3f}")
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
