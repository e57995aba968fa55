"""Which test clips of a demo corpus the trained model misses, and the conditions they were recorded in.

    python benchmarks/hard_clips.py --data_dir DIR --dataset a2i_speakers/voices20_128 \
        --seeds 0 1 2 [--out docs/training_voices20_hard_clips.json]

Each seed is `python -m trainer.fit --dataset D --seed S` with every other
setting at its default. Every test clip is then scored by every run, and
each clip of the degraded demo corpus (voices20) is matched with the
conditions its recording was made in, as the corpus's synthesis recorded
them (`pipeline.demo.recording_conditions`: speed, reverberation time, SNR).
Writes --out (JSON) and prints a Markdown table: the clips most runs miss,
and the mean conditions of those clips against the clips no run misses.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # as a script
from benchmarks.measure import machine, write_json  # noqa: E402


def test_predictions(run_folder: str, data_dir: str, dataset: str):
  """(recordings, true labels, predicted labels) of a trained run on the test split."""
  import tensorflow_datasets as tfds

  from trainer.data import open_dataset, select_channels
  from trainer.predict import load_run

  model, settings = load_run(os.path.join(run_folder, "model.keras"))
  ds = open_dataset(dataset, data_dir).as_dataset(split="test", shuffle_files=False)
  recordings, labels, predicted = [], [], []
  for batch in tfds.as_numpy(ds.batch(64)):
    images = select_channels(batch["image"], settings["channels"]).numpy()
    predicted.append(model.predict_on_batch(images).argmax(axis=1))
    labels.append(batch["speaker"])
    recordings += [r.decode() for r in batch["recording"]]
  return recordings, np.concatenate(labels), np.concatenate(predicted)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--data_dir", default=os.path.expanduser("~/tensorflow_datasets"))
  p.add_argument("--dataset", default="a2i_speakers/voices20_128")
  p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
  p.add_argument("--out", default="docs/training_voices20_hard_clips.json")
  args = p.parse_args(argv)
  from pipeline import demo
  from trainer.data import open_dataset
  from trainer.clip_audio import corpus_root

  folder = corpus_root(open_dataset(args.dataset, args.data_dir), args.data_dir)
  if folder is None or not os.path.exists(folder + demo.CONDITIONS):
    raise SystemExit(f"{args.dataset} was not built from a degraded demo corpus this a2i makes")
  command = "python benchmarks/hard_clips.py " + " ".join(sys.argv[1:] if argv is None else argv)
  missed, accuracies, truth = None, [], None
  for seed in args.seeds:
    output = tempfile.mkdtemp(prefix="hard_clips_")
    try:
      fit = subprocess.run([sys.executable, "-m", "trainer.fit", "--dataset", args.dataset,
                            "--data_dir", args.data_dir, "--output", output, "--seed", str(seed)],
                           capture_output=True, text=True,
                           env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
      if fit.returncode:
        raise SystemExit(f"trainer.fit, seed {seed}, failed:\n{fit.stderr[-2000:]}")
      recordings, labels, predicted = test_predictions(output, args.data_dir, args.dataset)
    finally:
      shutil.rmtree(output, ignore_errors=True)
    if missed is None:
      missed, truth = np.zeros(len(labels), int), (recordings, labels)
    if recordings != truth[0] or not np.array_equal(labels, truth[1]):
      raise SystemExit("the test split came back in another order")
    missed += predicted != labels
    accuracies.append(float(np.mean(predicted == labels)))
  conditions = [demo.recording_conditions(folder, r) for r in truth[0]]
  runs = len(args.seeds)
  hard = missed * 2 >= runs
  never = missed == 0

  def mean_conditions(mask):
    rows = [c for c, m in zip(conditions, mask) if m]
    return {"clips": len(rows),
            "speed_distance_from_1": round(float(np.mean([abs(c["speed"] - 1) for c in rows])), 4),
            "reverberant_share": round(float(np.mean([c["rt60_seconds"] > 0 for c in rows])), 3),
            "rt60_seconds": round(float(np.mean([c["rt60_seconds"] for c in rows])), 3),
            "snr_db": round(float(np.mean([c["snr_db"] for c in rows])), 2)}

  result = {
      "machine": machine(),
      "command": command, "dataset": args.dataset, "seeds": args.seeds,
      "test_accuracy_per_seed": [round(a, 4) for a in accuracies],
      "test_clips": len(missed),
      "clips_missed_by_any_run": int((missed > 0).sum()),
      "clips_missed_by_at_least_half_the_runs": int(hard.sum()),
      "accuracy_if_only_those_were_missed": round(1 - float(hard.mean()), 4),
      "conditions": {"missed_by_at_least_half": mean_conditions(hard),
                     "missed_by_none": mean_conditions(never),
                     "all": mean_conditions(np.ones(len(missed), bool))},
      "hard_clips": [{"recording": r, "runs_missing_it": int(m), **c}
                     for r, m, c, h in zip(truth[0], missed, conditions, hard) if h],
  }
  write_json(args.out, result)
  c = result["conditions"]
  print("| test clips | count | mean distance of speed from 1 | reverberant | mean RT60 | mean SNR |")
  print("|---|---|---|---|---|---|")
  for name, key in (("missed by at least half the runs", "missed_by_at_least_half"),
                    ("missed by no run", "missed_by_none"), ("all", "all")):
    row = c[key]
    print(f"| {name} | {row['clips']} | {row['speed_distance_from_1']:.3f} | "
          f"{100 * row['reverberant_share']:.0f} % | {row['rt60_seconds']:.2f} s | "
          f"{row['snr_db']:.1f} dB |")
  return 0


if __name__ == "__main__":
  sys.exit(main())
