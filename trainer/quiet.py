"""TensorFlow imported without the start-up lines a user cannot act on.

Importing TensorFlow on a machine without a GPU prints "Could not find cuda
drivers" (twice), a CPU-feature note and, on CPUs where oneDNN's custom
operations are on, a note saying so, through absl before any log level
applies: TF_CPP_MIN_LOG_LEVEL hides the second but not the first. The first
`import tensorflow` of a trainer command therefore runs with file
descriptor 2 led through pipeline.console's filter, which drops those notes
and nothing else, and so does the first look for GPUs (CUDA's "failed call
to cuInit" when there is none). Other errors still show.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

from pipeline.console import filtered_stderr

NOISE = ("All log messages before absl::InitializeLog() is called",
         "cudart_stub.cc", "Could not find cuda drivers", "cpu_feature_guard.cc",
         "To enable the following instructions", "rebuild TensorFlow with the appropriate",
         "oneDNN custom operations are on")   # on CPUs with AVX-512 VNNI or AMX
NO_GPU = ("failed call to cuInit",)    # CUDA's answer when there is no GPU to use


class _Loader(importlib.abc.Loader):
  def __init__(self, loader):
    self.loader = loader

  def create_module(self, spec):
    return self.loader.create_module(spec)

  def exec_module(self, module):
    with filtered_stderr(NOISE):
      self.loader.exec_module(module)
    # The first look for GPUs initialises CUDA, which reports at ERROR level
    # that there is none; the run's metrics say which device trained.
    with filtered_stderr(NOISE + NO_GPU):
      module.config.list_physical_devices("GPU")


class _QuietTensorFlow(importlib.abc.MetaPathFinder):
  """Finds `tensorflow` once, and executes it inside `filtered_stderr`."""

  def find_spec(self, name, path=None, target=None):
    if name != "tensorflow":
      return None
    sys.meta_path.remove(self)
    spec = importlib.util.find_spec(name)
    if spec is not None and spec.loader is not None:
      spec.loader = _Loader(spec.loader)
    return spec


def install() -> None:
  if "tensorflow" not in sys.modules and not any(
      isinstance(f, _QuietTensorFlow) for f in sys.meta_path):
    sys.meta_path.insert(0, _QuietTensorFlow())
