"""The README's real-text recipe on the fixture corpus: the `text` preset trains on a folder with train,
valid and test files, and a local lm-eval task, whose YAML is read from the README, gives the test text's
perplexity."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from linscale.cli import main

ROOT = Path(__file__).parents[1]
TINY_TEXT = Path(__file__).parent / "data" / "tiny_text"


def readme_task_yaml(test_file: Path) -> str:
    """The README's task YAML (step 3 of the real-text recipe), pointed at ``test_file``."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"cat > tasks/wikitext2_local\.yaml <<EOF\n(.*?)\nEOF\n", readme, re.S)
    assert match, "the README's real-text recipe has no task YAML"
    yaml_text = match.group(1)
    assert "$PWD/corpora/wikitext-2/test.txt" in yaml_text
    return yaml_text.replace("$PWD/corpora/wikitext-2/test.txt", str(test_file))


def test_the_readme_recipe_trains_on_train_files_and_evaluates_test_perplexity(tmp_path, monkeypatch, capsys):
    import lm_eval
    from lm_eval.tasks import TaskManager

    from linscale.eval import LinscaleLM

    monkeypatch.setenv("LINSCALE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "runs"
    assert main(["train", "--preset", "text", "--arch", "tnl", "--size", "s1", "--out", str(out), "--no-progress",
                 "--threads", "1", "--set", f"data.path={TINY_TEXT}", "--set", "data.vocab_size=300",
                 "--set", "train.seq_len=16", "--set", "model.max_seq_len=16", "--set", "train.tokens=8192",
                 "--set", "train.warmup_steps=8", "--set", "data.val_tokens=64"]) == 0  # 32 steps: a shorter warmup
    said = capsys.readouterr().out
    assert "training text:" in said and "(train.txt)" in said and "validation text:" in said and "(valid.txt)" in said
    assert "epochs of the training text" in said
    export = out / "runs" / "tnl-s1" / "export" / "step=32"  # the final model (8,192 tokens / 256 a step)
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "wikitext2_local.yaml").write_text(readme_task_yaml(TINY_TEXT / "test.txt"))
    lm = LinscaleLM(checkpoint=str(export))
    result = lm_eval.simple_evaluate(model=lm, tasks=["wikitext2_local"], log_samples=True,
                                     task_manager=TaskManager(include_path=str(tasks), include_defaults=False))
    (sample,) = result["samples"]["wikitext2_local"]  # sample_by: document: the whole test file, one document
    text = (TINY_TEXT / "test.txt").read_text(encoding="utf-8")
    assert sample["doc"]["text"].strip() == text.strip()
    metrics = result["results"]["wikitext2_local"]
    bits_per_byte, word_perplexity = metrics["bits_per_byte,none"], metrics["word_perplexity,none"]
    assert 0 < bits_per_byte < 8 * math.log2(300)  # a finite loss, below an untrained model's worst
    words, n_bytes = len(re.split(r"\s+", sample["doc"]["text"])), len(sample["doc"]["text"].encode())
    nll = bits_per_byte * n_bytes * math.log(2)  # the same summed loss, per word
    assert word_perplexity == pytest.approx(math.exp(nll / words), rel=1e-6)
