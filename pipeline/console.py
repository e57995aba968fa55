"""The console: lines a user cannot act on stay out of it, everything else passes.

`filtered_stderr(noise)` runs a block with file descriptor 2 led through a
filter, inherited by every process started inside it and seen by C
libraries too, that drops exactly the lines containing one of `noise` and
passes everything else through as it comes (errors and tracebacks
included). A multi-process build's SDK workers inherit the build's stderr,
and each one announces itself while starting (WORKER_NOISE) before any log
level it is given applies; the trainer uses the same filter for
TensorFlow's start-up lines (trainer/quiet.py, from each command's main).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading

WORKER_NOISE = (
    "apitools not found, and bigquery client libraries are not available",
    "Logging handler created.",
    "No semi_persistent_directory found",
    "Discarding unparseable args",
)


def _relay(read_fd: int, write_fd: int, noise) -> None:
  with os.fdopen(read_fd, "rb", buffering=0) as source:
    pending = b""
    while chunk := source.read(65536):
      pending += chunk
      *lines, pending = pending.split(b"\n")
      for line in lines:
        if not any(n.encode() in line for n in noise):
          os.write(write_fd, line + b"\n")
    if pending and not any(n.encode() in pending for n in noise):
      os.write(write_fd, pending)


@contextlib.contextmanager
def filtered_stderr(noise):
  sys.stderr.flush()
  original = os.dup(2)
  read_fd, write_fd = os.pipe()
  relay = threading.Thread(target=_relay, args=(read_fd, original, noise), daemon=True)
  relay.start()
  os.dup2(write_fd, 2)
  os.close(write_fd)
  try:
    yield
  finally:
    sys.stderr.flush()
    os.dup2(original, 2)   # our own end of the pipe is closed: EOF once the workers exit
    relay.join(timeout=1.0)
    if not relay.is_alive():   # else a worker still holds the pipe: the relay keeps `original`
      os.close(original)


class CommandParser(argparse.ArgumentParser):
  """The argument parser of every a2i command: a bad flag is one line (the
  program, the flag and what is wrong with it), not a usage block."""

  def error(self, message):
    self.exit(2, f"{self.prog}: error: {message}\n")
