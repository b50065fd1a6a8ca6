"""Does this machine train the published runs to their bits, and under which settings?

    .venv/bin/python benchmarks/check_cross_machine.py                          # LLaMA s1, the pins alone
    .venv/bin/python benchmarks/check_cross_machine.py --archs llama,tnl \\
        --settings "MKL_CBWR=AVX2,STRICT" "MKL_CBWR=COMPATIBLE" "ATEN_CPU_CAPABILITY=default"

Each setting trains full-length runs of one size of the cpu preset (every step and checkpoint of the
published run, so that each checkpoint can be compared) in a sweep's training worker whose environment
holds the sweeps' pins plus the setting (``check_cpu_reproducibility.start_setting``), then compares each
checkpoint's training loss with the published ``runs.parquet`` bit for bit. A machine of the family that
trained the published results gives every checkpoint; another gives a count of equal ones (early
checkpoints, where two runs still differ in the last bits only, can come out alike) and how far the final
loss moved. ``check_cpu_reproducibility.py`` asks the other question: which settings change the bits on
one machine. ``benchmarks/results/2026-12-02-cross-vendor-intel-xeon-2c.md`` is what this found on an Intel
Xeon against the AMD-trained results.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import check_cpu_reproducibility as repro  # noqa: E402  (the workers, the pins and the machine's description)


def parse_setting(text: str) -> tuple[str, dict]:
    """``"MKL_CBWR=AVX2,STRICT"`` (or ``"pins"``: the sweeps' pins alone) -> (name, environment)."""
    if text == "pins":
        return "the pins alone", {}
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SystemExit(f"--settings: expected VARIABLE=VALUE or 'pins', got {text!r}")
    return text, {key: value}


def cross_machine_preset(size: str, archs: list[str]) -> dict:
    """The cpu preset cut to ``archs`` at one ``size``, as the published study trained them; its file is
    to be named cross-machine.yaml (a preset is known by its file's name)."""
    from linscale.presets import load_preset

    preset = load_preset("cpu")
    preset.update(name="cross-machine", archs=archs, sizes={size: preset["sizes"][size]})
    preset.pop("context_size", None)  # the context ablation's size, which a grid of one size may not have
    return preset


def main(argv: list[str] | None = None) -> int:
    import pandas as pd
    import yaml

    from linscale.presets import load_preset

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, default=ROOT / "results" / "cpu", help="published results folder")
    p.add_argument("--size", default="s1", help="which size of the cpu preset (default: s1, the cheapest)")
    p.add_argument("--archs", default="llama", help="comma-separated architectures (default: llama)")
    p.add_argument("--settings", nargs="*", default=["pins"],
                   help="settings on top of the sweeps' pins: VARIABLE=VALUE each, or 'pins' (default)")
    args = p.parse_args(argv)
    published = pd.read_parquet(args.results / "runs.parquet")
    sizes = load_preset("cpu")["sizes"]
    if args.size not in sizes:
        raise SystemExit(f"--size: {args.size!r} is not a size of the cpu preset ({', '.join(sizes)})")
    preset = cross_machine_preset(args.size, args.archs.split(","))
    machine = repro.machine()
    print(f"# {machine.get('cpu', '?')}, torch {machine['torch']}, {machine['date']}")
    print("| setting (on top of the pins) | run | checkpoints with the published training loss | final loss vs published | train s |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        preset_file = Path(tmp) / "cross-machine.yaml"  # a preset file is named as its name: says
        preset_file.write_text(yaml.safe_dump(preset))
        for i, text in enumerate(args.settings):
            name, env = parse_setting(text)
            out = Path(tmp) / f"setting{i}"
            out.mkdir()
            start = time.perf_counter()
            result = repro.finish_setting(repro.start_setting({**repro.PINNED, **env}, 1, preset_file, out), out)
            if result["error"]:
                print(f"| {name} | – | {result['error']} | – | – |")
                continue
            both = published.merge(result["table"], on=["run_id", "step"], suffixes=("_p", "_x"))
            for run_id, part in both.groupby("run_id"):
                part = part.sort_values("step")
                same = int((part["train_loss_p"] == part["train_loss_x"]).sum())
                final = part["train_loss_x"].iloc[-1] / part["train_loss_p"].iloc[-1] - 1
                print(f"| {name} | {run_id} | {same} of {len(part)} | {final:+.1e} | {time.perf_counter() - start:.0f} |",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
