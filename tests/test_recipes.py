"""docs/recipes.md, end to end, on faithful miniatures: real human speech
(KLettres: each speaker also a language and a recording setup) laid out
exactly as VoxCeleb1 (wav/idNNNNN/<video>/<utt>.wav, iden_split.txt, a
trials file), VoxCeleb2 (aac/idNNNNN/<video>/<utt>.m4a, encoded here by
FFmpeg's AAC encoder through PyAV), LibriSpeech and VCTK, run with the
recipes' own commands."""

import json
import pathlib
import re

import numpy as np
import pytest
import soundfile as sf

from pipeline.audio import load_audio
from tests.helpers import build, cli, write_compressed

ROOT = pathlib.Path(__file__).resolve().parent.parent


def klettres_takes(real_speech, speakers, per_speaker):
  """{speaker: [16 kHz takes]} of the `speakers` KLettres speakers with the
  most recordings: each take three of the speaker's recordings in a row
  (a few letters read one after another: over a second of speech)."""
  folders = sorted((real_speech / "klettres").iterdir(),
                   key=lambda d: (-len(list(d.rglob("*.ogg"))), d.name))[:speakers]
  out = {}
  for folder in folders:
    paths = sorted(folder.rglob("*.ogg"))[:3 * per_speaker]
    out[folder.name] = [np.concatenate([load_audio(str(p)) for p in paths[k:k + 3]])
                        for k in range(0, len(paths) - 2, 3)]
  return out


@pytest.fixture(scope="module")
def voxceleb(real_speech, tmp_path_factory):
  """(VOX1, VOX2) in miniature: VOX1/wav holds 4 dev speakers (id1000N) and
  3 test speakers (id1027N), videos of 3 takes, with iden_split.txt over
  all of them and veri_test2.txt over the test speakers; VOX2/dev/aac the
  dev speakers' takes as AAC (.m4a)."""
  from pipeline.trials import draw_trials

  vox1, vox2 = tmp_path_factory.mktemp("VOX1"), tmp_path_factory.mktemp("VOX2")
  takes = klettres_takes(real_speech, 7, 12)
  iden, test_files = [], []
  for k, (name, recordings) in enumerate(sorted(takes.items())):
    dev = k < 4
    speaker = f"id{10001 + k:05d}" if dev else f"id{10270 + k:05d}"
    for j, x in enumerate(recordings):
      video, utt = f"v{k}{j // 3:02d}xYz", f"{j % 3 + 1:05d}"
      rel = f"{speaker}/{video}/{utt}.wav"
      sf.write(str(_made(vox1 / "wav" / rel)), x, 16000, subtype="PCM_16")
      iden.append(f"{1 if j < 6 else 2 if j < 9 else 3} {rel}")
      if dev:
        write_compressed(vox2 / "dev" / "aac" / speaker.replace("id1", "id0") / video
                         / f"{utt}.m4a", x, 16000)
      else:
        test_files.append((rel, speaker, f"{speaker}/{video}"))
  (vox1 / "iden_split.txt").write_text("\n".join(iden) + "\n")
  (vox1 / "veri_test2.txt").write_text("".join(
      f"{label} {a} {b}\n" for label, a, b in draw_trials(test_files, 2, 0)))
  return vox1, vox2


def _made(path):
  path.parent.mkdir(parents=True, exist_ok=True)
  return path


def recipe(name):
  """The commands of a recipe in docs/recipes.md, each as an argv list."""
  text = (ROOT / "docs" / "recipes.md").read_text()
  section = text.split(f"<!-- recipe: {name} -->")[1].split("<!-- end -->")[0]
  block = re.findall(r"```bash\n(.*?)```", section, re.S)[0]
  return [line.split() for line in block.splitlines() if line.startswith("python -m")]


def run_recipe(name, places: dict, flags: dict, only=None):
  """Runs a recipe's commands as written, its placeholders (VOX1, D, RUN...)
  replaced by `places` and the values of `flags` (e.g. --image_size) by
  theirs; `only`: the modules to run."""
  for argv in recipe(name):
    module = argv[2]
    if only and module not in only:
      continue
    args = [re.sub(r"^(" + "|".join(places) + r")(?=/|$)", lambda m: str(places[m.group(1)]), a)
            for a in argv[3:]]
    for flag, value in flags.items():
      if flag in args:
        args[args.index(flag) + 1] = value
      elif module == "trainer.fit" and flag == "--epochs":
        args += [flag, value]
    if module == "pipeline.build":
      build([a for a in args if a not in ("--runner=DirectRunner", "--data_dir", str(places["D"]))],
            places["D"])
    else:
      cli(module, *args)


