"""``tinyspeech bench-scale``: what training costs as the dataset grows to full Speech Commands.

Why: the paper trains on the full set (~105,000 clips). Memory that grows with the dataset
kills a run on a laptop long before time does, so this measures it: a full-size archive in the
official layout (word folders, ``validation_list.txt``, ``testing_list.txt``,
``_background_noise_``) is built once from the real and synthetic clips at hand, each clip a
seeded variation (gain, time shift) of one of them, and one epoch of TinySpeech-M is trained
on its first 10K, 40K and all clips, each in a fresh process. Reported per size: the process's
peak resident memory, training clips/s, seconds to the first trained batch, the archive's disk
use and any cache the pipeline wrote.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tinyspeech_tf.audio import write_wav
from tinyspeech_tf.data.protocol import CLIP_SAMPLES, SAMPLE_RATE, SILENCE, UNKNOWN
from tinyspeech_tf.errors import UserError

SIZES: tuple[int, ...] = (10_000, 40_000, 105_000)
ARCHIVE_VERSION = 2
MARKER = "scale_archive.json"
UNKNOWN_FOLDER = "other"  # every non-keyword source clip; the loader maps it to _unknown_
GAIN_DB = (-6.0, 6.0)
SHIFT_MS = 100.0
# Acceptance limits the report checks.
MAX_PEAK_BYTES = 3 * 1024 ** 3
MAX_RSS_GROWTH = 1.3
MIN_THROUGHPUT_RATIO = 0.9


def _sources(splits) -> list[tuple[int, object, str]]:
    """(index, split, folder) of every speech clip of ``splits`` (silence is cut from the
    noise by the loader, as for the real archive)."""
    out = []
    for split in splits:
        for i, label in enumerate(split.labels):
            name = split.label_names[int(label)]
            if name == SILENCE:
                continue
            out.append((i, split, name if name != UNKNOWN else UNKNOWN_FOLDER))
    return out


def build_archive(root: Path, clips: int, splits, noise_dir: Path | None, seed: int = 0,
                  log: Callable[[str], None] = print) -> dict:
    """The archive of ``clips`` variations of the speech clips of ``splits`` in ``root``
    (reused when its marker matches). Clip ``i`` varies source ``order[i mod n]`` (a seeded
    permutation) by a gain and a shift drawn from (seed, i); of every ten clips the ninth goes
    to validation and the tenth to test."""
    sources = _sources(splits)
    if not sources:
        raise UserError("bench-scale: no speech clips to build the archive from")
    params = {"version": ARCHIVE_VERSION, "clips": clips, "seed": seed,
              "sources": len(sources), "gain_db": list(GAIN_DB), "shift_ms": SHIFT_MS,
              "source_digest": hashlib.sha256("\n".join(
                  split.paths[i] for i, split, _ in sources).encode()).hexdigest()}
    marker = root / MARKER
    if marker.is_file() and json.loads(marker.read_text()).get("params") == params:
        return json.loads(marker.read_text())
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    log(f"bench-scale: writing a {clips}-clip archive to {root} (once)")
    started = time.time()
    shift_max = int(SHIFT_MS * SAMPLE_RATE / 1000)
    # Sources in a seeded order, so every prefix (a smaller size) holds every word.
    order = np.random.default_rng([seed, 1]).permutation(len(sources))
    lists: dict[str, list[str]] = {"validation": [], "test": []}
    names = []
    for i in range(clips):
        index, split, folder = sources[order[i % len(sources)]]
        rng = np.random.default_rng([seed, i])
        gain = 10.0 ** (rng.uniform(*GAIN_DB) / 20.0)
        shift = int(rng.integers(-shift_max, shift_max + 1))
        source = split.waveforms[index] * gain
        clip = np.zeros(CLIP_SAMPLES, dtype=np.float32)  # shifted, the gap zero-filled
        if shift >= 0:
            clip[shift:] = source[:CLIP_SAMPLES - shift]
        else:
            clip[:shift] = source[-shift:]
        rel = f"{folder}/clip{i:06d}_nohash_0.wav"
        (root / folder).mkdir(exist_ok=True)
        write_wav(root / rel, np.clip(clip, -1.0, 1.0))
        names.append(rel)
        if i % 10 == 8:
            lists["validation"].append(rel)
        elif i % 10 == 9:
            lists["test"].append(rel)
        if (i + 1) % 20000 == 0:
            log(f"  {i + 1}/{clips} clips, {time.time() - started:.0f} s")
    (root / "validation_list.txt").write_text("".join(f"{n}\n" for n in lists["validation"]))
    (root / "testing_list.txt").write_text("".join(f"{n}\n" for n in lists["test"]))
    if noise_dir is not None:
        shutil.copytree(noise_dir, root / "_background_noise_")
    info = {"params": params, "names": names, "seconds": round(time.time() - started, 1)}
    marker.write_text(json.dumps(info))
    return info


def subset_archive(full: Path, info: dict, root: Path, clips: int) -> None:
    """``root``: the first ``clips`` clips of ``full`` as hard links (no second copy)."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    names = info["names"][:clips]
    for rel in names:
        (root / rel).parent.mkdir(exist_ok=True)
        os.link(full / rel, root / rel)
    keep = set(names)
    for name in ("validation_list.txt", "testing_list.txt"):
        rows = [r for r in (full / name).read_text().split() if r in keep]
        (root / name).write_text("".join(f"{r}\n" for r in rows))
    if (full / "_background_noise_").is_dir():
        shutil.copytree(full / "_background_noise_", root / "_background_noise_")


