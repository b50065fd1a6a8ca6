"""Why LLaMA finds the needle worse than the linear models with a built-in local mixer, at CPU scale.

    python benchmarks/probe_retrieval.py                       # about 8 minutes on 2 cores
    python benchmarks/probe_retrieval.py --out runs/probe-retrieval --results benchmarks/results/X.md

In the committed cpu study LLaMA's needle-in-a-haystack accuracy stays near 0.5 from s4 to s6 and falls
with the haystack's length even inside its training context, while cosFormer2 reaches 1.0 at s5-s6: the
reverse of the paper's retrieval finding. This script tests explanations, one change at a time, at s4 of
the cpu preset (each variant one `linscale train` run with `--set` overrides, then `linscale eval
--suites retrieval` on its final checkpoint):

* RoPE: LLaMA with base 1e30, which leaves only the fastest of its frequency pairs rotating, so the
  other channels compare content regardless of distance;
* weight decay: LLaMA with none, in case decayed q/k weights cannot make attention sharp;
* cosFormer2's Toeplitz positional encoding (TPE, a causal decayed mixing of the embeddings before the
  first layer, so that a token's representation already holds the tokens before it): cosFormer2 without it.

For every LLaMA variant it also reads the attention weights (``LlamaAttention.attention_probabilities``)
at the NIAH question (standard mode): how much each head puts on the needle's value, and how much on the
previous token at every position (a previous-token head is the first half of an induction circuit, which
a softmax model needs to bind a value to the variable before it).

The runs land in ``--out`` (resumable: a finished run or evaluation is not redone); the tables go to the
``--results`` Markdown file with the machine and date.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import torch

from linscale.bench import format_table, machine_info
from linscale.probes import write_probe_outputs
from linscale.models.checkpoint import load_checkpoint, load_tokenizer

SIZE = "s4"
VARIANTS = {  # name -> (architecture, --set overrides); each changes one thing of the cpu preset
    "llama": ("llama", []),
    "llama, RoPE base 1e30": ("llama", ["model.rope_base=1e30"]),
    "llama, no weight decay": ("llama", ["train.weight_decay=0"]),
    "cosformer2": ("cosformer2", []),
    "cosformer2, no TPE": ("cosformer2", ["model.tpe=false"]),
}
TASKS = {"linscale_niah_easy": "NIAH easy", "linscale_niah_standard": "NIAH standard", "linscale_mqar": "MQAR"}


def slug(name: str) -> str:
    return name.replace(", ", "-").replace(" ", "-").lower()


def linscale(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "linscale", *args], check=True, stdout=subprocess.DEVNULL)


def train_and_evaluate(out: Path, name: str) -> Path:
    """Train the variant (one thread) and evaluate its final checkpoint's retrieval tasks; its folder."""
    arch, overrides = VARIANTS[name]
    folder = out / slug(name)
    sets = [a for o in overrides for a in ("--set", o)]
    linscale("train", "--preset", "cpu", "--arch", arch, "--size", SIZE, "--out", str(folder), "--threads", "1",
             "--no-progress", *sets)
    linscale("eval", str(folder), "--suites", "retrieval", "--checkpoint", str(final_export(folder)))
    return folder


def final_export(folder: Path) -> Path:
    exports = list(folder.glob("runs/*/export/step=*"))
    if not exports:
        raise SystemExit(f"{folder}: no exported checkpoint (runs/*/export/step=*)")
    return max(exports, key=lambda p: int(p.name.split("=")[1]))


def scores(folder: Path) -> dict:
    runs = pd.read_parquet(folder / "results.parquet")
    evaluations = pd.read_parquet(folder / "eval" / "results.parquet")
    acc = evaluations[evaluations["metric"] == "acc"].set_index("task")["value"]
    return {"val_loss": float(runs["val_loss"].iloc[-1]), **{label: float(acc[task]) for task, label in TASKS.items()}}


def niah_by_length(folder: Path) -> pd.Series:
    cells = pd.read_parquet(folder / "eval" / "niah_cells.parquet")
    return cells[cells["mode"] == "standard"].groupby("length")["acc"].mean()