@pytest.mark.slow
def test_voxceleb1_identification_recipe_splits_as_the_official_list(voxceleb, tmp_path):
  vox1, _ = voxceleb
  run_recipe("voxceleb1-identification", {"VOX1": vox1, "D": tmp_path / "tfds",
                                           "RUN": tmp_path / "run"},
             {"--image_size": "64", "--epochs": "6"})
  report = json.loads(next((tmp_path / "tfds").rglob("build_report.json")).read_text())
  official = {line.split()[1]: line.split()[0]
              for line in (vox1 / "iden_split.txt").read_text().splitlines()}
  names = {"1": "train", "2": "validation", "3": "test"}
  got = {r["file"]: r for r in report["files"]}
  assert set(got) == set(official)                               # every file accounted
  assert all(got[rel]["status"] == "encoded" for rel in official)
  assert {rel: got[rel]["split"] for rel in official} == {
      rel: names[n] for rel, n in official.items()}              # the splits are the list's
  assert report["dataset"]["splits_file"] == str(vox1 / "iden_split.txt")
  assert report["checks"]["sessions_in_several_splits"]["count"] == 0
  metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
  assert metrics["test_examples"] == report["summary"]["clips_per_split"]["test"] > 0
  assert metrics["test_accuracy"] > 1 / 7                         # 7 speakers


@pytest.mark.slow
def test_voxceleb1_o_recipe_trained_on_voxceleb2_aac(voxceleb, tmp_path):
  """VoxCeleb2 dev as distributed (AAC), trained on, then VoxCeleb1-O-style
  verification on speakers it never saw, with and without s-norm."""
  vox1, vox2 = voxceleb
  run_recipe("voxceleb1-o", {"VOX1": vox1, "VOX2": vox2, "D": tmp_path / "tfds",
                             "RUN": tmp_path / "run", "OUT": tmp_path / "out"},
             {"--image_size": "64", "--epochs": "6"})
  report = json.loads(next((tmp_path / "tfds").rglob("build_report.json")).read_text())
  m4a = list((vox2 / "dev" / "aac").rglob("*.m4a"))
  assert report["summary"]["files"] == len(m4a) == report["summary"]["encoded"] == 48
  assert report["dataset"]["layout"] == "voxceleb" and report["summary"]["speakers"] == 4
  v = json.loads((tmp_path / "out" / "verification.json").read_text())
  trials = (vox1 / "veri_test2.txt").read_text().splitlines()
  assert v["trials"] == v["scored_trials"] == len(trials) and not v["failed_files"]
  assert set(v["min_dcf"]) == {"0.01", "0.05"} and 0 <= v["eer"] <= 1
  assert v["snorm"]["cohort_speakers"] == 4
  assert len((tmp_path / "out" / "scores.txt").read_text().splitlines()) == len(trials)


@pytest.mark.slow
def test_librispeech_and_vctk_recipes_group_sessions(real_speech, tmp_path):
  """LibriSpeech (speaker/chapter/*.flac with its .trans.txt) and VCTK (two
  microphones per utterance): every file accounted, no chapter or utterance
  on two sides of a split."""
  takes = klettres_takes(real_speech, 3, 8)
  libri, vctk = tmp_path / "LibriSpeech" / "train-clean-100", tmp_path / "VCTK-Corpus-0.92"
  for k, recordings in enumerate(takes.values()):
    speaker = 100 + k
    for j, x in enumerate(recordings):
      chapter = 2000 + j // 4
      stem = f"{speaker}-{chapter}-{j % 4:04d}"
      sf.write(str(_made(libri / str(speaker) / str(chapter) / f"{stem}.flac")), x, 16000)
      with open(libri / str(speaker) / str(chapter) / f"{speaker}-{chapter}.trans.txt", "a") as f:
        f.write(f"{stem} A LETTER\n")
      for mic, y in (("mic1", x), ("mic2", 0.8 * x)):
        sf.write(str(_made(vctk / "wav48_silence_trimmed" / f"p{225 + k}"
                           / f"p{225 + k}_{j + 1:03d}_{mic}.flac")), y, 16000)
  run_recipe("librispeech", {"LIBRI": tmp_path / "LibriSpeech", "D": tmp_path / "tfds"},
             {"--image_size": "64"}, only=("pipeline.build",))
  run_recipe("vctk", {"VCTK": vctk, "D": tmp_path / "tfds"}, {"--image_size": "64"},
             only=("pipeline.build",))
  for config, layout in (("train-clean-100_64", "librispeech"), ("vctk", "vctk")):
    report = json.loads(next((tmp_path / "tfds" / "a2i_speakers" / config).rglob(
        "build_report.json")).read_text())
    assert report["dataset"]["layout"] == layout
    assert report["checks"]["sessions_in_several_splits"]["count"] == 0
    audio = [r for r in report["files"] if r["file"].endswith(".flac")]
    assert len(audio) == (24 if layout == "librispeech" else 48)
    assert all(r["status"] == "encoded" for r in audio)
    assert sum(r["file"].endswith(".trans.txt") for r in report["files"]) == (
        len(list(libri.rglob("*.trans.txt"))) if layout == "librispeech" else 0)
