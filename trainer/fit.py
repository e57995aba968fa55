"""Train and evaluate the speaker CNN on a2i_speakers.

    python -m trainer.fit                                  # the default dataset
    python -m trainer.fit --dataset a2i_speakers/mycorpus_128 --channels rg --epochs 30

Writes to --output: model.keras (best on validation) with encoding.json
beside it, metrics.json, confusion_matrix.png, training_curves.png,
samples.png and TensorBoard logs. A killed run started again with the same
--output resumes from its last finished epoch.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from trainer.data import CHANNELS
from trainer.models import MODELS


def _parser():
  p = argparse.ArgumentParser(prog="python -m trainer.fit", description=__doc__.split("\n")[0])
  p.add_argument("--dataset", default="a2i_speakers", help="name[/config] (default: %(default)s)")
  p.add_argument("--data_dir", help="TFDS data dir (default: $TFDS_DATA_DIR or "
                                    "~/tensorflow_datasets)")
  p.add_argument("--output", default="runs/a2i_speakers", help="run folder (default: %(default)s)")
  p.add_argument("--epochs", type=int, default=40,
                 help="length of the learning-rate schedule; early stopping may end sooner")
  p.add_argument("--batch_size", type=int, default=32)
  p.add_argument("--channels", default="rgb", choices=tuple(CHANNELS))
  p.add_argument("--model", default="cells", choices=MODELS)
  p.add_argument("--learning_rate", type=float, default=1e-3,
                 help="peak rate; a cosine takes it to 0 over --epochs")
  p.add_argument("--patience", type=int, default=10, help="early-stopping patience in epochs")
  p.add_argument("--seed", type=int, default=0)
  return p


def strategy_and_precision():
  """MirroredStrategy with mixed float16 over the visible GPUs; the default
  strategy in float32 on CPU."""
  import keras
  import tensorflow as tf

  gpus = tf.config.list_physical_devices("GPU")
  if gpus:
    keras.mixed_precision.set_global_policy("mixed_float16")
    return tf.distribute.MirroredStrategy(), "mixed_float16", len(gpus)
  keras.mixed_precision.set_global_policy("float32")
  return tf.distribute.get_strategy(), "float32", 0


def callbacks(output: str, patience: int, monitor: str):
  import keras

  return [
      keras.callbacks.ModelCheckpoint(os.path.join(output, "model.keras"), monitor=monitor,
                                      save_best_only=True),
      keras.callbacks.BackupAndRestore(os.path.join(output, "backup")),
      keras.callbacks.EarlyStopping(monitor=monitor, patience=patience,
                                    restore_best_weights=True),
      keras.callbacks.TensorBoard(os.path.join(output, "logs")),
      keras.callbacks.CSVLogger(os.path.join(output, "history.csv"), append=True),
  ]


def run(argv=None) -> int:
  parser = _parser()
  args = parser.parse_args(argv)
  if args.epochs < 1 or args.batch_size < 1:
    parser.error("--epochs and --batch_size must be positive")

  import keras

  from trainer import data, models, report

  keras.utils.set_random_seed(args.seed)
  try:
    splits = data.load(args.dataset, args.data_dir or os.environ.get("TFDS_DATA_DIR"),
                       args.channels, args.batch_size, args.seed)
  except data.DatasetMissing as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  os.makedirs(args.output, exist_ok=True)
  strategy, precision, n_gpus = strategy_and_precision()
  image_size = splits.info.features["image"].shape[0]
  with strategy.scope():
    model = models.compile_model(
        models.build_model(args.model, image_size, args.channels, len(splits.speakers)),
        args.learning_rate, decay_steps=args.epochs * splits.train_steps)
  monitor = "val_loss" if splits.validation is not None else "loss"
  started = time.time()
  history = model.fit(splits.train, validation_data=splits.validation, epochs=args.epochs,
                      callbacks=callbacks(args.output, args.patience, monitor), verbose=2)
  seconds = time.time() - started
  # EarlyStopping restored the best weights, or training ran out its epochs:
  # either way save what is evaluated, so model.keras is the reported model.
  model.save(os.path.join(args.output, "model.keras"))
  metrics = report.write(model, splits, args, history=history, seconds=seconds,
                         device=f"{n_gpus} GPU" if n_gpus else "CPU", precision=precision)
  print(f"test accuracy {metrics['test_accuracy']:.4f} on {metrics['test_examples']} clips, "
        f"{len(splits.speakers)} speakers -> {args.output}")
  return 0


if __name__ == "__main__":
  sys.exit(run())
