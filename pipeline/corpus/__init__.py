"""Corpus layouts: one small module per way speakers' recordings are laid out.

Each layout module exposes `files(root) -> Iterator[CorpusFile]` and yields one
record for *every* file it finds, usable or not, so that nothing under the
input is lost without a reason. Adding a layout means adding a module here and
a line in `LAYOUTS`.
"""

from __future__ import annotations

import os

from pipeline.corpus import folders, librispeech, manifest, vctk, voxceleb
from pipeline.corpus.tree import CORPUS_REASONS, CorpusFile, is_url

LAYOUTS = {
    "folders": folders,
    "librispeech": librispeech,
    "vctk": vctk,
    "voxceleb": voxceleb,
    "manifest": manifest,
}

__all__ = ["CORPUS_REASONS", "CorpusFile", "LAYOUTS", "detect_layout", "is_url", "list_corpus",
           "stream_corpus"]


def detect_layout(root: str) -> str:
  """Guesses the layout of `root` from its shape (of its folders, or of its
  objects' paths on a bucket); 'folders' when nothing else fits."""
  if not is_url(root) and os.path.isfile(root):
    return "manifest"
  for name in ("vctk", "librispeech", "voxceleb"):
    if LAYOUTS[name].matches(root):
      return name
  return "folders"


def list_corpus(root: str, layout: str = "auto") -> tuple[str, list[CorpusFile]]:
  """(layout used, every file of the corpus sorted by relative path), each
  file listed once, as `stream_corpus` lists it: a second name for the same
  file is refused as a duplicate of the first (audio identical in content is
  found later, when the analysis pass has decoded it)."""
  layout, files = stream_corpus(root, layout)
  return layout, sorted(files, key=lambda f: f.relpath)


def stream_corpus(root: str, layout: str = "auto"):
  """(layout used, every file of the corpus, a generator): what a build
  lists, without holding the listing. Each file is listed once, as by
  `list_corpus` (the name kept is the real file's, not a link's, then the
  first walked), remembering only a number per file: its identity on disk.
  Symlinks (rare) are decided at the end, once every real file is known."""
  if layout == "auto":
    layout = detect_layout(root)
  if layout not in LAYOUTS:
    raise ValueError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
  return layout, _one_name_per_file_streaming(LAYOUTS[layout].files(root))


def _one_name_per_file_streaming(files):
  seen = set()        # (device, inode) of each real file listed, packed in one int
  named = {}          # the same, with the name kept, for files with several names
  links = []
  for f in files:
    if f.status != "audio" or is_url(f.path):
      yield f
      continue
    try:
      st = os.stat(f.path)
    except OSError:
      yield f  # the decoder will say why
      continue
    key = (st.st_dev << 64) | st.st_ino
    if os.path.islink(f.path):
      links.append((f, key))
    elif key in seen:
      yield f.refused("duplicate", f"same file as {named[key]}")
    else:
      seen.add(key)
      if st.st_nlink > 1:
        named[key] = f.relpath
      yield f
  for f, key in sorted(links, key=lambda item: item[0].relpath):
    if key in seen:
      first = named.get(key) or _real_name(f)
      yield f.refused("duplicate", f"same file as {first}")
    else:
      seen.add(key)
      named[key] = f.relpath
      yield f


def _real_name(f: CorpusFile) -> str:
  """The corpus name of the file a symlink points to (a file with one name:
  its real path under the root)."""
  from pipeline.corpus.tree import escape

  rel_parts = f.relpath.split("/")
  path_parts = f.path.replace(os.sep, "/").split("/")
  root = "/".join(path_parts[:len(path_parts) - len(rel_parts)]) or "/"
  real = os.path.relpath(os.path.realpath(f.path), os.path.realpath(root))
  return escape(real.replace(os.sep, "/"))
