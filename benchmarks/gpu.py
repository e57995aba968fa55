"""Training throughput of the speaker networks on an accelerator (or this CPU).

    KERAS_BACKEND=jax python benchmarks/gpu.py --out docs/performance_gpu.json
    python benchmarks/gpu.py --out docs/performance_gpu_cpu.json --sizes 128 512 --batches 32

For `cells` and `paper` at each image size, in float32 and mixed bfloat16,
at batch 32 and at the largest power-of-two batch that fits (--max_batch
at most, halved while the device runs out of memory): train-step throughput (images/s)
on device-resident uint8 batches, i.e. the network alone, with the step
compiled by the backend (XLA on JAX, a tf.function on TensorFlow). Beside
it, the input side: real encoded PNG images (--images, written by
--write_images from the demo corpus) decoded to uint8 arrays by a pool of
processes, one per core, images/s. Where decoding is slower than training,
the input pipeline is the limit; where faster, the network is.

Keras 3 only: runs on JAX, PyTorch or TensorFlow (KERAS_BACKEND), with the
networks of trainer.networks built from the encoding spec.
"""

import argparse
import json
import multiprocessing
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _device() -> tuple[str, str]:
  """(backend, the device it computes on) as Keras sees them."""
  import keras

  backend = keras.backend.backend()
  if backend == "jax":
    import jax

    d = jax.devices()[0]
    return backend, f"{d.platform}: {getattr(d, 'device_kind', d)}"
  if backend == "torch":
    import torch

    return backend, (f"cuda: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available()
                     else "cpu")
  import tensorflow as tf

  gpus = tf.config.list_physical_devices("GPU")
  return backend, f"gpu: {gpus[0].name}" if gpus else "cpu"


def _peak_memory() -> int | None:
  """Peak bytes in use on the accelerator so far (JAX or PyTorch), None on CPU."""
  import keras

  if keras.backend.backend() == "jax":
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use")
  if keras.backend.backend() == "torch":
    import torch

    return torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
  return None


def train_rate(name: str, size: int, batch: int, precision: str, steps: int) -> dict:
  """Images/s of training steps on one resident uint8 batch (after the first,
  compiling, step), and the peak device memory."""
  import keras

  from pipeline.spec import DEFAULT_SPEC
  from trainer.networks import build_model, compile_model

  keras.backend.clear_session()
  keras.mixed_precision.set_global_policy(precision)
  keras.utils.set_random_seed(0)
  model = compile_model(build_model(name, DEFAULT_SPEC, size, "rgb", 20), 1e-3,
                        jit_compile=keras.backend.backend() == "jax")
  rng = np.random.default_rng(0)
  x = keras.ops.convert_to_tensor(rng.integers(0, 256, (batch, size, size, 3), np.uint8))
  y = keras.ops.convert_to_tensor(rng.integers(0, 20, batch))
  t0 = time.perf_counter()
  float(model.train_on_batch(x, y)[0])                      # build and compile
  compile_s = time.perf_counter() - t0
  float(model.train_on_batch(x, y)[0])
  t0 = time.perf_counter()
  for _ in range(steps):
    loss = model.train_on_batch(x, y)[0]
  float(loss)                                               # waits for the device
  seconds = time.perf_counter() - t0
  return {"images_per_s": round(batch * steps / seconds, 1), "batch": batch,
          "step_ms": round(1000 * seconds / steps, 2), "compile_s": round(compile_s, 1),
          "peak_device_bytes": _peak_memory(), "parameters": int(model.count_params())}


def _out_of_memory(e: Exception) -> bool:
  text = f"{type(e).__name__}: {e}".lower()
  return any(k in text for k in ("resource_exhausted", "out of memory", "oom", "resourceexhausted"))


def largest_batch(name, size, precision, steps, start, cap):
  """The rate at the largest power-of-two batch from `cap` down to `start`
  that trains without running out of device memory (tried from the top:
  one compilation when the largest fits)."""
  batch, refused = cap, []
  while batch >= start:
    try:
      row = train_rate(name, size, batch, precision, steps)
      return dict(row, refused=refused) if refused else row
    except Exception as e:  # noqa: BLE001: the backend's own out-of-memory error types
      if not _out_of_memory(e):
        raise
      refused.append(batch)
      batch //= 2
  return {"error": f"out of memory at every batch from {cap} down to {start}"}


def _decode(png: bytes) -> int:
  import io

  from PIL import Image

  return int(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).shape[0])


def decode_rate(folder: str, size: int, processes: int) -> dict | None:
  """Images/s of PNG -> uint8 decoding of the stored images of one size,
  by `processes` processes (each image decoded 4 times)."""
  path = os.path.join(folder, f"images_{size}.npz")
  if not os.path.exists(path):
    return None
  pngs = [bytes(b) for b in np.load(path)["png"]] * 4
  with multiprocessing.get_context("spawn").Pool(processes) as pool:
    pool.map(_decode, pngs[:processes])                       # workers started
    t0 = time.perf_counter()
    pool.map(_decode, pngs, chunksize=8)
    seconds = time.perf_counter() - t0
  return {"images_per_s": round(len(pngs) / seconds, 1), "processes": processes,
          "images": len(pngs), "mean_png_bytes": int(np.mean([len(p) for p in pngs]))}


