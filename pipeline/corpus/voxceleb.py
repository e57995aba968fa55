"""VoxCeleb 1/2: `root/[wav/|aac/]<idNNNNN>/<video>/<utt>.(wav|m4a)`.

VoxCeleb1 ships WAV under `wav/`, VoxCeleb2 AAC (.m4a) under `aac/` (dev)
or `wav/`-less trees: both are read as they are (AAC through FFmpeg,
pipeline.audio). Utterances of one video share a session, so the video is
the split group. Speakers are the `idNNNNN` folders.
"""

import os
import re

from pipeline.corpus.tree import has_folder, speaker_files, subfolders

_ID = re.compile(r"^id\d+$")
AUDIO_FOLDERS = ("wav", "aac")   # VoxCeleb1, VoxCeleb2


def _base(root: str) -> str:
  """root/wav or root/aac when the corpus keeps its speakers there (local or
  bucket); root itself when it holds the idNNNNN folders."""
  if _ID.match(os.path.basename(root.rstrip("/"))):
    return root
  for name in AUDIO_FOLDERS:
    if has_folder(root, name):
      return root.rstrip("/") + "/" + name
  return root


def matches(root: str) -> bool:
  dirs = subfolders(_base(root))
  return bool(dirs) and all(_ID.match(d) for d in dirs)


def files(root: str):
  depth = 1 if _base(root) != root else 0
  return speaker_files(root, speaker_depth=depth,
                       group_of=lambda parts: "/".join(parts[:depth + 2]))
