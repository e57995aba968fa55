"""VCTK: `root/wav48*/<pNNN>/<pNNN>_<utt>[_mic1|_mic2].(wav|flac)`.

In VCTK 0.92 each utterance exists twice, once per microphone: both takes are
one split group, or the same sentence would sit in train and test.
Transcripts (`txt/`) and metadata files are listed as not used.
"""

import os
import re

from pipeline.corpus.tree import speaker_files, subfolders

_MIC = re.compile(r"_mic\d$")


def matches(root: str) -> bool:
  return any(d.startswith("wav48") for d in subfolders(root))


def _group(parts):
  stem = os.path.splitext(parts[-1])[0]
  return parts[0] + "/" + parts[1] + "/" + _MIC.sub("", stem)


def files(root: str):
  """Every file; audio outside the `wav48*` folders is `no_speaker`. Decided
  from each file's own path, so a bucket lists like a local folder."""
  for f in speaker_files(root, speaker_depth=1, group_of=_group):
    if f.status == "audio" and not f.relpath.startswith("wav48"):
      yield f.refused("no_speaker", "outside the wav48* folders")
    else:
      yield f