def attention_probe(folder: Path) -> pd.DataFrame:
    """Per layer, head and context length (NIAH standard items): the attention weight the question's last
    token ("what VAR") puts on the needle's value, and each head's mean weight on the previous token over
    all positions."""
    checkpoint = final_export(folder)
    model, _ = load_checkpoint(checkpoint)
    tokenizer = load_tokenizer(checkpoint)
    inputs: dict[int, torch.Tensor] = {}
    for i, block in enumerate(model.blocks):
        block.token_mixer.register_forward_pre_hook(lambda module, args, i=i: inputs.__setitem__(i, args[0]))
    items = [json.loads(line) for f in sorted((folder / "eval" / "tasks").glob("niah-*.jsonl")) for line in open(f)]
    rows = []
    for item in (i for i in items if i["mode"] == "standard"):
        words = f"{item['context']} {item['question']}".split()
        ids = tokenizer.encode(" ".join(words)).ids
        if len(ids) != len(words):
            raise SystemExit(f"{folder}: the tokenizer is not one token per word; the probe's positions need it")
        value_at = max(i for i, w in enumerate(words) if w == "let") + 2  # "let VAR VAL": the needle's value
        with torch.no_grad():
            model(torch.tensor([ids]))  # fills `inputs`: each layer's input, through the hooks above
            for layer, block in enumerate(model.blocks):
                p = block.token_mixer.attention_probabilities(inputs[layer])[0]  # (H, T, T)
                previous = p.diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1)  # (H,)
                for head in range(p.shape[0]):
                    rows.append({"length": item["length"], "layer": layer, "head": head,
                                 "on_value": float(p[head, -1, value_at]), "on_previous": float(previous[head])})
    return pd.DataFrame(rows)


def report(out: Path) -> str:
    folders = {name: out / slug(name) for name in VARIANTS}
    summary = pd.DataFrame({name: scores(folder) for name, folder in folders.items()}).T
    summary.index.name = "variant (s4)"
    lengths = pd.DataFrame({name: niah_by_length(folder) for name, folder in folders.items()}).T
    lengths.index.name = "NIAH standard, by context length"
    lengths.columns = [str(c) for c in lengths.columns]
    probes = []
    for name, folder in folders.items():
        if VARIANTS[name][0] != "llama":
            continue
        table = attention_probe(folder)
        on_value = table.pivot_table(index=["layer", "head"], columns="length", values="on_value")
        picked = on_value[[c for c in (16, 64, 128) if c in on_value.columns]]
        picked.columns = [f"on value, length {c}" for c in picked.columns]
        picked["on previous token"] = table.groupby(["layer", "head"])["on_previous"].mean()
        picked.insert(0, "variant", name)
        probes.append(picked.reset_index())
    info = machine_info()
    lines = ["# Retrieval probe: LLaMA against the linear models' local mixing (cpu preset, s4)", "",
             "Produced by `python benchmarks/probe_retrieval.py`; one training run per variant, one thread each,",
             "two at a time; evaluation with `linscale eval --suites retrieval` on the final checkpoint.", "",
             f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
             *(f"- {k}: {v}" for k, v in info.items() if k in ("host", "cpu", "cores", "python", "torch", "linscale")),
             "", "## Final validation loss and retrieval accuracy", "", format_table(summary.reset_index().round(4)),
             "", "## NIAH (standard) accuracy by context length", "", format_table(lengths.reset_index().round(2)),
             "", "## Where LLaMA's heads look at the NIAH question", "",
             "Attention weight of the question's last token on the needle's value (mean over items), and each",
             "head's mean weight on the previous token over all positions.", "",
             format_table(pd.concat(probes).round(3))]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/probe-retrieval", help="runs folder (resumable)")
    parser.add_argument("--results", default=None, help="Markdown file for the tables (default: print them)")
    parser.add_argument("--jobs", type=int, default=2, help="runs trained side by side (one thread each)")
    args = parser.parse_args()
    out = Path(args.out)
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda name: train_and_evaluate(out, name), VARIANTS))
    write_probe_outputs(report(out), args.results)


if __name__ == "__main__":
    main()
