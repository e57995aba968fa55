"""One training configuration: every setting of a run, its flags, and its record.

    TrainConfig.add_flags(parser)                # flags generated from the fields below
    config = TrainConfig.from_args(parser.parse_args(argv))
    config.save(run_folder)                      # RUN/config.json, with dataset and versions
    TrainConfig.load("RUN/config.json")          # the same run again

fit, ablate, scaling and verify all train through `trainer.train.train(config)`;
their own flags (seeds, rows, ...) come on top of these (`for_study`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform

CONFIG_FILE = "config.json"
CHANNELS = ("rgb", "r", "g", "b", "rg", "rb", "gb")
MODELS = ("cells", "paper")
POOLINGS = ("all", "voiced", "recorded")
BACKENDS = ("softmax", "lda", "average", "auto")


def _field(default, help: str, **kw):
  return dataclasses.field(default=default, metadata={"help": help, **kw})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  dataset: str = _field("a2i_speakers", "TFDS name[/config] of a built dataset")
  data_dir: str | None = _field(None, "TFDS data dir (default: $TFDS_DATA_DIR or "
                                      "~/tensorflow_datasets)")
  output: str | None = _field(None, "run folder (default: runs/<dataset>)")
  model: str = _field("cells", "network: 'cells' reads the encoding (default), 'paper' is "
                               "the paper's CNN", choices=MODELS)
  channels: str = _field("rgb", "planes the model sees", choices=CHANNELS)
  pooling: str = _field("recorded", "cells: pool the waveform's statistics and each descriptor "
                                    "track's histogram over the 'recorded' frames (not a short "
                                    "clip's padding), over 'all' frames, or 'voiced': all frames "
                                    "and the voiced ones", choices=POOLINGS)
  backend: str = _field("auto", "classifier on the embedding: 'lda' fitted on the training "
                                "clips' embeddings, the network's own 'softmax', the 'average' "
                                "of the two's log-posteriors, or 'auto': the average unless "
                                "one alone is clearly better on the validation split "
                                "(docs/training.md)",
                        choices=BACKENDS)
  epochs: int | None = _field(None, "length of the learning-rate schedule (default: sized "
                                    "from the dataset, ~1,500 steps within 8-60 epochs)")
  batch_size: int = _field(32, "clips per step")
  learning_rate: float = _field(1e-3, "peak rate; a cosine takes it to 0 over the schedule")
  patience: int = _field(6, "stop after this many epochs without a better validation loss")
  seed: int = _field(0, "initialisation, batch order and split shuffling")
  xla: bool = _field(False, "compile the training step with XLA (jit_compile)")
  precision: str = _field("auto", "'auto': on a GPU mixed float16 (TensorFlow) or bfloat16 "
                                  "(JAX, PyTorch), on a CPU float32",
                          choices=("auto", "float32", "mixed_float16", "mixed_bfloat16"))

  # ---- flags ---------------------------------------------------------------

  @classmethod
  def add_flags(cls, parser: argparse.ArgumentParser, skip=()) -> None:
    for f in dataclasses.fields(cls):
      if f.name in skip:
        continue
      kw = {"help": f.metadata["help"] + (f" (default: {f.default})"
                                          if f.default is not None and f.type != "bool" else "")}
      if f.type == "bool":
        parser.add_argument(f"--{f.name}", action="store_true", **kw)
        continue
      kind = {"int | None": int, "int": int, "float": float}.get(f.type, str)
      parser.add_argument(f"--{f.name}", type=kind, default=f.default,
                          choices=f.metadata.get("choices"), **kw)

  @classmethod
  def from_args(cls, args: argparse.Namespace, **override) -> "TrainConfig":
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
              if hasattr(args, f.name)}
    return cls(**{**values, **override}).checked()

  @classmethod
  def for_study(cls, args: argparse.Namespace, parser: argparse.ArgumentParser | None = None,
                **override) -> "TrainConfig":
    """The config of a study's row (no run folder: rows are not saved), its
    settings from the study's flags (`add_flags`) and `override`. With
    `parser`, a bad setting is the parser's one-line error."""
    try:
      return cls.from_args(args, output=None, **override)
    except ValueError as e:
      if parser is None:
        raise
      parser.error(str(e))

  def checked(self) -> "TrainConfig":
    for name in ("batch_size", "patience"):
      if getattr(self, name) < 1:
        raise ValueError(f"--{name} must be positive, got {getattr(self, name)}")
    if self.epochs is not None and self.epochs < 1:
      raise ValueError(f"--epochs must be positive, got {self.epochs}")
    if not self.learning_rate > 0:
      raise ValueError(f"--learning_rate must be positive, got {self.learning_rate}")
    if self.pooling == "voiced" and (self.model != "cells" or "b" not in self.channels):
      raise ValueError("--pooling voiced pools the blue plane's time courses: it needs "
                       "--model cells and a channel choice with b")
    return self

  @property
  def run_folder(self) -> str:
    return self.output or os.path.join("runs", self.dataset.replace("/", "_"))

  # ---- record --------------------------------------------------------------

  def save(self, folder: str, **facts) -> dict:
    """Writes RUN/config.json: the settings, plus facts of the run (dataset
    version and fingerprint, epochs chosen, package versions)."""
    record = {"settings": dataclasses.asdict(self), **facts, "versions": versions()}
    with open(os.path.join(folder, CONFIG_FILE), "w") as f:
      json.dump(record, f, indent=1, sort_keys=True)
    return record

  @classmethod
  def load(cls, path: str) -> "TrainConfig":
    """The settings a run folder's config.json records."""
    with open(path) as f:
      record = json.load(f)
    if "settings" not in record:
      raise ValueError(f"{path}: not a trainer config (no 'settings')")
    # Runs recorded before the back end was a setting used the network's softmax.
    record["settings"].setdefault("backend", "softmax")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(record["settings"]) - known
    if unknown:
      raise ValueError(f"{path}: unknown settings {sorted(unknown)} (written by a newer a2i?)")
    return cls(**record["settings"]).checked()


def versions() -> dict:
  import keras
  import numpy
  import tensorflow_datasets

  from pipeline.spec import DEFAULT_SPEC

  try:
    import tensorflow

    tensorflow_version = tensorflow.__version__
  except ImportError:    # a JAX or PyTorch machine: the input comes from array_record
    tensorflow_version = None
  return {"python": platform.python_version(), "tensorflow": tensorflow_version,
          "keras": keras.__version__, "keras_backend": keras.backend.backend(),
          "tensorflow_datasets": tensorflow_datasets.__version__,
          "numpy": numpy.__version__, "encoding_spec": DEFAULT_SPEC.version}
