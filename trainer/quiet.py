"""TensorFlow started without the start-up lines a user cannot act on.

Importing TensorFlow on a machine without a GPU prints "Could not find cuda
drivers" (twice), a CPU-feature note and, on CPUs where oneDNN's custom
operations are on, a note saying so, through absl before any log level
applies: TF_CPP_MIN_LOG_LEVEL hides the second but not the first. So each
trainer command's `main` calls `start_tensorflow()` before anything imports
TensorFlow: the import, and the first look for GPUs (CUDA's "failed call to
cuInit" when there is none), run inside pipeline.console's `filtered_stderr`,
which drops those notes and nothing else. Errors still show. Importing this
module, or any of the trainer, changes nothing in the process.
"""

from __future__ import annotations

import importlib.util
import os
import sys

from pipeline.console import filtered_stderr

NOISE = ("All log messages before absl::InitializeLog() is called",
         "cudart_stub.cc", "Could not find cuda drivers", "cpu_feature_guard.cc",
         "To enable the following instructions", "rebuild TensorFlow with the appropriate",
         "oneDNN custom operations are on",    # on CPUs with AVX-512 VNNI or AMX
         "failed call to cuInit")              # CUDA's answer when there is no GPU to use


def start_tensorflow() -> None:
  """For a command's `main`: TensorFlow's C++ INFO and WARNING lines off
  (unless TF_CPP_MIN_LOG_LEVEL says otherwise; 0 shows everything), then
  TensorFlow imported and its GPUs listed with the notes above filtered.
  Once per process; nothing to do if TensorFlow is imported already, or
  not installed (the trainer then reads array_record builds without it)."""
  if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
    return
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  if os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0":
    return
  with filtered_stderr(NOISE):
    import tensorflow as tf

    tf.config.list_physical_devices("GPU")
