"""The TFDS builder in process, on a tiny generated corpus: what it writes is
what `tfds.load` reads, with the report beside it (the end-to-end builds of
`python -m pipeline.build` are in test_build.py)."""

import json

import numpy as np
import pytest

from pipeline.audio import load_audio
from pipeline.clips import segment
from pipeline.encode import encode_clip
from pipeline.espeak import synthesize
from tests.helpers import write_wav

from tfds_a2i import A2iSpeakersConfig, Builder
from tfds_a2i.a2i_speakers.a2i_speakers_dataset_builder import REPORT_FILE

VOICES = {"ana": ("en+f3", 75), "bob": ("en+m3", 20)}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
  import tensorflow_datasets as tfds
  from apache_beam.options.pipeline_options import PipelineOptions

  root = tmp_path_factory.mktemp("dummy")
  for speaker, (voice, pitch) in VOICES.items():
    for i in range(4):
      x, sr = synthesize(f"Utterance {i} by {speaker}.", voice, rate=170, pitch=pitch)
      write_wav(root / "corpus" / speaker / f"{i}.wav", x, sr)
  (root / "corpus" / "bob" / "broken.wav").write_bytes(b"RIFF0000WAVE")
  config = A2iSpeakersConfig(name="dummy", input=str(root / "corpus"), layout="folders",
                             speakers=tuple(VOICES), image_size=64,
                             fractions=(0.5, 0.0, 0.5))
  builder = Builder(config=config, data_dir=str(root / "tfds"))
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      beam_options=PipelineOptions(["--runner=DirectRunner", "--direct_num_workers=1"])))
  return root


def test_what_the_builder_writes_tfds_reads_back(prepared):
  import tensorflow_datasets as tfds

  builder = tfds.builder("a2i_speakers/dummy", data_dir=str(prepared / "tfds"))
  assert builder.info.features["speaker"].names == list(VOICES)
  rows = [(split, ex) for split in builder.info.splits
          for ex in tfds.as_numpy(builder.as_dataset(split=split))]
  assert len(rows) == 8 and {s for s, _ in rows} == {"train", "test"}
  # Each example is the encoding of its own clip, recomputed here from the audio.
  split, ex = rows[0]
  clip = segment(load_audio(str(prepared / "corpus" / ex["recording"].decode())))[
      int(ex["clip_index"])]
  expected = encode_clip(clip.samples, 64)
  np.testing.assert_array_equal(ex["image"], expected.image)
  assert list(VOICES)[ex["speaker"]] == ex["recording"].decode().split("/")[0]
  # No recording in two splits.
  by_split = {}
  for s, e in rows:
    by_split.setdefault(s, set()).add(e["recording"])
  assert not by_split["train"] & by_split["test"]


def test_the_report_lies_beside_the_data_and_accounts_for_every_file(prepared):
  version = prepared / "tfds" / "a2i_speakers" / "dummy" / str(Builder.VERSION)
  report = json.loads((version / REPORT_FILE).read_text())
  files = {r["file"]: r for r in report["files"]}
  assert len(files) == 9 and files["bob/broken.wav"]["status"] == "failed"
  assert report["summary"]["encoded"] == 8 and report["summary"]["clips"] == 8


def test_tfds_own_tools_work_on_it(prepared):
  """tfds.as_dataframe and tfds.show_examples, as a TFDS user would call them."""
  import matplotlib

  matplotlib.use("Agg")
  import tensorflow_datasets as tfds

  ds, info = tfds.load("a2i_speakers/dummy", split="train", data_dir=str(prepared / "tfds"),
                       with_info=True)
  frame = tfds.as_dataframe(ds.take(3), info)
  assert len(frame) == 3 and {"image", "speaker", "descriptors"} <= set(frame.columns)
  figure = tfds.show_examples(ds, info, rows=1, cols=2)
  assert len(figure.axes) == 2
