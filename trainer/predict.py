"""Predict the speaker of audio files with a trained model.

    python -m trainer.predict --model runs/a2i_speakers/model.keras speech.wav other.flac

Each file is encoded exactly as the model's training data was (the settings
are read from encoding.json beside the model). Prints one line per clip and,
for files of several clips, one overall line (mean probability over clips).
A file that cannot be used gets a one-line reason; the others go on.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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


def predict_file(model, settings, path: str):
  """[(clip index, start seconds, probabilities)] for one file; raises AudioError."""
  import numpy as np

  from pipeline.audio import load_audio
  from pipeline.clips import segment
  from pipeline.encode import encode_clip
  from trainer.data import CHANNELS

  spec = settings["spec"]
  clips = segment(load_audio(path, spec), spec)
  images = np.stack([encode_clip(c.samples, settings["image_size"], spec,
                                 require_speech=False).image for c in clips])
  images = images[..., CHANNELS[settings["channels"]]].astype(np.float32)
  probs = model.predict(images, verbose=0)
  return [(c.index, c.start_seconds(spec), p) for c, p in zip(clips, probs)]


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m trainer.predict",
                                   description=__doc__.split("\n")[0])
  parser.add_argument("--model", required=True, help="model.keras of a trainer.fit run")
  parser.add_argument("files", nargs="+", metavar="FILE")
  args = parser.parse_args(argv)
  from trainer.report import ENCODING_FILE

  if not os.path.isfile(args.model):
    parser.error(f"--model {args.model}: no such file")
  if not os.path.isfile(os.path.join(os.path.dirname(os.path.abspath(args.model)),
                                     ENCODING_FILE)):
    parser.error(f"no {ENCODING_FILE} beside {args.model}: not a trainer.fit run folder")
  import numpy as np

  from pipeline.audio import AudioError

  model, settings = load_run(args.model)
  speakers = settings["speakers"]
  failed = 0
  for path in args.files:
    try:
      clips = predict_file(model, settings, path)
    except (AudioError, OSError) as e:
      failed += 1
      print(f"{path}: error: {e}", file=sys.stderr)
      continue
    for index, start, p in clips:
      k = int(np.argmax(p))
      print(f"{path}\tclip {index} at {start:.2f} s\t{speakers[k]}\t{p[k]:.3f}")
    if len(clips) > 1:
      mean = np.mean([p for _, _, p in clips], axis=0)
      k = int(np.argmax(mean))
      print(f"{path}\toverall ({len(clips)} clips)\t{speakers[k]}\t{mean[k]:.3f}")
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
