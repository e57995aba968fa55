"""Progress of a build, seen from the driver: shards as they are written.

Each shard task renames its TFRecord file into place only when it is
complete, and the file name says how many shards its split has
(`...-train.tfrecord-00003-of-00055`). So the driver, whatever the runner,
can watch the dataset folder and tell how much is written, with no channel
from the workers: a line whenever the count moves (at most every few
seconds), rewritten in place on a terminal, and a last line at the end.
"""

from __future__ import annotations

import re
import sys
import threading
import time

_SHARD = re.compile(r"-(train|validation|test)\.(?:tfrecord|array_record)-\d{5}-of-(\d{5})$")


def count_shards(folder) -> tuple[int, int, set]:
  """(shards written, shards planned in the splits seen so far, splits seen)."""
  written, planned = 0, {}
  for path in folder.glob("*-of-*"):
    m = _SHARD.search(path.name)
    if m:
      written += 1
      planned[m.group(1)] = int(m.group(2))
  return written, sum(planned.values()), set(planned)


class ShardProgress:
  """`with ShardProgress(folder, files):` around the Beam job."""

  def __init__(self, folder, files: int, every: float = 3.0, stream=None):
    self.folder, self.files, self.every = folder, files, every
    self.stream = stream or sys.stdout
    self.tty = self.stream.isatty()
    self._stop = threading.Event()
    self._last = None
    self._started = time.monotonic()

  def _say(self, final: bool = False) -> None:
    try:
      written, planned, splits = count_shards(self.folder)
    except OSError:
      return
    if not final and (written, planned) == self._last:
      return
    self._last = (written, planned)
    elapsed = time.monotonic() - self._started
    if written == 0 and not final:
      text = f"encoding {self.files:,} files: analysing, planning shards ({elapsed:.0f} s)"
    else:
      of = f" of {planned:,}" if len(splits) == 3 or final else f" (of {planned:,} so far)"
      text = f"encoding {self.files:,} files: {written:,}{of} shards written ({elapsed:.0f} s)"
    if self.tty:
      self.stream.write("\r" + text.ljust(78) + ("\n" if final else ""))
    else:
      self.stream.write(text + "\n")
    self.stream.flush()

  def _run(self) -> None:
    while not self._stop.wait(self.every):
      self._say()

  def __enter__(self):
    self._thread = threading.Thread(target=self._run, daemon=True)
    self._thread.start()
    return self

  def __exit__(self, kind, value, traceback):
    self._stop.set()
    self._thread.join()
    if kind is None:
      self._say(final=True)
    elif self.tty:
      self.stream.write("\n")
    return False