def disk_bytes(root: Path) -> int:
    """Bytes the files under ``root`` occupy (hard links to one file counted once)."""
    seen, total = set(), 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            st = os.stat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def train_once(data: Path, out: Path, cache: Path, seed: int) -> dict:
    """One epoch (no QAT) of TinySpeech-M on ``data`` in a fresh process, as a user runs it;
    its peak resident memory comes from the kernel's accounting of that process."""
    env = {**os.environ, "TINYSPEECH_CACHE": str(cache)}
    argv = [sys.executable, "-m", "tinyspeech_tf.cli", "train", "--data", str(data), "--out",
            str(out), "--epochs", "1", "--qat-epochs", "0", "--recipe", "paper", "--seed",
            str(seed)]
    started = time.time()
    with open(out.parent / f"{out.name}.log", "w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = (out.parent / f"{out.name}.log").read_text().strip().splitlines()[-3:]
        raise UserError(f"bench-scale: training on {data} failed: {' | '.join(tail)}")
    metrics = json.loads((out / "metrics.json").read_text())
    timing = metrics["timing"]
    return {"peak_rss_bytes": int(usage.ru_maxrss) * 1024,
            "wall_seconds": round(time.time() - started, 1),
            "train_examples": metrics["train_examples"],
            "val_examples": metrics["val_examples"],
            "first_batch_seconds": timing["first_batch_seconds"],
            "epoch_train_seconds": timing["epoch_train_seconds"][0],
            "clips_per_second": round(timing["clips_per_epoch"]
                                      / timing["epoch_train_seconds"][0], 1),
            "int8_val_accuracy": metrics["int8_tflm"]["accuracy"]}


def run_bench(splits, noise_dir: Path | None, work: Path, sizes: tuple[int, ...] = SIZES,
              seed: int = 0, command: str = "", log: Callable[[str], None] = print) -> dict:
    """Build (or reuse) the archive in ``work`` and measure one epoch at each size."""
    sizes = tuple(sorted(sizes))
    full = work / f"archive_{sizes[-1]}"
    info = build_archive(full, sizes[-1], splits, noise_dir, seed, log)
    rows = []
    for size in sizes:
        root = full if size == sizes[-1] else work / f"archive_{size}"
        if root != full:
            subset_archive(full, info, root, size)
        with tempfile.TemporaryDirectory(prefix="tinyspeech-scale-") as tmp:
            log(f"bench-scale: one epoch on {size} clips")
            cache = Path(tmp) / "cache"
            row = train_once(root, Path(tmp) / "run", cache, seed)
            row["pipeline_cache_bytes"] = disk_bytes(cache) if cache.exists() else 0
        row.update(clips=size, archive_bytes=disk_bytes(root) if root == full else None)
        rows.append(row)
        log(f"  peak RSS {row['peak_rss_bytes'] / 2**20:.0f} MiB, "
            f"{row['clips_per_second']:.0f} clips/s, first batch after "
            f"{row['first_batch_seconds']:.1f} s")
    small, large = rows[0], rows[-1]
    checks = {
        "peak_at_largest_bytes": large["peak_rss_bytes"],
        "peak_at_largest_ok": large["peak_rss_bytes"] <= MAX_PEAK_BYTES,
        "rss_growth": round(large["peak_rss_bytes"] / small["peak_rss_bytes"], 3),
        "rss_growth_ok": large["peak_rss_bytes"] <= MAX_RSS_GROWTH * small["peak_rss_bytes"],
        "throughput_ratio": round(large["clips_per_second"] / small["clips_per_second"], 3),
        "throughput_ok": (large["clips_per_second"]
                          >= MIN_THROUGHPUT_RATIO * small["clips_per_second"]),
    }
    return {"command": command, "model": "tinyspeech_m", "seed": seed, "cpus": os.cpu_count(),
            "archive": {"clips": sizes[-1], "sources": info["params"]["sources"],
                        "build_seconds": info.get("seconds")},
            "rows": rows, "checks": checks,
            "limits": {"max_peak_bytes": MAX_PEAK_BYTES, "max_rss_growth": MAX_RSS_GROWTH,
                       "min_throughput_ratio": MIN_THROUGHPUT_RATIO}}


def to_markdown(report: dict) -> str:
    """The report as the markdown ``bench/scale.md`` holds."""
    lim, chk = report["limits"], report["checks"]
    lines = [
        "# Training cost against dataset size",
        "",
        f"Generated by `{report['command']}`. One epoch (no QAT) of {report['model']} per row, "
        f"each in a fresh process on {report['cpus']} CPUs, on the first N clips of a "
        f"{report['archive']['clips']}-clip archive in the official Speech Commands layout "
        f"(seeded gain and shift variations of {report['archive']['sources']} real and "
        "synthetic speech clips). Training examples include the silence the loader cuts from "
        "the noise and exclude the unknown clips it drops.",
        "",
        "| clips | train examples | peak RSS | clips/s | first batch | archive on disk | "
        "pipeline cache |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["rows"]:
        disk = ("(hard links)" if r["archive_bytes"] is None
                else f"{r['archive_bytes'] / 2**30:.2f} GiB")
        lines.append(f"| {r['clips']:,} | {r['train_examples']:,} | "
                     f"{r['peak_rss_bytes'] / 2**30:.2f} GiB | {r['clips_per_second']:,.0f} | "
                     f"{r['first_batch_seconds']:.1f} s | {disk} | "
                     f"{r['pipeline_cache_bytes']:,} B |")
    ok = {True: "yes", False: "**no**"}
    lines += [
        "",
        f"- Peak RSS at the largest size ≤ {lim['max_peak_bytes'] / 2**30:.0f} GiB: "
        f"{ok[chk['peak_at_largest_ok']]}.",
        f"- Peak RSS growth from the smallest to the largest: {chk['rss_growth']:.2f}× "
        f"(limit {lim['max_rss_growth']}×): {ok[chk['rss_growth_ok']]}.",
        f"- Throughput at the largest against the smallest: {chk['throughput_ratio']:.2f}× "
        f"(at least {lim['min_throughput_ratio']}×): {ok[chk['throughput_ok']]}.",
        "",
    ]
    return "\n".join(lines)
