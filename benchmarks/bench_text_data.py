"""Real text larger than memory: peak RSS and tokens/s while preparing and training on generated corpora.

    .venv/bin/python benchmarks/bench_text_data.py                       # 20 MB and 200 MB, into benchmarks/results/
    .venv/bin/python benchmarks/bench_text_data.py --sizes 2,20 --out ''  # quicker, print only
    .venv/bin/python benchmarks/bench_text_data.py --before db3351f      # also the code of a commit, side by side

Each corpus is generated locally (nothing is downloaded): a folder with ``train.jsonl`` (documents of
about 2 KB of Zipf-distributed pseudo-words, in sentences) and a small ``valid.jsonl``. For each size,
three fresh processes measure one phase each, so each peak RSS (``ru_maxrss``) is that phase's alone:

* prepare: the text data module built from an empty cache (BPE tokenizer trained on the first 20,000
  documents, the training text tokenized into shards): tokens/s of the tokenization;
* read: the data module built from the cache, then 2,000 training batches read (16 rows of 129 tokens,
  spread over the whole corpus by the epoch's permutation): tokens/s of the data path alone;
* train: ``linscale train --preset text`` (TNL s1, 100 steps) from the cache: tokens/s of training.

The goal (issue 18): peak RSS while training on the 200 MB corpus within 1.5x of that on the 20 MB one.
With ``--before COMMIT`` the prepare and read phases also run on that commit's code (extracted with
``git archive`` into a temporary folder), whose data module held the tokenized corpus in memory.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEQ_LEN, BATCH, READ_BATCHES, TRAIN_STEPS = 128, 16, 2000, 100


# ---------------------------------------------------------------------------- corpus


def generate_corpus(folder: Path, megabytes: float, seed: int = 0) -> Path:
    """``folder/train.jsonl`` of about ``megabytes`` MB and ``folder/valid.jsonl`` (1% of it, at least 200 KB)."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    letters = np.array(list("etaoinshrdlcumwfgypbvkjxqz"))
    weights = 1 / np.arange(1, 27) ** 0.9
    vocabulary = np.array(["".join(rng.choice(letters, size=int(rng.integers(1, 10)), p=weights / weights.sum()))
                           for _ in range(30000)])
    zipf = 1 / np.arange(1, len(vocabulary) + 1) ** 1.07
    zipf /= zipf.sum()

    def write(path: Path, target_bytes: int) -> None:
        written = 0
        with open(path, "w", encoding="utf-8") as f:
            while written < target_bytes:
                words = vocabulary[rng.choice(len(vocabulary), size=330, p=zipf)]
                ends = rng.random(330) < 0.08
                text = " ".join(w + "." if end else w for w, end in zip(words, ends)).capitalize()
                line = json.dumps({"text": text}) + "\n"
                f.write(line)
                written += len(line.encode())

    write(folder / "train.jsonl", int(megabytes * 1e6))
    write(folder / "valid.jsonl", max(200_000, int(megabytes * 1e4)))
    return folder


# ---------------------------------------------------------------------------- phases (each in its own process)


def _data(corpus: Path, before: bool) -> dict:
    if before:  # the old code knew no val_path: the training file, every 100th document held out
        return {"source": "text", "path": str(corpus / "train.jsonl"), "vocab_size": 2048}
    return {"source": "text", "path": str(corpus), "vocab_size": 2048}


def phase_prepare(corpus: Path, before: bool) -> dict:
    from linscale.data import build_datamodule

    started = time.monotonic()
    dm = build_datamodule(_data(corpus, before), SEQ_LEN, BATCH)
    seconds = time.monotonic() - started
    tokens = len(dm.train_rows) * (SEQ_LEN + 1)
    return {"seconds": seconds, "train_tokens": tokens, "tokens_per_s": tokens / seconds}


def phase_read(corpus: Path, before: bool) -> dict:
    from linscale.data import build_datamodule

    dm = build_datamodule(_data(corpus, before), SEQ_LEN, BATCH)
    started = time.monotonic()
    for j in range(READ_BATCHES):
        dm.train_batch(j)  # the epoch's permutation spreads each batch's rows over the whole corpus
    seconds = time.monotonic() - started
    tokens = READ_BATCHES * BATCH * SEQ_LEN
    return {"seconds": seconds, "tokens_per_s": tokens / seconds}


def phase_train(corpus: Path, before: bool, out: Path) -> dict:
    from linscale.cli import main

    code = main(["train", "--preset", "text", "--arch", "tnl", "--size", "s1", "--out", str(out), "--no-progress",
                 "--threads", "1", "--set", f"data.path={corpus}", "--set", f"train.tokens={TRAIN_STEPS * BATCH * SEQ_LEN}",
                 "--set", "train.checkpoints=4", "--set", "train.exports=1"])
    assert code == 0, code
    seconds = json.loads((out / "runs" / "tnl-s1" / "status.json").read_text())["wall_time_s"]  # the training itself
    return {"seconds": seconds, "tokens_per_s": TRAIN_STEPS * BATCH * SEQ_LEN / seconds}


def run_phase(args) -> None:
    corpus = Path(args.corpus)
    if args.phase == "prepare":
        result = phase_prepare(corpus, args.before)
    elif args.phase == "read":
        result = phase_read(corpus, args.before)
    else:
        result = phase_train(corpus, args.before, Path(args.train_out))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    print("RESULT " + json.dumps(result), flush=True)


