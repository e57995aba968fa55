"""VoxCeleb 1/2: `root/[wav/]<idNNNNN>/<video>/<utt>.wav`.

Utterances of one video share a session, so the video is the split group.
VoxCeleb2 ships AAC (.m4a), which libsndfile cannot decode: convert to WAV or
FLAC first (the report lists such files as not_audio).
"""

import os
import re

from pipeline.corpus.tree import has_folder, speaker_files

_ID = re.compile(r"^id\d+$")


def _base(root):
  """root/wav when the corpus keeps its speakers there (local or bucket)."""
  if has_folder(root, "wav") and not _ID.match(os.path.basename(root.rstrip("/"))):
    return root.rstrip("/") + "/wav"
  return root


def matches(root: str) -> bool:
  try:
    dirs = [d for d in os.listdir(_base(root)) if os.path.isdir(os.path.join(_base(root), d))]
  except OSError:
    return False
  return bool(dirs) and all(_ID.match(d) for d in dirs)


def files(root: str):
  depth = 1 if _base(root) != root else 0
  return speaker_files(root, speaker_depth=depth,
                       group_of=lambda parts: "/".join(parts[:depth + 2]))