def input_rate(name: str, data_dir: str, batch: int) -> dict:
  """Images/s of the trainer's input without TensorFlow (trainer.sources)
  over the training split of an array_record build, as Keras reads it
  (batches fetched by the PyDataset's worker threads): streamed (PNG decoded
  every epoch) and cached (decoded once, `setup_s`; then uint8 in memory)."""
  from concurrent.futures import ThreadPoolExecutor

  from trainer import data
  from trainer.sources import Batches

  dataset = data.open_dataset(name, data_dir)
  rows = {}
  for mode in ("streamed", "cached"):
    t0 = time.perf_counter()
    batches = Batches.of(dataset.builder, "train", [0, 1, 2], batch, True, 0,
                         cache=mode == "cached")
    setup = time.perf_counter() - t0
    with ThreadPoolExecutor(batches.workers) as pool:
      t0 = time.perf_counter()
      images = sum(len(y) for _, y in pool.map(batches.__getitem__, range(len(batches))))
      seconds = time.perf_counter() - t0
    rows[mode] = {"images_per_s": round(images / seconds, 1), "images": images,
                  "batch": batch, "workers": batches.workers, "setup_s": round(setup, 2)}
  return {"dataset": name, "image_size": dataset.image_size, "file_format": dataset.file_format,
          **rows}


def write_images(folder: str, sizes, count: int) -> None:
  """images_<size>.npz: PNG bytes of `count` clips of the demo corpus,
  encoded as the build encodes them (pipeline.transforms.png_bytes)."""
  import tempfile

  from pipeline import demo
  from pipeline.clips import clips_of
  from pipeline.encode import encode_clip
  from pipeline.transforms import png_bytes

  root = demo.materialise(demo.DEMO, tempfile.mkdtemp(prefix="a2i_demo_"))
  files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
                 if f.endswith(".wav"))[::max(1, 1096 // count)][:count]
  clips = [clips_of(f)[0].samples for f in files]
  os.makedirs(folder, exist_ok=True)
  for size in sizes:
    pngs = [png_bytes(encode_clip(c, size, require_speech=False).image) for c in clips]
    np.savez(os.path.join(folder, f"images_{size}.npz"),
             png=np.array(pngs, dtype=object).astype(np.bytes_))
    print(f"images_{size}.npz: {len(pngs)} images, {sum(map(len, pngs)) >> 10} KiB", flush=True)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--models", nargs="+", default=["cells", "paper"])
  p.add_argument("--sizes", nargs="+", type=int, default=[128, 512])
  p.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"])
  p.add_argument("--batches", nargs="+", default=["32", "largest"])
  p.add_argument("--max_batch", type=int, default=1024)
  p.add_argument("--steps", type=int, default=20)
  p.add_argument("--images", default="benchmarks/gpu_images")
  p.add_argument("--write_images", type=int, metavar="N",
                 help="write N demo clips per size to --images as PNG, then stop")
  p.add_argument("--dataset", help="an array_record build (with --data_dir): the rate of the "
                                   "trainer's input without TensorFlow")
  p.add_argument("--data_dir")
  p.add_argument("--out", default="docs/performance_gpu.json")
  args = p.parse_args(argv)
  if args.write_images:
    write_images(args.images, args.sizes, args.write_images)
    return 0
  from benchmarks.measure import machine

  backend, device = _device()
  result = {"command": "python benchmarks/gpu.py " + " ".join(sys.argv[1:] if argv is None
                                                               else argv),
            "machine": machine(), "backend": backend, "device": device,
            "steps_timed": args.steps, "train": {}, "decode_png": {}}
  if args.dataset:
    result["input"] = input_rate(args.dataset, args.data_dir, 32)
    print(f"input {args.dataset}: {result['input']}", flush=True)
  for size in args.sizes:
    result["decode_png"][str(size)] = decode_rate(args.images, size, os.cpu_count() or 1)
    print(f"decode {size} px: {result['decode_png'][str(size)]}", flush=True)
  for name in args.models:
    for size in args.sizes:
      for precision in args.precisions:
        for batch in args.batches:
          key = f"{name} {size} px {precision} batch {batch}"
          t0 = time.perf_counter()
          try:
            row = (largest_batch(name, size, precision, args.steps, 64, args.max_batch)
                   if batch == "largest" else train_rate(name, size, int(batch), precision,
                                                          args.steps))
          except Exception as e:  # noqa: BLE001: recorded, the other rows go on
            row = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"}
          row["wall_s"] = round(time.perf_counter() - t0, 1)
          result["train"][key] = row
          print(f"{key}: {row}", flush=True)
          with open(args.out, "w") as f:       # after every row: a cut-off run keeps its rows
            json.dump(result, f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