def measure(phase: str, corpus: Path, cache: Path, code: Path | None = None, train_out: Path | None = None) -> dict:
    """One phase in a fresh process (``code``: a source tree to import linscale from instead of this one)."""
    env = {**os.environ, "LINSCALE_CACHE": str(cache), "OMP_NUM_THREADS": "1", "HF_DATASETS_OFFLINE": "1",
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(cache / "hf")}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--phase", phase, "--corpus", str(corpus)]
    if code is not None:
        cmd.append("--before-code")
    if train_out is not None:
        cmd += ["--train-out", str(train_out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=code or ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{phase} on {corpus} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


# ---------------------------------------------------------------------------- report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="20,200", help="corpus sizes in MB (default: 20,200)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="results folder; '' to only print")
    parser.add_argument("--work", default=None, help="folder for the corpora and caches (default: a temporary one)")
    parser.add_argument("--before", default=None, metavar="COMMIT", help="also measure this commit's data code")
    parser.add_argument("--conditions", default="", help="free text stored in the report (e.g. 'idle machine')")
    parser.add_argument("--phase", choices=("prepare", "read", "train"), help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--train-out", help=argparse.SUPPRESS)
    parser.add_argument("--before-code", dest="before_code", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        args.before = args.before_code
        run_phase(args)
        return 0
    work = Path(args.work or tempfile.mkdtemp(prefix="linscale-bench-text-"))
    old_code = None
    if args.before:
        old_code = work / f"code-{args.before}"
        old_code.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", args.before, "linscale"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(old_code)], input=archive.stdout, check=True)
    rows = []
    for size in [float(s) for s in args.sizes.split(",")]:
        corpus = work / f"corpus-{size:g}MB"
        if not (corpus / "train.jsonl").exists():
            started = time.monotonic()
            generate_corpus(corpus, size)
            print(f"generated {corpus} in {time.monotonic() - started:.0f} s", flush=True)
        mb = (corpus / "train.jsonl").stat().st_size / 1e6
        cache = work / f"cache-{size:g}MB"
        prepare = measure("prepare", corpus, cache)
        read = measure("read", corpus, cache)
        train = measure("train", corpus, cache, train_out=work / f"runs-{size:g}MB")
        row = {"corpus_mb": mb, "train_tokens": prepare["train_tokens"],
               "prepare_s": prepare["seconds"], "prepare_tokens_per_s": prepare["tokens_per_s"],
               "prepare_peak_rss_mb": prepare["peak_rss_mb"], "read_tokens_per_s": read["tokens_per_s"],
               "read_peak_rss_mb": read["peak_rss_mb"], "train_tokens_per_s": train["tokens_per_s"],
               "train_peak_rss_mb": train["peak_rss_mb"]}
        if old_code is not None:
            old_cache = work / f"cache-{size:g}MB-before"
            old_prepare = measure("prepare", corpus, old_cache, code=old_code)
            old_read = measure("read", corpus, old_cache, code=old_code)
            row.update(before_prepare_peak_rss_mb=old_prepare["peak_rss_mb"],
                       before_prepare_tokens_per_s=old_prepare["tokens_per_s"],
                       before_read_peak_rss_mb=old_read["peak_rss_mb"], before_read_tokens_per_s=old_read["tokens_per_s"])
        rows.append(row)
        print(json.dumps(row), flush=True)
    report = format_report(rows, args)
    print(report)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        file = out / f"{datetime.now(timezone.utc):%Y-%m-%d}-text-data-{_machine()}.md"
        file.write_text(report)
        print(f"wrote {file}")
    return 0


def _machine() -> str:
    cpu = "cpu"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{'-'.join(cpu.lower().split()[:2])}-{os.cpu_count()}c"


def format_report(rows: list[dict], args) -> str:
    import pandas as pd

    frame = pd.DataFrame(rows)
    first, last = rows[0], rows[-1]
    ratio = last["train_peak_rss_mb"] / first["train_peak_rss_mb"]
    lines = ["# Real text larger than memory: peak RSS and throughput", "",
             "Produced by `benchmarks/bench_text_data.py`: generated corpora, each phase in a fresh process "
             "(peak RSS = that process's ru_maxrss).", "",
             f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
             f"- cpu: {_machine()}, python {platform.python_version()}",
             f"- load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
             f"- conditions: {args.conditions or 'not stated'}",
             f"- phases: prepare = BPE (2,048 tokens) trained on 20,000 documents + the training text tokenized "
             f"into shards from an empty cache; read = {READ_BATCHES:,} batches of {BATCH}x{SEQ_LEN + 1} from "
             f"the shards; train = `linscale train --preset text` TNL s1, {TRAIN_STEPS} steps, from the cache", "",
             "## Goal", "",
             f"Peak RSS while training on the {last['corpus_mb']:.0f} MB corpus / on the {first['corpus_mb']:.0f} MB "
             f"corpus: **{ratio:.2f}x** (goal: <= 1.5x; {'met' if ratio <= 1.5 else 'NOT met'}).", "",
             "## Measurements", "", frame.to_markdown(index=False, floatfmt=".4g"), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
