"""Walking a corpus directory: every file, symlinks checked against the root."""

from __future__ import annotations

import dataclasses
import errno
import functools
import os
import stat
from typing import Iterator

from pipeline.audio import AUDIO_EXTENSIONS

# Reasons decided while listing, before any audio is read.
CORPUS_REASONS = {
    "not_audio": "not an audio file (by its extension)",
    "outside_root": "resolves to a path outside the corpus root",
    "no_speaker": "not inside a speaker folder of the layout",
    "missing": "the path leads to no file (a dangling symlink, a symlink loop, or a "
               "manifest row naming no file)",
    "duplicate": "the same file as another one listed (a symlink, a hard link or a "
                 "repeated manifest row): listed once, under the name in the detail",
    "linked_folder": "a symlink to a folder inside the corpus: its files are listed "
                     "under the folder it points to",
    "empty_folder": "a folder with no file in it",
    "unreadable": "the file or its folder cannot be read",
    "special_file": "not a regular file (FIFO, socket or device): never opened",
    "not_in_splits_file": "not listed in --splits_file, so in no split",
    "listed_not_found": "listed in --splits_file, but no such audio file in the corpus",
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
  split: str | None = None   # the split an official list (--splits_file) gives it

  def refused(self, status: str, detail: str = "") -> "CorpusFile":
    return dataclasses.replace(self, status=status, detail=detail)


def escape(relpath: str) -> str:
  """A file or speaker name as the report, the examples' keys and the class
  labels show it: unique and reversible (`unescape`) for any name the OS
  can hold, and safe in TFDS's label file (one name a line, stripped).

  A backslash escapes: the backslash itself (\\\\); a byte that is not UTF-8
  (\\x80-\\xff; os.fsdecode keeps it as a surrogate); an ASCII control
  character (\\x00-\\x1f, \\x7f); any other character that is not printable
  or is white space at either end of a path component (\\uNNNN, \\UNNNNNNNN).
  Other names are unchanged.
  """
  if relpath.isprintable() and "\\" not in relpath and not _edge_space(relpath):
    return relpath
  return "/".join(_escape_component(part) for part in relpath.split("/"))


def unescape(shown: str) -> str:
  """The name `escape` was given (undecodable bytes as os.fsdecode keeps them)."""
  out, i = [], 0
  while i < len(shown):
    if shown[i] != "\\":
      out.append(shown[i])
      i += 1
      continue
    kind = shown[i + 1]
    if kind == "\\":
      out.append("\\")
      i += 2
      continue
    width = {"x": 2, "u": 4, "U": 8}[kind]
    code = int(shown[i + 2:i + 2 + width], 16)
    out.append(chr(0xDC00 + code if kind == "x" and code >= 0x80 else code))
    i += 2 + width
  return "".join(out)


def _edge_space(relpath: str) -> bool:
  return any(part != part.strip() for part in relpath.split("/"))


def _escape_component(part: str) -> str:
  out = []
  for i, c in enumerate(part):
    code = ord(c)
    if c == "\\":
      out.append("\\\\")
    elif 0xDC80 <= code <= 0xDCFF:                 # an undecodable byte, surrogate-escaped
      out.append(f"\\x{code - 0xDC00:02x}")
    elif code < 0x20 or code == 0x7F:
      out.append(f"\\x{code:02x}")
    elif not c.isprintable() or (c.isspace() and i in (0, len(part) - 1)):
      out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    else:
      out.append(c)
  return "".join(out)


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


def subfolders(root: str) -> list[str]:
  """The names of the folders directly under `root`, sorted: through the OS,
  or for a bucket prefix from its objects' paths (buckets have no folders,
  only names with slashes)."""
  if not is_url(root):
    try:
      return sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    except OSError:
      return []
  return sorted({rel.split("/", 1)[0] for rel in _bucket_paths(root.rstrip("/")) if "/" in rel})


@functools.lru_cache(maxsize=8)
def _bucket_paths(root: str) -> tuple[str, ...]:
  """Every object under a bucket prefix, relative to it (one listing per
  prefix while a layout is detected)."""
  try:
    return tuple(rel for _, rel, _ in _walk_url(root))
  except OSError:
    return ()


def has_folder(root: str, name: str) -> bool:
  """Whether `root` holds a folder `name` (on a bucket: an object under
  `root/name/`), through the OS or Beam's filesystems."""
  if not is_url(root):
    return os.path.isdir(os.path.join(root, name))
  from apache_beam.io.filesystems import FileSystems

  try:
    return bool(FileSystems.match([f"{root.rstrip('/')}/{name}/**"], limits=[1])[0].metadata_list)
  except Exception:  # BeamIOError: nothing matched, or the scheme cannot be listed
    return False


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
    if not filenames and not dirnames and dirpath != root:
      rel = _relative(dirpath, root) + "/"
      yield dirpath, rel, CorpusFile(dirpath, rel, status="empty_folder")
    for name in sorted(filenames) + sorted(d for d in dirnames if os.path.islink(
        os.path.join(dirpath, d))):
      path = os.path.join(dirpath, name)
      rel = _relative(path, root)
      refusal = None
      real = os.path.realpath(path)
      if os.path.islink(path) and os.path.commonpath([real, real_root]) != real_root:
        refusal = CorpusFile(path, rel, status="outside_root", detail=f"-> {escape(real)}")
      elif os.path.isdir(path):
        # os.walk does not follow it: its files are listed under its target.
        refusal = CorpusFile(path, rel + "/", status="linked_folder",
                             detail=f"-> {_relative(real, real_root)}/")
      elif not os.path.exists(path):
        refusal = CorpusFile(path, rel, status="missing", detail=_broken_link(path))
      elif special_kind(path):
        refusal = CorpusFile(path, rel, status="special_file", detail=special_kind(path))
      yield path, refusal.relpath if refusal else rel, refusal
  for err in errors:
    rel = _relative(err.filename, root)
    yield err.filename, rel + "/", CorpusFile(err.filename, rel + "/", status="unreadable",
                                              detail=err.strerror or str(err))


def _relative(path: str, root: str) -> str:
  return escape(os.path.relpath(path, root).replace(os.sep, "/"))


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
