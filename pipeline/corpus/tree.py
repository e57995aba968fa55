"""Walking a corpus directory: every file, symlinks checked against the root."""

from __future__ import annotations

import dataclasses
import errno
import os
import stat
from typing import Iterator

from pipeline.audio import AUDIO_EXTENSIONS

# Reasons decided while listing, before any audio is read.
CORPUS_REASONS = {
    "not_audio": "not an audio file (by its extension)",
    "outside_root": "resolves to a path outside the corpus root",
    "no_speaker": "not inside a speaker folder of the layout",
    "missing": "listed in the manifest but not found",
    "duplicate": "listed more than once in the manifest",
    "unreadable": "the file or its folder cannot be read",
    "special_file": "not a regular file (FIFO, socket or device): never opened",
}


def special_kind(path: str) -> str | None:
  """'FIFO', 'socket', 'device' for what opening would block on or stream
  from forever; None for a regular file (or one that cannot be stat'ed)."""
  try:
    mode = os.stat(path).st_mode
  except OSError:
    return None
  if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
    return None
  if stat.S_ISFIFO(mode):
    return "FIFO"
  if stat.S_ISSOCK(mode):
    return "socket"
  return "device"


@dataclasses.dataclass(frozen=True)
class CorpusFile:
  """One file of a corpus, with what the layout says about it."""

  path: str                  # absolute path to read
  relpath: str               # path relative to the corpus root, '/'-separated
  speaker: str | None = None
  group: str | None = None   # recording session: files of a group share a split
  status: str = "audio"      # "audio" = to decode; otherwise a CORPUS_REASONS key
  detail: str = ""

  def refused(self, status: str, detail: str = "") -> "CorpusFile":
    return dataclasses.replace(self, status=status, detail=detail)


def printable(relpath: str) -> str:
  """File names that are not valid UTF-8 (surrogate-escaped by os) made printable."""
  try:
    relpath.encode("utf-8")
    return relpath
  except UnicodeEncodeError:
    return os.fsencode(relpath).decode("utf-8", "backslashreplace")


def is_url(path: str) -> bool:
  """gs://, s3://, hdfs://...: a path for Beam's filesystems, not the OS."""
  return "://" in path


def _walk_url(root: str) -> Iterator[tuple[str, str, CorpusFile | None]]:
  """Every object under a bucket or HDFS prefix, through Beam's filesystems
  (object stores have no links or special files)."""
  from apache_beam.io.filesystems import FileSystems

  base = root.rstrip("/") + "/"
  try:
    found = FileSystems.match([base + "**"])[0].metadata_list
  except Exception as e:  # BeamIOError, or a filesystem whose extra is not installed
    raise OSError(f"{root}: cannot be listed ({str(e).splitlines()[0][:200]})") from None
  for m in sorted(found, key=lambda m: m.path):
    if not m.path.endswith("/"):
      yield m.path, m.path[len(base):], None


def walk(root: str) -> Iterator[tuple[str, str, CorpusFile | None]]:
  """(absolute path, relative path, refusal or None) for every file under root.

  Symlinks are followed only when they resolve inside the root; directories
  that cannot be listed are reported, not skipped.
  """
  if is_url(root):
    yield from _walk_url(root)
    return
  real_root = os.path.realpath(root)
  errors = []
  for dirpath, dirnames, filenames in os.walk(root, onerror=errors.append):
    dirnames.sort()
    for name in sorted(filenames) + sorted(d for d in dirnames if os.path.islink(
        os.path.join(dirpath, d))):
      path = os.path.join(dirpath, name)
      rel = printable(os.path.relpath(path, root).replace(os.sep, "/"))
      refusal = None
      real = os.path.realpath(path)
      if os.path.islink(path) and os.path.commonpath([real, real_root]) != real_root:
        refusal = CorpusFile(path, rel, status="outside_root", detail=f"-> {real}")
      elif os.path.isdir(path):
        continue  # a symlinked folder inside the root is walked through its target
      elif not os.path.exists(path):
        refusal = CorpusFile(path, rel, status="missing", detail=_broken_link(path))
      elif special_kind(path):
        refusal = CorpusFile(path, rel, status="special_file", detail=special_kind(path))
      yield path, rel, refusal
  for err in errors:
    rel = printable(os.path.relpath(err.filename, root).replace(os.sep, "/"))
    yield err.filename, rel + "/", CorpusFile(err.filename, rel + "/", status="unreadable",
                                              detail=err.strerror or str(err))


def _broken_link(path: str) -> str:
  try:
    os.stat(path)
  except OSError as e:
    if e.errno == errno.ELOOP:
      return "symlink loop"
  return "dangling symlink"


def is_audio(relpath: str) -> bool:
  return os.path.splitext(relpath)[1].lower() in AUDIO_EXTENSIONS


def speaker_files(root: str, speaker_depth: int = 0,
                  group_of=lambda parts: "/".join(parts)) -> Iterator[CorpusFile]:
  """Files of a tree whose path component `speaker_depth` names the speaker.

  `group_of(parts)` maps the relative path's components to the recording
  session that must not be split.
  """
  for path, rel, refusal in walk(root):
    if refusal is not None:
      yield refusal
      continue
    f = CorpusFile(path, rel)
    parts = rel.split("/")
    if not is_audio(rel):
      ext = os.path.splitext(rel)[1].lower() or "no extension"
      yield f.refused("not_audio", ext)
    elif len(parts) <= speaker_depth + 1:
      yield f.refused("no_speaker", "directly in the corpus root")
    else:
      yield dataclasses.replace(f, speaker=parts[speaker_depth], group=group_of(parts))
