"""What every study writes, through one function: `write(output, stem, ...)`
puts <stem>.json (the numbers), <stem>.md (the table) and <stem>.png (the
figure) side by side, so a published table always has its JSON beside it.

    results.write(args.output, "ablation", rows, accuracy_table(...),
                  accuracy_bars(rows, title), protocol=protocol)
"""

from __future__ import annotations

import json
import os

import numpy as np


def pyplot():
  """matplotlib's pyplot on the Agg backend (files only, no display): the
  one place a2i's trainer chooses a backend, when a figure is first drawn."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  return plt


def write(output: str, stem: str, result: dict, markdown: str, figure=None, dpi: int = 100,
          **extra: dict) -> None:
  """<stem>.json, <stem>.md, <stem>.png (the figure, then closed) and one
  <stem>_<name>.json per `extra` (e.g. protocol=...), in `output`."""
  os.makedirs(output, exist_ok=True)
  for name, content in {stem: result, **{f"{stem}_{k}": v for k, v in extra.items()}}.items():
    with open(os.path.join(output, f"{name}.json"), "w") as f:
      json.dump(content, f, indent=1)
  with open(os.path.join(output, f"{stem}.md"), "w") as f:
    f.write(markdown.rstrip("\n") + "\n")
  if figure is not None:
    figure.savefig(os.path.join(output, f"{stem}.png"), dpi=dpi, bbox_inches="tight")
    pyplot().close(figure)


def summary(accuracies) -> dict:
  """One row of an accuracy table: mean and standard deviation over seeds."""
  a = np.asarray(accuracies, np.float64)
  return {"accuracy_mean": float(a.mean()),
          "accuracy_std": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
          "accuracies": [float(v) for v in a], "n_seeds": int(len(a))}


def accuracy_table(title: str, rows: dict, protocol: dict) -> str:
  """Markdown: test accuracy per row (mean, std, each seed), the protocol
  in a sentence, and its notes."""
  lines = [f"### {title}", "",
           f"Test accuracy, mean +- std over {protocol.get('seeds', 1)} seeds "
           f"({protocol.get('test_examples', '?')} test clips, "
           f"{protocol.get('speakers', '?')} speakers, model {protocol.get('model', '-')}, "
           + (f"<= {protocol['epochs']} epochs" if isinstance(protocol.get("epochs"), int)
              else "epochs sized from the dataset") + ").", "",
           "| row | accuracy | std | per seed |", "|---|---|---|---|"]
  for row, r in rows.items():
    lines.append(f"| {row} | {r['accuracy_mean']:.3f} | {r['accuracy_std']:.3f} | "
                 + ", ".join(f"{a:.3f}" for a in r["accuracies"]) + " |")
  for key, note in protocol.get("notes", {}).items():
    lines.append(f"\n{key}: {note}.")
  return "\n".join(lines)


def accuracy_bars(rows: dict, title: str):
  """A bar per row: mean test accuracy, with its standard deviation."""
  plt = pyplot()
  fig, ax = plt.subplots(figsize=(1.2 * len(rows) + 2, 3.5))
  names = list(rows)
  ax.bar(names, [rows[n]["accuracy_mean"] for n in names],
         yerr=[rows[n]["accuracy_std"] for n in names], capsize=4, color="#4a7ab5")
  ax.set_ylim(0, 1.05)
  ax.set_ylabel("test accuracy")
  ax.set_title(title, fontsize=9)
  plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
  fig.tight_layout()
  return fig
