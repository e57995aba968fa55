"""The one training protocol: every run (fit, ablation rows and baselines,
scaling points, verification) is `train(config)`.

    result = train(config)                               # a study row: no folder
    result = train(config, folder=run)                   # trainer.fit: checkpoints, logs
    result = train(config, splits=log_mel_splits)        # a network on other inputs

Epochs: `config.epochs`, or sized from the training split: enough epochs for
~1,500 optimisation steps, at least 8 and at most 60 (a 2-voice demo of 876
clips gets 54, a 20,000-clip corpus 8). The learning rate follows a cosine
over them; training stops earlier when the validation loss has not improved
by 0.001 for `config.patience` epochs, and the best weights are kept. A
model that fuses plane groups (`cells` on several planes) then has its
fusion weights fitted on the validation split (heads.calibrate_fusion).
With `backend="lda"` the network's softmax is then replaced by LDA fitted on
the training clips' embeddings (trainer.heads), with `backend="average"` by
the average of the two's log-posteriors; with `backend="auto"` (the
default) by the average unless the softmax or LDA alone is clearly better
on the validation split (heads.choose_backend).
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time

from trainer.config import TrainConfig

TARGET_STEPS = 1500
EPOCH_RANGE = (8, 60)
MIN_DELTA = 1e-3        # nats of loss: smaller improvements do not reset the patience


def early_stopping(monitor: str, patience: int):
  """Stops on a plateau: no improvement of at least MIN_DELTA for `patience`
  epochs (a loss that falls from 1e-5 to 1e-6 has stopped learning
  anything); the best weights are restored."""
  import keras

  return keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, min_delta=MIN_DELTA,
                                       restore_best_weights=True)


def epochs_for(steps_per_epoch: int) -> int:
  return min(max(math.ceil(TARGET_STEPS / max(steps_per_epoch, 1)), EPOCH_RANGE[0]),
             EPOCH_RANGE[1])


@dataclasses.dataclass
class TrainResult:
  model: object
  history: object
  splits: object
  epochs: int              # the schedule's length
  seconds: float
  device: str
  precision: str
  best_epoch: int          # 1-based epoch whose weights the model holds
  fusion_weights: list | None = None   # per plane group, fitted on validation (cells)
  network: object = None   # the trained network with its own softmax (`model` with backend lda)
  lda: object = None       # the network with the LDA head (backends lda, average and auto)
  average: object = None   # the network with both heads averaged (backends average and auto)
  backend_choice: dict | None = None   # backend auto: what was chosen, on what evidence
  keras_backend: str = "tensorflow"   # what computed it (KERAS_BACKEND)


def strategy_and_precision(choice: str = "auto"):
  """(the context to build models in, as a function; precision policy; GPUs), for the
  Keras backend in use (KERAS_BACKEND). TensorFlow: MirroredStrategy over
  the visible GPUs, mixed float16 unless told otherwise. JAX and PyTorch:
  data parallel over the visible GPUs (keras.distribution, JAX), mixed
  bfloat16 on a GPU. On a CPU, float32."""
  import contextlib

  import keras

  backend = keras.backend.backend()
  if backend == "tensorflow":
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    policy = choice if choice != "auto" else ("mixed_float16" if gpus else "float32")
    keras.mixed_precision.set_global_policy(policy)
    strategy = tf.distribute.MirroredStrategy() if gpus else tf.distribute.get_strategy()
    return strategy.scope, policy, len(gpus)
  gpus = [d for d in keras.distribution.list_devices() if not d.lower().startswith("cpu")] \
      if backend == "jax" else _torch_gpus()
  policy = choice if choice != "auto" else ("mixed_bfloat16" if gpus else "float32")
  keras.mixed_precision.set_global_policy(policy)
  if backend == "jax" and len(gpus) > 1:
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=gpus))
  return contextlib.nullcontext, policy, len(gpus)


def device_name(gpus: int) -> str:
  """What the model trained on: "CPU", or the GPU count and kind."""
  if not gpus:
    return "CPU"
  import keras

  kind = ""
  if keras.backend.backend() == "jax":
    import jax

    kind = f" ({jax.devices()[0].device_kind})"
  elif keras.backend.backend() == "torch":
    import torch

    kind = f" ({torch.cuda.get_device_name(0)})"
  return f"{gpus} GPU{kind}"


def _torch_gpus() -> list:
  import torch

  return [f"cuda:{k}" for k in range(torch.cuda.device_count())]


def verbosity() -> int:
  """A progress bar with its ETA on a terminal; one line per epoch in a log."""
  return 1 if sys.stdout.isatty() else 2


def _network(config: TrainConfig, splits, classes: int):
  """`config.model` for the inputs of `splits`: an image network built from
  the dataset's encoding spec, or the log-mel TDNN (its input normalisation
  adapted to the training split)."""
  from trainer import networks

  if config.model == networks.LOGMEL:
    model = networks.build_logmel_model(*splits.input_shape[:2], classes)
    model.get_layer("normalise").adapt(splits.train.map(lambda x, y: x))
    return model
  return networks.build_model(config.model, splits.dataset.spec, splits.dataset.image_size,
                              config.channels, classes, pooling=config.pooling)


def train(config: TrainConfig, speakers: list[int] | None = None, folder: str | None = None,
          validation: bool = True, verbose: int | None = None, splits=None) -> TrainResult:
  """Trains `config.model` on `config.dataset` (optionally on a subset of
  its speakers, relabelled 0..k-1), or on `splits` when given (inputs made
  elsewhere, e.g. log-mel spectrograms: trainer.data.from_arrays). With
  `folder`: the best model, a backup to resume from, TensorBoard logs and
  the per-epoch history go there."""
  import keras

  from trainer import data, heads, networks

  keras.backend.clear_session()
  keras.utils.set_random_seed(config.seed)
  if splits is None:
    splits = data.load(config.dataset, config.data_dir or os.environ.get("TFDS_DATA_DIR"),
                       config.channels, config.batch_size, config.seed, speakers=speakers)
  scope, precision, gpus = strategy_and_precision(config.precision)
  epochs = config.epochs or epochs_for(splits.train_steps)
  classes = len(speakers) if speakers else len(splits.speakers)
  backend = keras.backend.backend()
  with scope():
    # JAX always compiles the step with XLA; TensorFlow when --xla says so.
    model = networks.compile_model(_network(config, splits, classes), config.learning_rate,
                                   decay_steps=epochs * splits.train_steps,
                                   jit_compile=config.xla or backend == "jax")
  held_out = splits.validation if validation else None
  monitor = "val_loss" if held_out is not None else "loss"
  stopper = early_stopping(monitor, config.patience)
  callbacks = [stopper]
  if folder:
    callbacks += [
        keras.callbacks.ModelCheckpoint(os.path.join(folder, "model.keras"), monitor=monitor,
                                        save_best_only=True),
        keras.callbacks.BackupAndRestore(os.path.join(folder, "backup")),
        keras.callbacks.CSVLogger(os.path.join(folder, "history.csv"), append=True),
    ]
    if data.tensorflow_installed():   # Keras writes TensorBoard logs through tf.summary
      callbacks.append(keras.callbacks.TensorBoard(os.path.join(folder, "logs")))
  started = time.time()
  history = model.fit(splits.train, validation_data=held_out, epochs=epochs,
                      callbacks=callbacks, verbose=verbosity() if verbose is None else verbose,
                      shuffle=False)   # the input pipeline shuffles, seeded
  fusion = heads.calibrate_fusion(model, held_out) if held_out is not None else None
  network, lda, average, choice = model, None, None, None
  if config.backend != "softmax":
    with scope():
      model = lda = heads.with_lda_head(network, splits.train, classes)
  if config.backend in ("average", "auto"):
    with scope():
      model = average = heads.with_average_head(network, lda)
  if config.backend == "auto":
    candidates = {"softmax": network, "lda": lda, "average": average}
    chosen, choice = heads.choose_backend(candidates, held_out)
    model = candidates[chosen]
  return TrainResult(model, history, splits, epochs, time.time() - started,
                     device_name(gpus), precision, stopper.best_epoch + 1,
                     fusion, network, keras_backend=backend, lda=lda, average=average,
                     backend_choice=choice)
