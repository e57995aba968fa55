"""Worker processes never outlive the build that started them.

Beam's local runner starts its SDK workers as child processes. If the build
is killed outright (SIGKILL, the OOM killer), nothing in it runs again, and
its workers, orphaned, would keep running. So before the build imports Beam
it puts a random token in its environment, which every process it starts
inherits, and forks a guard: a small process that waits on a pipe whose
other end only the build holds. A build that ends cleanly says so on the
pipe; if the pipe closes without a word (the build was killed, or failed),
the guard kills every process that carries the token. Orphans are found by
what they inherited, not by a family tree their parent's death erased.
Linux only (it reads /proc); elsewhere nothing is done.
"""

from __future__ import annotations

import os
import secrets
import signal

TOKEN_VARIABLE = "A2I_BUILD_GUARD"


class Guard:
  """`with Guard():` around the part of a build that starts workers. Leaving
  the block normally stands the guard down; leaving it by an exception
  (Ctrl-C included) or dying inside it makes the guard kill the processes
  the build started."""

  def __enter__(self):
    self.write_end = None
    if not os.path.isdir("/proc/self/task"):
      return self
    token = secrets.token_hex(16)
    self.previous = os.environ.get(TOKEN_VARIABLE)
    os.environ[TOKEN_VARIABLE] = token   # for every process started from here on
    read_end, self.write_end = os.pipe()  # not inherited by the workers (O_CLOEXEC)
    if os.fork():
      os.close(read_end)
      return self
    try:
      os.close(self.write_end)
      signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the build's to handle
      os.setpgid(0, 0)
      quiet = os.open(os.devnull, os.O_RDWR)         # hold none of the build's pipes open
      for fd in (0, 1, 2):
        os.dup2(quiet, fd)
      if not os.read(read_end, 4):                   # blocks until the build ends
        kill_carriers(f"{TOKEN_VARIABLE}={token}".encode())
    finally:
      os._exit(0)

  def __exit__(self, exc_type, *exc):
    if self.write_end is None:
      return False
    if exc_type is None:          # a clean end: the workers are gone already
      os.write(self.write_end, b"done")
    os.close(self.write_end)      # else (killed, Ctrl-C, error): the guard reaps them
    if self.previous is None:
      os.environ.pop(TOKEN_VARIABLE, None)
    else:
      os.environ[TOKEN_VARIABLE] = self.previous
    return False


def kill_carriers(entry: bytes) -> list[int]:
  """SIGKILLs every process whose environment holds `entry`; returns their pids."""
  killed = []
  for name in os.listdir("/proc"):
    if not name.isdigit() or int(name) == os.getpid():
      continue
    try:
      with open(f"/proc/{name}/environ", "rb") as f:
        carries = entry in f.read().split(b"\0")
      if carries:
        os.kill(int(name), signal.SIGKILL)
        killed.append(int(name))
    except OSError:   # gone already, or not ours to read
      pass
  return killed
