"""One build of a dataset config at a time, per data dir.

A build takes `<data_dir>/a2i_speakers/<config>/.build.lock` before it
lists the corpus: a file created exclusively (O_CREAT | O_EXCL, atomic on a
local or network file system) that names the build holding it (pid, host,
start time, command). A second build of the same config finds it and
either refuses at once with one line naming the first, or, with `--wait`,
waits for it to go. The lock is removed when the build ends, however it
ends short of being killed outright; a lock left by a killed build is
stale: its pid no longer runs on this host, and the next build takes it
over (and then removes what the killed build left).

Object stores (gs://, s3://) have no exclusive create: there the lock is
written after checking that none exists, which guards against a second build
started after the first has begun, not against two started within the same
second; and a lock from another host is never judged stale (its process
cannot be seen from here): remove it by hand if its build is known dead.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import sys
import time

LOCK_FILE = ".build.lock"


class LockHeld(RuntimeError):
  """Another build of the same config holds the lock; the message names it."""


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:      # someone else's process: it runs
    return True
  return True


class BuildLock:
  """`with BuildLock(folder):` around a build; LockHeld if another one runs."""

  def __init__(self, folder: str, wait: bool = False, poll_seconds: float = 2.0):
    self.folder, self.wait, self.poll = folder, wait, poll_seconds
    self.path = folder.rstrip("/") + "/" + LOCK_FILE
    self.owner = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": datetime.datetime.now().isoformat(timespec="seconds"),
                  "command": " ".join(sys.argv)}
    self.took_over = None     # the stale lock this build replaced, if any

  def describe(self, holder: dict) -> str:
    return (f"pid {holder.get('pid')} on {holder.get('host')}, started "
            f"{holder.get('started')}")

  def _read(self) -> dict | None:
    from etils import epath

    try:
      return json.loads(epath.Path(self.path).read_text())
    except FileNotFoundError:
      return None
    except (OSError, ValueError):
      return {}                  # being written: someone holds it

  def _stale(self, holder: dict) -> bool:
    return (holder.get("host") == self.owner["host"] and isinstance(holder.get("pid"), int)
            and not _alive(holder["pid"]))

  def _create(self) -> bool:
    """True if this build now holds the lock."""
    text = json.dumps(self.owner)
    if "://" in self.path:
      from etils import epath

      path = epath.Path(self.path)
      if path.exists():
        return False
      path.parent.mkdir(parents=True, exist_ok=True)
      path.write_text(text)
      return True
    os.makedirs(self.folder, exist_ok=True)
    try:
      fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      return False
    with os.fdopen(fd, "w") as f:
      f.write(text)
    return True

  def __enter__(self):
    while not self._create():
      holder = self._read()
      if holder is None:
        continue                 # released in between: try again
      if self._stale(holder):
        self.took_over = holder
        os.remove(self.path)
        continue
      if not self.wait:
        raise LockHeld(f"another build of this dataset is running ({self.describe(holder)}; "
                       f"lock {self.path}): wait for it, or rerun with --wait")
      time.sleep(self.poll)
    return self

  def __exit__(self, *exc):
    from etils import epath

    holder = self._read()
    if holder and holder.get("pid") == self.owner["pid"] and \
        holder.get("host") == self.owner["host"]:
      epath.Path(self.path).unlink(missing_ok=True)
    return False
