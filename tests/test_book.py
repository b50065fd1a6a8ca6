"""The book: chapters execute with papermill, the HTML builds with Jupyter Book, and the built pages are
sound (every chapter and figure present, no error output, no broken link or image).

This is the CI guard for the book. It executes every chapter of the table of contents with the smoke
parameters (``linscale.book.SMOKE_PARAMETERS``, reading the committed ``results/smoke/`` tables that
``linscale study --preset smoke`` writes) into a temporary copy of ``book/`` and builds it there.
"""
from __future__ import annotations

import ast
import json
import math
import re
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from linscale import book
from linscale.config import ConfigError


# ----------------------------------------------------------------------------- parameters (fast)


def test_parameters_are_validated_with_one_clear_line():
    defaults = book.default_parameters("architectures")
    assert book.validate_parameters("architectures", **defaults) == defaults
    with pytest.raises(ConfigError, match=r"parameter d_model: expected int, got '64' \(str\)"):
        book.validate_parameters("architectures", **{**defaults, "d_model": "64"})
    with pytest.raises(ConfigError, match=r"parameter archs: unknown value\(s\) \['mamba'\]"):
        book.validate_parameters("architectures", **{**defaults, "archs": ["tnl", "mamba"]})
    with pytest.raises(ConfigError, match="parameter seq_len: must be positive"):
        book.validate_parameters("architectures", **{**defaults, "seq_len": 0})
    with pytest.raises(ConfigError, match="parameter d_model: expected int, got True"):
        book.validate_parameters("architectures", **{**defaults, "d_model": True})


def test_every_chapter_declares_exactly_its_parameters_cell():
    """The schema in linscale.book and each notebook's parameters cell name the same parameters, and
    the notebook's defaults pass validation."""
    for chapter in book.toc_chapters():
        defaults = book.default_parameters(chapter)
        assert set(defaults) == set(book.PARAMETERS[chapter]), chapter
        book.validate_parameters(chapter, **defaults)


def test_chapters_are_built_in_the_order_the_table_of_contents_reads_them():
    """linscale.book.CHAPTERS, said to be in reading order (and executed in it), lists every chapter of
    _toc.yml in its order (ablations and efficiency had drifted apart)."""
    assert list(book.CHAPTERS) == book.toc_chapters()


def test_the_introductions_parameter_table_lists_each_chapters_parameters():
    """book/intro.md tells readers what each chapter takes: the table must follow the schema."""
    import re

    table = {}
    for line in (book.ROOT / "book" / "intro.md").read_text().splitlines():
        match = re.match(r"\| \{ref\}`([\w-]+)` \| (.*) \|$", line)
        if match:
            table[match.group(1).replace("-", "_")] = re.findall(r"`(\w+)`", match.group(2))
    assert set(table) == set(book.toc_chapters())
    for chapter, names in table.items():
        assert sorted(names) == sorted(book.PARAMETERS[chapter]), chapter


def test_the_check_run_again_in_jupyter_takes_the_chapters_own_variables_for_no_parameters():
    """A teacher who ran a chapter in Jupyter, changed a parameter and ran the check cell again was told
    "unknown parameter(s) curve, large, params, table7, ..." (the accounting chapter's own variables); a
    misspelled parameter still fails."""
    ran = {**{name: object() for name in ("curve", "large", "params", "table7", "budget")},
           **book.default_parameters("accounting")}
    book.check_parameters("accounting", ran)
    for chapter in book.CHAPTERS:  # every name any chapter's cells bind
        book.check_parameters(chapter, {**{name: object() for name in book._chapter_variables(chapter)},
                                        **book.default_parameters(chapter)})
    ran["figure_sise"] = "70M"
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) figure_sise; expected"):
        book.check_parameters("accounting", ran)


def test_the_parameters_check_shows_one_line_in_jupyter_and_papermill():
    """IPython shows an exception's ``_render_traceback_`` in place of its traceback: a mistyped parameter in
    Jupyter (and in papermill's report) was a traceback through linscale/book.py, not the one line."""
    namespace = book.default_parameters("accounting")
    for bad, line in (({"figure_sise": "70M"}, "ConfigError: chapter accounting: unknown parameter(s) figure_sise; "
                                               "expected preset, results_dir, reference_preset, context_lengths, "
                                               "figure_size"),
                      ({"context_lengths": 4096}, "ConfigError: parameter context_lengths: expected list or tuple, "
                                                  "got 4096 (int)")):
        with pytest.raises(ConfigError) as error:
            book.check_parameters("accounting", {**namespace, **bad})
        assert error.value._render_traceback_() == [line]


def test_the_chapters_own_check_catches_names_papermill_lets_through():
    """check_parameters looks at the kernel's namespace: a misspelled name fails in one line; imports
    (modules, functions) are not parameters; the values come back with what was changed."""
    import math
    from os.path import join

    namespace = {**book.default_parameters("architectures"), "book": book, "math": math, "join": join}
    params = book.check_parameters("architectures", namespace)
    assert dict(params) == book.default_parameters("architectures") and params.changed() == []
    with pytest.raises(ConfigError, match=r"chapter architectures: unknown parameter\(s\) chunk_sze; expected archs"):
        book.check_parameters("architectures", {**namespace, "chunk_sze": 8})
    with pytest.raises(ConfigError, match="parameter n_head: expected int"):
        book.check_parameters("architectures", {**namespace, "n_head": "4"})
    changed = book.check_parameters("architectures", {**namespace, "n_head": 2})
    assert changed.changed() == ["n_head"]
    html = changed._repr_html_()
    assert "1 set for this run: n_head" in html and "set for this run; default <code>4</code>" in html
    unknown = book.ChapterParameters("architectures", dict(params))._repr_html_()  # run away from its source
    assert "(the chapter&#x27;s defaults are not known here)" in unknown
    assert "all defaults" not in unknown and "<td>default</td>" not in unknown
    assert "(all defaults)" in params._repr_html_() and "<td>default</td>" in params._repr_html_()


@pytest.mark.slow
def test_a_misspelled_parameter_fails_under_papermill_itself(tmp_path):
    """papermill only warns about a parameter the notebook does not define and runs on with the default;
    the chapter's first cell makes the run fail, naming the parameter."""
    import papermill

    source = tmp_path / "architectures.ipynb"
    nbformat.write(book.read_chapter_source("architectures"), source)
    with pytest.raises(papermill.PapermillExecutionError, match=r"unknown parameter\(s\) chunk_sze"):
        papermill.execute_notebook(str(source), str(tmp_path / "out.ipynb"), parameters={"chunk_sze": 8},
                                   kernel_name="python3", progress_bar=False, cwd=str(book.ROOT))


def test_a_chapters_kernel_is_shut_down_without_an_interrupt(tmp_path):
    """jupyter_client interrupts every kernel it shuts down; papermill shuts a chapter's kernel down
    while it is still answering papermill's last request, and ipykernel then logged "KeyboardInterrupt
    caught in kernel." at ERROR on the study's console (about one chapter in ten). The kernel here
    records a SIGINT in a file instead (ipykernel's own handler swap is switched off, so this handler
    stays in place until the kernel exits); no SIGINT may arrive, and the notebook still runs."""
    marker = tmp_path / "sigint"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(
        "import signal\n"
        "kernel = get_ipython().kernel\n"
        "kernel.pre_handler_hook = kernel.post_handler_hook = lambda: None\n"
        f"signal.signal(signal.SIGINT, lambda *_: open({str(marker)!r}, 'a').write('SIGINT'))\n"
        "print('ran')")]
    source, out = tmp_path / "t.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, source)
    book.run_notebook(source, out, {}, cwd=tmp_path)
    assert nbformat.read(out, as_version=4).cells[0].outputs[0]["text"] == "ran\n"
    assert not marker.exists(), "the kernel was sent SIGINT when it was shut down"


def test_unknown_parameter_fails_before_a_kernel_starts(tmp_path):
    with pytest.raises(ConfigError, match="chapter architectures: unknown parameter"):
        book.execute_chapter("architectures", {"chunksize": 8}, out_dir=tmp_path)
    with pytest.raises(ConfigError, match="parameter chunk_size: expected int"):
        book.execute_chapter("architectures", {"chunk_size": "8"}, out_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def test_html_checker_finds_broken_links_missing_figures_and_errors(tmp_path):
    """The checker itself can fail: a page with a broken image, a broken link, a broken anchor, a
    traceback and no figure yields one problem each."""
    (tmp_path / "chapters").mkdir()
    (tmp_path / "index.html").write_text('<a href="chapters/good.html#top">ok</a>')
    (tmp_path / "chapters" / "good.html").write_text(
        '<main id="top"><div class="cell_output"><img src="../fig.png"></div></main>')
    (tmp_path / "fig.png").write_bytes(b"\x89PNG")
    (tmp_path / "chapters" / "bad.html").write_text(
        '<main><img src="missing.png"><a href="nowhere.html">x</a><a href="good.html#nope">y</a>'
        '<div class="output traceback">Traceback (most recent call last)</div>'
        '<p>FitAttempt(not possible: approach2 [tnl]: too few sizes)</p><figcaption>from results//niah_cells.parquet'
        '</figcaption><pre>FitAttempt(fine in a code listing)</pre></main>')
    problems = book.check_html(tmp_path, chapters=["good", "bad", "absent"])
    assert "chapter absent: page chapters/absent.html missing" in problems
    assert "chapter bad: 0 figure(s), expected at least 1" in problems
    assert any("chapter bad: error output" in p for p in problems)
    assert "chapters/bad.html: broken image missing.png" in problems
    assert "chapters/bad.html: broken link nowhere.html" in problems
    assert "chapters/bad.html: broken anchor good.html#nope" in problems
    raw = [p for p in problems if p.startswith("chapters/bad.html: raw output")]
    assert any("FitAttempt(not possible" in p for p in raw) and any("results//niah" in p for p in raw)
    assert any("Traceback" in p for p in raw) and not any("code listing" in p for p in raw)
    assert not [p for p in problems if "good" in p.split(":")[0]]


# ----------------------------------------------------------------------------- the built book (slow)


def glued(notebook: Path, mime: str = "text/plain") -> dict:
    """{name: text} of every value a notebook glued (myst_nb.glue, display or not), in ``mime``; values
    without it are None."""
    values = {}
    for cell in nbformat.read(notebook, as_version=4).cells:
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {}).get("scrapbook")
            if meta:
                values[meta["name"]] = output.get("data", {}).get(meta.get("mime_prefix", "") + mime)
    return values


def glued_markdown(notebook: Path) -> dict:
    """{name: markdown} of every Markdown value a notebook glued (their text/plain is only a repr)."""
    return {name: text for name, text in glued(notebook, "text/markdown").items() if text is not None}


@pytest.mark.slow
def test_a_study_without_aspect_or_context_runs_reads_no_nan_in_its_ablations_chapter(tmp_path):
    """A preset whose `ablations` leaves out the aspect and context sweeps (a helper's own grid) got an
    ablations chapter that read "nan% for LLaMA", "trained at none tokens: none nats" and "pooled over
    the four architectures (0 degrees of freedom)". The passages that read those runs are now left out,
    a note naming the ablation in their place, and no number the page still shows is NaN."""
    import re

    results = tmp_path / "results"
    shutil.copytree(book.ROOT / "results" / "smoke", results / "smoke")
    for table in (results / "smoke" / "ablations").glob("*.parquet"):
        if table.name.startswith(("aspect", "context")):
            table.unlink()
    out = book.execute_chapter("ablations", {"preset": "smoke", "results_dir": str(results)}, out_dir=tmp_path / "out")
    markdown = [c.source for c in nbformat.read(out, as_version=4).cells if c.cell_type == "markdown"]
    for what in ("aspect-ratio", "context-length"):
        assert sum(book.ABLATION_LEFT_OUT_NOTE.format(what=what) == text for text in markdown) >= 1, what
    assert not any("Across shapes, the final" in text or "At the common context" in text for text in markdown)
    values = glued(out)
    shown = {key for text in markdown for key in re.findall(r"\{glue:text\}`(\w+)", text)}
    assert not [key for key in sorted(shown) if re.search(r"\bnan\b", str(values.get(key)))], \
        {key: values.get(key) for key in shown if re.search(r"\bnan\b", str(values.get(key)))}
    assert "This study trained no aspect-ratio or context-length runs" in values["bound_readings"]
    assert values["aspect_archs_words"] == values["context_archs_words"] == "'an ablation this study did not train'"
    # no aspect runs to test the claim on, nor to time the base size by; exercise 2 would train the pair anew
    assert (values["aspect_tested_on"], values["base_run_kinds"]) == ("''", "'seeds'")
    assert values["ex_shape_runs"] == "'2 new runs (LLaMA and cosFormer2)'"
    assert values["trend_dof"] != "0"


@pytest.mark.slow
def test_a_study_whose_fixed_e_fit_failed_reads_not_fitted_in_its_laws_chapter(tmp_path):
    """A grid too small for approach 3 with E fixed (5 rows for 5 parameters) failed the scaling-laws chapter
    with KeyError: 'group' in the cell that reads that fit's interval of a."""
    import pandas as pd

    results = tmp_path / "results"
    shutil.copytree(book.ROOT / "results" / "smoke", results / "smoke")
    fits = results / "smoke" / "fits"
    for table in fits.glob("approach3_fixed_e.*"):
        table.unlink()
    status = pd.read_csv(fits / "status.csv")
    fixed = status["method"] == "approach3_fixed_e"
    status.loc[fixed, "status"], status.loc[fixed, "reason"] = "failed", "approach3: needs at least 6 rows, got 5"
    status.to_csv(fits / "status.csv", index=False)
    out = book.execute_chapter("scaling_laws", {"preset": "smoke", "results_dir": str(results)},
                               out_dir=tmp_path / "out")
    values = glued(out)
    assert values["a_width_real"] == values["a_width_span"] == "'not fitted'", values["a_width_real"]


@pytest.mark.slow
def test_a_study_without_size_seeds_runs_is_said_to_have_none_in_findings(tmp_path):
    """A study whose preset leaves out size_seeds measured the seed noise at one size: the findings page
    said the noise "hardly changes with size as N to the power +0.00" (a slope one size cannot fit; the
    rule sets it to 0) and that retrieval is judged "at the largest (the size_seeds ablation's two
    seeds)", where the rule judges it at the seeds ablation's size."""
    results = tmp_path / "results"
    shutil.copytree(book.ROOT / "results" / "smoke", results / "smoke")
    for table in (results / "smoke" / "ablations").glob("size_seeds*.parquet"):
        table.unlink()
    # its preset without TNL too (as recorded by --set; the runs stay): the caveat on TNL is left out
    (results / "smoke" / "overrides.json").write_text('{"preset": "smoke", "set": ["archs=[llama,hgrn2,cosformer2]"]}')
    out = book.execute_chapter("findings", {"preset": "smoke", "results_dir": str(results)}, out_dir=tmp_path / "out")
    assert not [c for c in nbformat.read(out, as_version=4).cells if "A caveat on TNL" in c.source]
    values = {name: ast.literal_eval(value) for name, value in glued(out).items() if value and value[:1] in "'\""}
    assert values["trend_sentence"].startswith("The seed noise of the final fitted loss was measured at one size "
                                               "only (s1), so it is taken as the same at every size")
    assert values["retrieval_size_words"].startswith("retrieval there too (this study has no size_seeds runs")
    assert values["archs_all"] == "all four architectures"
    assert values["size_seeds_sizes"] == "which this study did not train"
    assert values["size_seeds_retrains"] == "nothing in this study (its preset leaves that ablation out)"


@pytest.mark.slow
def test_built_book_has_every_chapter_and_figure_and_no_errors_or_broken_links(built_book):
    html = built_book["html"]
    assert (html / "intro.html").exists() and (html / "bibliography.html").exists()
    assert book.check_html(html, chapters=built_book["chapters"], min_figures=book.MIN_FIGURES) == []
    # The bibliography resolved: the paper is cited on the introduction page.
    assert "Shen" in (html / "intro.html").read_text()
    # Every chapter's prose numbers are glued: no glue key is left unresolved in the HTML.
    for chapter in built_book["chapters"]:
        text = (html / "chapters" / f"{chapter}.html").read_text()
        assert "{glue" not in text and "glue:text" not in text, chapter
    # glued text has the prose's curly apostrophes ("the paper's" was pasted in with a straight one)
    pasted = [t for chapter in built_book["chapters"] for t in re.findall(
        r'<span class="pasted-text">(.*?)</span>', (html / "chapters" / f"{chapter}.html").read_text(), re.S)]
    assert not [t for t in pasted if re.search(r"[A-Za-z](?:'|&#39;)[A-Za-z]", t)]
    assert sum("\u2019" in t for t in pasted) > 10


def test_a_study_of_real_text_has_the_table_of_contents_of_the_chapters_without_the_synthetic_language(
        tmp_path, monkeypatch):
    """The introduction glues the findings' verdicts and links the downstream chapter, so a study of text
    (the text and paper presets, a corpus of one's own) had no book: its table of contents leaves out the
    chapters that read the suites' scores or show the synthetic language, and its introduction is its own."""
    import yaml

    from linscale.presets import USER_PRESETS_ENV, load_preset

    full = book.BOOK / "_toc.yml"
    assert book.study_toc(None) == full and book.study_toc("cpu") == full and book.study_toc("smoke") == full
    assert book.study_toc("text") == book.TEXT_TOC and book.study_toc("paper") == book.TEXT_TOC
    assert book.study_toc("nosuch") == full  # a folder named after no preset: no data source to read
    text = book.toc_chapters(book.TEXT_TOC)
    assert text == [c for c in book.toc_chapters(full) if c not in (*book.READS_SUITES, "synthetic_language")]
    assert yaml.safe_load(book.TEXT_TOC.read_text())["root"] == "intro_text"
    # the study's --set overrides decide, as they decide the grid its chapters show
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "mine.yaml").write_text(yaml.safe_dump({**load_preset("smoke"), "name": "mine",
                                                                    "data": {"source": "synthetic"}}))
    monkeypatch.setenv(USER_PRESETS_ENV, str(tmp_path / "presets"))
    assert book.study_toc("mine", tmp_path / "results") == full
    (tmp_path / "results" / "mine").mkdir(parents=True)
    (tmp_path / "results" / "mine" / "overrides.json").write_text(
        json.dumps({"set": ["data.source=text", "data.path=corpus", "data.vocab_size=512"]}))
    assert book.study_toc("mine", tmp_path / "results") == book.TEXT_TOC
    assert book.study_data_source("mine", tmp_path / "results") == "text"
    # what it trained on, as the introduction says it
    assert book.corpus_phrase({"source": "text", "path": "corpus", "vocab_size": 512}) == (
        "real text, corpus (data.path), in a byte-level BPE of 512 tokens trained on it")
    default_vocab = "a byte-level BPE of 8,192 tokens trained on it"
    assert book.corpus_phrase({"source": "text", "path": "c"}).endswith(default_vocab)
    assert book.corpus_phrase({"source": "text", "path": "c", "tokenizer": "t.json"}) == (
        "real text, c (data.path), in the tokens of t.json (data.tokenizer)")
    assert book.corpus_phrase({"source": "synthetic"}) == "the synthetic language"


def test_a_link_to_a_chapter_the_book_leaves_out_is_its_text_and_any_other_missing_link_still_fails():
    from types import SimpleNamespace

    from docutils import nodes
    from sphinx import addnodes

    from linscale.sphinx_study import chapter_labels, link_to_left_out_chapter

    assert {"synthetic-language", "downstream", "findings"} <= chapter_labels(["synthetic_language", "downstream",
                                                                                "findings"])
    assert "training" not in chapter_labels(["synthetic_language"])
    text_book = SimpleNamespace(found_docs={"intro_text", "glossary", *(f"chapters/{c}" for c in
                                                                        book.toc_chapters(book.TEXT_TOC))})
    full_book = SimpleNamespace(found_docs={"intro", "glossary", *(f"chapters/{c}" for c in book.CHAPTERS)})
    link = addnodes.pending_xref("", reftype="ref", reftarget="synthetic-language", refexplicit=True)
    title = nodes.inline("", "the appendix on the language")
    assert link_to_left_out_chapter(None, text_book, link, title) is title
    # a link without a text of its own showed its bare label ("the seed noise (seed-noise)"): it names the chapter
    bare = addnodes.pending_xref("", reftype="ref", reftarget="seed-noise", refexplicit=False)
    named = link_to_left_out_chapter(None, text_book, bare, nodes.inline("", "seed-noise"))
    assert named.astext() == "the published book\u2019s ablations chapter"  # curled, as the prose around it
    assert link_to_left_out_chapter(None, full_book, bare, nodes.inline("", "seed-noise")) is None
    assert link_to_left_out_chapter(None, full_book, link, title) is None  # a label the full book lacks: fails
    for target in ("training", "no-such-label"):  # in the book, or in no chapter: Sphinx's warning stands
        assert link_to_left_out_chapter(None, text_book, addnodes.pending_xref("", reftype="ref", reftarget=target),
                                        title) is None
    assert link_to_left_out_chapter(None, text_book, addnodes.pending_xref(
        "", reftype="term", reftarget="synthetic-language"), title) is None


@pytest.mark.slow
def test_the_book_of_a_study_of_real_text_builds_from_its_chapters_with_its_own_introduction(built_book, tmp_path):
    """The text table of contents built with -W from the chapters it lists (executed on the smoke study;
    which study they show is the chapters' business): the introduction is intro_text, the glossary's link
    to the appendix on the synthetic language is plain text, and nothing of the left-out chapters is built."""
    from bs4 import BeautifulSoup

    root = book.copy_sources(tmp_path)
    (root / "book" / "chapters").mkdir()
    text = book.toc_chapters(book.TEXT_TOC)
    for chapter in text:
        shutil.copy(built_book["outputs"][chapter], root / "book" / "chapters")
    html = book.build_html(root, toc=book.TEXT_TOC)
    assert book.check_html(html, chapters=text, min_figures=book.MIN_FIGURES) == []
    assert not (html / "intro.html").exists() and not (html / "chapters" / "downstream.html").exists()
    intro = BeautifulSoup((html / "intro_text.html").read_text(), "html.parser").get_text(" ")
    assert "on real text" in intro and "{glue" not in intro
    assert re.search(r"at\s+two small sizes, s1 to s2", intro)  # glued from the training chapter: the smoke grid's
    glossary = BeautifulSoup((html / "glossary.html").read_text(), "html.parser")
    assert "the appendix on the language" in glossary.get_text(" ")
    assert not glossary.find_all("a", href=re.compile("synthetic_language"))
    full_glossary = BeautifulSoup((built_book["html"] / "glossary.html").read_text(), "html.parser")
    assert full_glossary.find_all("a", href=re.compile("synthetic_language"))  # the published book links it


def test_glued_text_gets_the_typographic_quotes_of_the_prose():
    from docutils import nodes

    from linscale.sphinx_study import curl_quotes

    para = nodes.paragraph("", "", nodes.inline("", "the paper's 'best' and ", nodes.literal("x's", "x's"),
                                                 nodes.Text(' "--set a=1"'), classes=["pasted-text"]))
    curl_quotes(para[0])
    assert para.astext() == "the paper\u2019s \u2018best\u2019 and x's \u201c--set a=1\u201d"


def test_a_value_glued_on_its_own_page_keeps_its_dashes():
    """A value glued on the page that pastes it went through SmartQuotes with the prose: the accounting page of a
    study made with --set overrides read "(\u2013set data.path=/tmp/corpus ...)". Marked before SmartQuotes runs,
    the pasted text is left alone and the prose around it is still smartquoted."""
    import types

    from docutils import nodes
    from sphinx.transforms import SphinxSmartQuotes
    from sphinx.util.nodes import is_smartquotable

    from linscale.sphinx_study import GluedKeepsItsDashes

    pasted = nodes.inline("", "", nodes.Text("(--set data.path=c)"), classes=["pasted-text"])
    prose = nodes.Text("s1 -- s5 ")
    page = nodes.paragraph("", "", prose, pasted)
    GluedKeepsItsDashes.apply(types.SimpleNamespace(document=page))
    assert not is_smartquotable(pasted[0]) and is_smartquotable(prose)
    assert GluedKeepsItsDashes.default_priority < SphinxSmartQuotes.default_priority


@pytest.mark.slow
def test_every_chapter_records_its_parameters_and_is_skipped_when_unchanged(built_book):
    chapter = built_book["chapters"][0]
    out = built_book["outputs"][chapter]
    meta = nbformat.read(out, as_version=4).metadata
    assert meta["linscale"]["parameters"] == {k: v for k, v in book.SMOKE_PARAMETERS.items()
                                              if k in book.PARAMETERS[chapter]}
    before = out.stat().st_mtime_ns
    said = []  # and it says so (every chapter was announced as "executing", re-run or not)
    book.execute_chapter(chapter, meta["linscale"]["parameters"], out_dir=out.parent, progress=said.append)
    assert out.stat().st_mtime_ns == before  # unchanged source, parameters and inputs: not re-run
    assert said == [f"[book] {chapter}: up to date"]


@pytest.mark.slow
def test_rerunning_a_chapter_with_a_new_parameter_gives_a_different_correct_result(built_book, tmp_path):
    """The architectures chapter re-executed through papermill with 2 heads instead of 4 and only LLaMA
    and TNL: the KV-cache-to-state ratio it glues must be 2·T·h/d (K and V of T tokens, 2·l·T·d numbers,
    against TNL's l·h·(d/h)² state), and differ from the book's."""
    parameters = {"archs": ["llama", "tnl"], "contexts": [64, 512], "d_model": 64, "n_layer": 2, "seq_len": 32,
                  "n_head": 2}
    out = book.execute_chapter("architectures", parameters, out_dir=tmp_path)
    ratio = float(glued(out)["kv_over_state"])
    assert ratio == pytest.approx(2 * 512 * 2 / 64)
    assert ratio != pytest.approx(float(glued(built_book["outputs"]["architectures"])["kv_over_state"]))
    executed = nbformat.read(out, as_version=4)
    assert executed.metadata["papermill"]["parameters"]["n_head"] == 2
    # The values used are visible at the top: papermill's cell labelled and shown, then the table of values.
    cells = executed.cells
    at = next(i for i, c in enumerate(cells) if "injected-parameters" in c.metadata.get("tags", []))
    assert cells[at].source.startswith(book.INJECTED_LABEL) and "hide-input" not in cells[at].metadata["tags"]
    shown = "".join(o.get("data", {}).get("text/html", "") for o in cells[at + 1].outputs)
    assert "Parameters of this run" in shown and "<code>n_head</code></td><td><code>2</code>" in shown
    assert "set for this run; default <code>4</code>" in shown
    # papermill run on the executed chapter with one new value keeps this run's others: it drops the injected
    # cell, and the defaults it fell back to were the published study's (d_model 256, 4 heads here)
    again = tmp_path / "again.ipynb"
    book.run_notebook(out, again, {"contexts": [64, 256]}, cwd=book.ROOT)
    assert float(glued(again)["kv_over_state"]) == pytest.approx(2 * 256 * 2 / 64)


def test_a_chapter_narrowed_to_one_linear_architecture_keeps_its_reference(tmp_path):
    """`archs` narrows what the efficiency chapter draws, not the softmax-attention reference its text
    compares with: with only TNL shown, LLaMA's ratios are still the committed report's (they were NaN in
    the prose), and the older report's contrast is still drawn."""
    from linscale import bench

    params = {k: v for k, v in book.SMOKE_PARAMETERS.items() if k in book.PARAMETERS["efficiency"]}
    values = glued(book.execute_chapter("efficiency", {**params, "archs": ["tnl"]}, out_dir=tmp_path))
    report = bench.committed_report(sections=("length", "decoding"))
    decoding = report.tables["decoding"].query("model == 'llama'")
    longest = decoding[decoding["context"] == decoding["context"].max()].iloc[0]
    length = report.tables["length"].query("mixer == 'llama'")
    assert float(values["decode_llama"]) == pytest.approx(longest["vs_ref"])
    assert float(values["state_growth_llama"]) == pytest.approx(longest["state_vs_ref"])
    assert float(values["llama_ratio"]) == pytest.approx(length.loc[length["seq_len"].idxmax(), "vs_ref"])
    assert "not in this folder" not in values["older_contrast"]
    # what the page shows is TNL's: captions that name LLaMA say it is left out, one number where a range
    # of one architecture had two equal ends ("0.72 to 0.72", "21.3% to 21.3%"), the step-time example
    # and the GPU figures TNL's (they listed all four, and compared with a LLaMA row the table lacked)
    said = {name: ast.literal_eval(value) for name, value in values.items() if value and value[:1] in "'\""}
    assert "left out here by `archs`" in said["length_caption_llama"] + said["decoding_caption_llama"]
    assert " to " not in said["decode_linear_span"] and float(said["decode_linear_span"]) > 0
    assert not re.search(r"(\d[\d.]*%) to \1", said["mfu_summary"]), said["mfu_summary"]
    assert "the same TNL width" in said["train_vs_utilisation"] and "Its step is" in said["train_vs_utilisation"]
    for gpu in ("gpu_kernel_speed", "gpu_mfu", "gpu_paper", "gpu_kernel_bandwidth"):
        assert "TNL" in said[gpu] and not re.search(r"LLaMA|HGRN2|cosFormer2", said[gpu]), (gpu, said[gpu])
    # one architecture's counts and ranges: not "all 1 of 1 architectures learn" or "within 0.39-0.39%"; the
    # decoding rounds keep LLaMA's ratio after the shortest prompt (read from the whole report)
    assert said["gpu_paper"].startswith("TNL learns in 20 steps")
    assert not re.search(r"within (\d[\d.]*)-\1%", said["gpu_lightning"]), said["gpu_lightning"]
    assert "(LLaMA's " in said["decode_rounds"], said["decode_rounds"]
    assert "TNL" in said["batched_rounds"] and "HGRN2" not in said["batched_rounds"]
    # LLaMA alone: the linear mixers' figures are the report's, not NaN; no kernel of ours to show
    values = glued(book.execute_chapter("efficiency", {**params, "archs": ["llama"]}, out_dir=tmp_path / "llama"))
    assert all(math.isfinite(float(values[name])) for name in ("linear_ratio_max", "state_growth_linear_max"))
    assert "none of the architectures shown has a kernel" in values["gpu_kernel_speed"]


def test_a_chapter_reads_the_grid_its_study_trained_with_its_overrides(tmp_path):
    """A study made with `linscale study --set ...` records its overrides beside its tables; a chapter run
    on that folder describes the language and grid that were trained, not the preset's own (it read the
    preset by name: a study with 24 variables was described as having the preset's 32)."""
    import shutil

    from linscale.data.synthetic import LanguageSpec
    from linscale.results import OVERRIDES_FILE
    from linscale.train.settings import resolve_preset

    preset_vars = LanguageSpec.from_dict(resolve_preset("smoke").get("data") or {}).n_vars
    shutil.copytree(book.ROOT / "results" / "smoke", tmp_path / "results" / "smoke")
    (tmp_path / "results" / "smoke" / OVERRIDES_FILE).write_text('{"preset": "smoke", "set": ["data.n_vars=24"]}')
    values = glued(book.execute_chapter("synthetic_language", {"preset": "smoke", "results_dir": str(tmp_path / "results")},
                                        out_dir=tmp_path / "out"))
    assert preset_vars != 24 and values["n_vars"] == "24" and values["bind_var_cost"].startswith("'ln 23 ")


@pytest.mark.slow
def test_the_accounting_page_tabulates_the_grid_its_study_trained(tmp_path):
    """The accounting chapter read its preset by name: a study made with `--set archs=[tnl,llama]` was
    costed as the preset's four architectures. It reads the recorded overrides, needing no runs (only the
    overrides file is there)."""
    from linscale.results import OVERRIDES_FILE
    from linscale.train.settings import resolve_preset

    study = tmp_path / "results" / "smoke"
    study.mkdir(parents=True)
    (study / OVERRIDES_FILE).write_text('{"preset": "smoke", "set": ["archs=[tnl,llama]"]}')
    book.check_results({"preset": "smoke", "results_dir": str(tmp_path / "results")}, ["accounting"])
    mine = glued(book.execute_chapter("accounting", {"preset": "smoke", "results_dir": str(tmp_path / "results")},
                                      out_dir=tmp_path / "mine"))
    sizes = resolve_preset("smoke")["sizes"]
    assert len(resolve_preset("smoke")["archs"]) == 4 and int(mine["grid_runs"]) == 2 * len(sizes)
    assert "--set archs=[tnl,llama]" in mine["grid_name"]
    assert mine["formula_leaves_out"] == ("\"Table 1's formula leaves out LLaMA's RMSNorm gains, which weigh most "
                                          "in the smallest models\"")


def test_a_page_narrowed_to_one_architecture_says_only_what_holds_for_it(tmp_path):
    """`-y "archs: [tnl]"` narrows what a page shows, and its sentences with it: it said "Our loss exponents
    range from -0.0671 to -0.0629" (every architecture's), "the pattern is the same in all four architectures"
    of one, a probe's verdict "partly for all four" of TNL's alone and "E within 5% for 0 of 4 architectures"
    (TNL's count over four), "all four envelopes", and "LLaMA's NIAH easy is at least its standard at 0 of 0
    sizes". A probe's verdicts keep the probe's scope (all four), whatever the page shows."""
    def text(chapter, archs=("tnl",)):
        values = glued(book.execute_chapter(chapter, {"archs": list(archs)}, out_dir=tmp_path / "-".join(archs)))
        return {name: ast.literal_eval(value) for name, value in values.items() if value and value[:1] in "'\""}

    laws = text("scaling_laws")
    assert laws["loss_exp_text"].startswith("Our loss exponent is ") and "cosFormer2" not in laws["loss_exp_text"]
    assert laws["a_pattern"].startswith("In TNL, the one architecture shown")
    # the pairs where the larger model ends ahead, the count the leads are read among (it said "of 20" pairs)
    assert re.match(r"Where the larger model ends ahead \((\d) of (\d) pairs\)", laws["crossover_noise"])
    probes, every = text("law_probes"), text("law_probes", book.ARCHITECTURES)
    # the LR probe's scope is its own (two architectures), whatever the page shows; one architecture's count
    assert "(the learning rate's level on the two it covered)" in probes["probes_by_verdict"]
    assert probes["depth_wide_wins"].startswith("TNL (final validation loss")
    assert [probes[g] for g in ("embed_verdicts", "embed_e", "embed_holdout", "misfit_below")] == \
        [every[g] for g in ("embed_verdicts", "embed_e", "embed_holdout", "misfit_below")]
    training = text("training")
    assert training["envelope_leads"] == ""
    assert training["grid_archs_trained"] == "the same four architectures are trained"  # the study's, not the page's
    downstream = text("downstream")
    assert downstream["modes_llama"].startswith("not on this page") and "all four" in downstream["retrieval_where"]
    # the accuracy-noise table keeps the noise model's four architectures, and the page says why
    assert downstream["noise_scope"] == " (the table keeps all four for that reason, on a page that shows only TNL)"
    assert laws["a_miss_pattern"].startswith("in TNL, the one architecture shown")
    assert probes["misfit_scope"] == " (all four: the probes retrained all four, and this page shows only TNL)"
    assert every["misfit_scope"] == ""
    assert text("architectures")["memory_lines"] == "The recurrent state is flat."  # no KV cache drawn


def test_the_findings_chapter_tells_the_published_provenance_only_of_the_published_folder(built_book):
    """The "Re-runs" section says which commits and machines wrote results/cpu; a book built on another
    folder (here the smoke results) must not claim that provenance for its own tables."""
    markdown = glued_markdown(built_book["outputs"]["findings"])
    assert "the smoke preset's `results/smoke`, not the published `results/cpu`" in markdown["provenance"]
    assert "f94109f" not in markdown["provenance"]


def test_the_notebooks_readme_lists_every_chapter_with_its_parameters():
    """notebooks/README.md is where a newcomer learns what each chapter takes: its table must name every
    chapter of the book with exactly the parameters linscale.book declares for it."""
    import re

    rows = {}
    for line in (book.NOTEBOOKS / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 3:
            chapter = re.match(r"`(\w+)`", cells[0]).group(1)
            rows[chapter] = set(re.findall(r"`(\w+)`", cells[2]))
    assert rows == {chapter: set(schema) for chapter, schema in book.PARAMETERS.items()}


def test_missing_results_fail_in_one_line_before_any_kernel(tmp_path):
    """A preset without results is told to run its study; a name no preset has is not (the advice was to run
    `linscale study --preset nosuch`, which refuses it)."""
    with pytest.raises(ConfigError, match=r"results/paper: no results of preset 'paper' \(run `linscale study"):
        book.execute_book({"preset": "paper"}, chapters=["training"], out_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"results/nosuch: no results of 'nosuch', and no preset has that name"):
        book.execute_book({"preset": "nosuch"}, chapters=["training"], out_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def test_a_damaged_results_table_fails_in_one_line_naming_it(tmp_path):
    """A runs table cut short (a full disk, a copy interrupted) was pyarrow's multi-line error, from the
    book's own check of its architectures or from a chapter's first read."""
    from linscale import results

    folder = tmp_path / "smoke"
    shutil.copytree(book.ROOT / "results" / "smoke", folder)
    (folder / "runs.parquet").write_bytes((book.ROOT / "results" / "smoke" / "runs.parquet").read_bytes()[:500])
    (folder / "runs.csv").write_text('run_id,step\n"r1,0\n')  # an unclosed quote
    for read in (lambda: book.check_results({"preset": "smoke", "results_dir": str(tmp_path)}, ["training"]),
                 lambda: results.read_runs("smoke", tmp_path), lambda: results.read_table(folder / "runs.csv")):
        with pytest.raises(ConfigError) as err:
            read()
        line = str(err.value)
        assert len(line.splitlines()) == 1, line
        assert re.match(rf"{re.escape(str(folder))}/runs\.(parquet|csv): not a readable results table \(.+\); "
                        r"write it again with `linscale study`", line), line


def test_a_chapter_run_away_from_the_repository_says_where_it_looked(tmp_path, monkeypatch):
    """papermill run on a chapter from /tmp without --cwd read results/cpu under /tmp; the line said only
    'results/cpu/runs.parquet: no such results table (run `linscale study` first, or check the folder)'."""
    from linscale import results
    from linscale.config import ResultsError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ResultsError, match=rf"^results/cpu/runs\.parquet: no such results table \(.*; a relative "
                                           rf"path is read from {re.escape(str(tmp_path))}\)$"):
        results.read_runs("cpu", "results")


def test_results_dir_given_as_a_studys_own_folder_names_the_folder_above_it():
    """A teacher gave --results-dir results/reruns/2026-12-03-seed6/cpu (or results/reruns) and was told to run
    `linscale study --preset cpu` first; the line names results_dir and the folder it means."""
    seed6 = "results/reruns/2026-12-03-seed6"
    with pytest.raises(ConfigError, match=rf"^parameter results_dir: {seed6}/cpu holds no cpu/ folder; expected the "
                                          rf"folder above a study's tables, e.g. {seed6}$"):
        book.check_results({"preset": "cpu", "results_dir": f"{seed6}/cpu"}, ["training"])
    with pytest.raises(ConfigError, match=r"^parameter results_dir: results/reruns holds no cpu/ folder; .* e\.g\. "
                                          r"results/reruns/2026-12-01-seed1, "):
        book.check_results({"preset": "cpu", "results_dir": "results/reruns"}, ["findings"])


def test_a_misspelled_or_bad_book_parameter_fails_before_any_chapter_runs(tmp_path):
    """`linscale book -p NAME VALUE` over the whole book: a name no chapter declares failed nowhere (every
    chapter ran with its defaults), and a bad value of a declared one failed only when its chapter's turn
    came, after the chapters before it had run. Both now fail in one line before the first kernel."""
    chapters = ["training", "law_probes"]
    with pytest.raises(ConfigError, match=r"parameter arcs: not a parameter of any of the chapters training, "
                                          r"law_probes; expected one of archs, loss, preset, results_dir"):
        book.execute_book({"arcs": ["tnl"]}, chapters=chapters, out_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"parameter archs: unknown value\(s\) \['mamba'\]"):
        book.execute_book({"archs": ["tnl", "mamba"]}, chapters=chapters, out_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"parameter loss: unknown value 'valloss'"):  # law_probes has no loss
        book.execute_book({"loss": "valloss"}, chapters=chapters, out_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def test_a_study_of_two_architectures_is_shown_with_its_two(tmp_path, monkeypatch):
    """`linscale study --preset smoke --set archs=[tnl,llama]` (the README's example) trained two
    architectures; its book stage asked every chapter for the default four and stopped in one line on
    the absent ones. The chapters that show trained runs now get the study's architectures (in the
    chapters' order); the others, a study of all four, and an explicit -p archs keep their values."""
    results = tmp_path / "results"
    shutil.copytree(book.ROOT / "results" / "smoke", results / "smoke")
    runs = pd.read_parquet(results / "smoke" / "runs.parquet")
    runs[runs["arch"].isin(["tnl", "llama"])].to_parquet(results / "smoke" / "runs.parquet")
    (results / "smoke" / "overrides.json").write_text(json.dumps({"set": ["archs=[tnl,llama]"]}))
    executed = []
    monkeypatch.setattr(book, "execute_chapter", lambda chapter, own, **kw: executed.append((chapter, own)))
    chapters = ["training", "downstream", "architectures"]
    book.execute_book({"preset": "smoke", "results_dir": str(results)}, chapters=chapters, out_dir=tmp_path)
    assert [(chapter, own.get("archs")) for chapter, own in executed] == \
        [("training", ["llama", "tnl"]), ("downstream", ["llama", "tnl"]), ("architectures", None)]

    executed.clear()
    book.execute_book({"preset": "smoke", "results_dir": str(results), "archs": ["tnl"]}, chapters=chapters[:1],
                      out_dir=tmp_path)
    assert executed == [("training", {"preset": "smoke", "results_dir": str(results), "archs": ["tnl"]})]
    executed.clear()
    book.execute_book({"preset": "smoke"}, chapters=chapters[:1], out_dir=tmp_path)  # the committed four
    assert executed == [("training", {"preset": "smoke"})]
    with pytest.raises(ConfigError, match=r"parameter archs: no runs of hgrn2 in .*runs.parquet"):
        book.execute_book({"preset": "smoke", "results_dir": str(results), "archs": ["tnl", "hgrn2"]},
                          chapters=chapters[:1], out_dir=tmp_path)
    # and the introduction says which of the paper's architectures the study trained (it said "the same four")
    monkeypatch.undo()
    values = glued(book.execute_chapter("training", {"preset": "smoke", "results_dir": str(results),
                                                     "archs": ["llama", "tnl"]}, out_dir=tmp_path / "out"))
    assert ast.literal_eval(values["grid_archs_trained"]) == \
        "LLaMA and TNL, two of the paper's four architectures, are trained"


def test_training_chapter_narrowed_by_archs_does_not_call_its_runs_the_studys(tmp_path):
    """With archs [tnl, llama] the page said "The cpu study has 12 runs (2 architectures × 6 sizes) ... the
    whole grid took 0.36 hours" of a study of 24 runs: it counts the runs shown, and says so. The
    introduction's sentence on the study's sizes reads the whole study."""
    values = glued(book.execute_chapter("training", {"preset": "smoke", "archs": ["tnl"]}, out_dir=tmp_path))
    assert ast.literal_eval(values["grid_subject"]) == \
        "The part of the smoke study shown here (archs leaves out LLaMA, HGRN2 and cosFormer2) has"
    assert int(values["n_runs"]) == 2
    # the introduction's sizes are the study's (TNL's alone were "of about 4K to 29K")
    assert ast.literal_eval(values["grid_sizes_text"]) == "two small sizes, s1 to s2, of about 3K to 29K " \
        "non-embedding parameters"


def test_the_introductions_misfit_sentence_names_the_architectures_a_narrowed_chapter_shows(tmp_path):
    """The introduction quotes the scaling-laws chapter's "They do not, <a_miss_pattern>" beside the study's
    four architectures: with archs [llama, tnl] it read "in the same way for both architectures", naming none."""
    values = glued(book.execute_chapter("scaling_laws", {"preset": "smoke", "archs": ["llama", "tnl"]},
                                        out_dir=tmp_path))
    pattern = ast.literal_eval(values["a_miss_pattern"])
    assert pattern.startswith("in the same way for both architectures shown (LLaMA and TNL) at s1"), pattern


def test_scaling_laws_page_of_a_study_that_identifies_every_envelope_law_says_none_plainly(tmp_path):
    """On the seed-9 re-run narrowed to TNL and HGRN2, both identified, the page read "Architectures whose envelope
    allocation law the design check does not identify: none; their laws are left out of the table and the figures"."""
    values = glued(book.execute_chapter("scaling_laws", {"results_dir": "results/reruns/2026-12-05-seed9",
                                                         "archs": ["tnl", "hgrn2"]}, out_dir=tmp_path))
    assert ast.literal_eval(values["a1_unidentified"]) == "none"
    values = glued(book.execute_chapter("scaling_laws", {"results_dir": "results/reruns/2026-12-05-seed9",
                                                         "archs": ["llama"]}, out_dir=tmp_path / "llama"))
    assert ast.literal_eval(values["a1_unidentified"]) == "LLaMA; their laws are left out of the table and the figures"


def test_ablations_page_joins_the_shapes_within_the_noise_as_a_list(tmp_path):
    """The seed-9 re-run's page read "the gap is within it for LLaMA, cosFormer2, so there the best shape is named"."""
    values = glued(book.execute_chapter("ablations", {"results_dir": "results/reruns/2026-12-05-seed9"},
                                        out_dir=tmp_path))
    assert "the gap is within it for LLaMA and cosFormer2, so" in ast.literal_eval(values["aspect_best_sentence"])


def test_efficiency_page_on_an_older_report_does_not_call_it_the_newest(tmp_path):
    """With -p report 2026-11-29-amd-epyc-2c-cpu-bench.md the page read "The CPU sections read the newest full
    CPU report (named below)" and then named the older one."""
    values = glued(book.execute_chapter("efficiency", {"report": "2026-11-29-amd-epyc-2c-cpu-bench.md"},
                                        out_dir=tmp_path))
    assert ast.literal_eval(values["report_which"]) == "the CPU report that the parameter report names, not the newest"
    prose = " ".join(c.source for c in book.read_chapter_source("efficiency").cells if c.cell_type == "markdown")
    assert "The CPU sections read {glue:text}`report_which`" in " ".join(prose.split())


def test_ablations_chapter_runs_on_a_study_without_ablations(tmp_path):
    """`linscale study --no-ablations` writes no ablation tables: the chapter still executes, without
    error output, and says there are no runs (empty panels instead of figures that fail)."""
    import shutil

    results = tmp_path / "results"
    shutil.copytree(book.ROOT / "results" / "smoke", results / "smoke", ignore=shutil.ignore_patterns("ablations"))
    out = book.execute_chapter("ablations", {"preset": "smoke", "results_dir": str(results)}, out_dir=tmp_path / "out")
    values = glued(out)
    assert int(values["n_aspect_runs"]) == 0 and int(values["n_context_runs"]) == 0
    outputs = [o for cell in nbformat.read(out, as_version=4).cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("name") == "stderr" or o.get("output_type") == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= book.MIN_FIGURES["ablations"]


def test_a_chapter_is_re_executed_when_a_re_run_of_its_study_is_committed_or_changed(tmp_path):
    """The up-to-date check sees the re-runs' comparisons and tables (the findings chapter shows them), and
    only those of the chapter's own preset."""
    results = tmp_path / "results"
    (results / "smoke").mkdir(parents=True)
    (results / "smoke" / "runs.parquet").write_text("x")
    parameters = {"preset": "smoke", "results_dir": "results"}
    before = book._input_tables(parameters, tmp_path)
    rerun = results / "reruns" / "2026-12-02-other-cpu"
    (rerun / "smoke").mkdir(parents=True)
    (rerun / "smoke-comparison.json").write_text("{}")
    (rerun / "smoke" / "runs.parquet").write_text("y")
    (rerun / "cpu-comparison.json").write_text("{}")  # another preset's re-run: not this chapter's input
    after = book._input_tables(parameters, tmp_path)
    assert set(after) - set(before) == {rerun / "smoke-comparison.json", rerun / "smoke" / "runs.parquet"}
    stamp = book._inputs_stamp("findings", parameters, "source", after)
    (rerun / "smoke-comparison.json").write_text('{"changed": true}')
    assert book._inputs_stamp("findings", parameters, "source", after) != stamp
    # a probe's tables (the downstream chapter reads one) are inputs too
    probe = results / "probes" / "2026-12-03-some-probe" / "table.csv"
    probe.parent.mkdir(parents=True)
    probe.write_text("a,b")
    assert set(book._input_tables(parameters, tmp_path)) - set(after) == {probe}


def test_a_chapter_is_re_executed_when_the_package_code_changes(monkeypatch):
    """A verdict rule or a figure lives in linscale/, not in the chapter's source: changing it must
    re-execute the chapters that show it."""
    stamp = book._inputs_stamp("findings", {}, "source", [])
    assert book._inputs_stamp("findings", {}, "source", []) == stamp  # nothing changed: skipped
    monkeypatch.setattr(book, "_package_digest", lambda: b"another rule")
    assert book._inputs_stamp("findings", {}, "source", []) != stamp


def test_a_grids_sizes_read_in_counts_of_their_own_scale():
    """The introduction's phrase for the grid wrote the paper preset's 7B as "6906124K" and called its
    sizes small; the cpu grid's phrase is unchanged."""
    counts = (950, 1_234, 119_808, 999_499, 999_500, 9.94e6, 9.96e6, 84_934_656, 999.6e6, 6_906_123_904, 12.3e9)
    assert [book.count_text(n) for n in counts] == ["950", "1K", "120K", "999K", "1.0M", "9.9M", "10M", "85M", "1.0B",
                                                    "6.9B", "12B"]
    assert book.grid_sizes_text(["s1", "s2", "s3"], 1_234, 119_808) == (
        "three small sizes, s1 to s3, of about 1K to 120K non-embedding parameters")
    assert book.grid_sizes_text(["70M", "7B"], 84_934_656, 6_906_123_904) == (
        "two sizes, 70M to 7B, of about 85M to 6.9B non-embedding parameters")
    assert book.grid_sizes_text(["s1"], 950, 950) == "one small size, s1, of about 950 non-embedding parameters"


def test_and_list_joins_glued_lists_as_prose():
    """The chapters' lists of architectures and sizes read "a, b and c", not "a, b, c" or "a and b and c"."""
    from linscale.book import and_list

    assert and_list([]) == "" and and_list(["s1"]) == "s1"
    assert and_list(["LLaMA", "TNL"]) == "LLaMA and TNL"
    assert and_list(iter(["LLaMA", "TNL", "HGRN2"])) == "LLaMA, TNL and HGRN2"


def test_a_page_names_the_study_it_shows_with_its_folder_unless_it_is_the_repositorys():
    from linscale.book import ROOT, study_title

    assert study_title("cpu") == "cpu study" and study_title("smoke", str(ROOT / "results")) == "smoke study"
    assert study_title("cpu", "results/reruns/x") == "cpu study in results/reruns/x/cpu"
    # a book built with --book-dir has its results_dir made absolute: the page names it from the repository
    assert study_title("cpu", str(ROOT / "results/reruns/x")) == "cpu study in results/reruns/x/cpu"
    assert study_title("mine", "/tmp/r") == "mine study in /tmp/r/mine"  # outside it, as given
    assert "add `--results-dir results/reruns/x` to" in book.exercises_note("cpu", str(ROOT / "results/reruns/x"))
    assert book.shown_path(ROOT / "results") == "results" and book.shown_path("/tmp/r") == "/tmp/r"


def test_a_glued_range_reads_as_one_number_where_its_ends_agree():
    """A chapter narrowed to one architecture said 'in 83% to 83% of studies'."""
    import pandas as pd

    from linscale.book import value_range

    assert value_range(pd.Series([0.91, 1.18, 1.0]), ".2f") == "0.91 to 1.18"
    assert value_range([0.834], ".0%") == "83%" and value_range([0.831, 0.834], ".0%") == "83%"
    assert value_range([0.02, 0.05], ".1%", sep="–") == "2.0%–5.0%"


# ----------------------------------------------------------------------------- prose helpers, stamps, the skip (fast)


def test_glued_counts_read_as_words():
    """Glued counts are prose: "no" for none, words to twelve, digits above; "both" only for two."""
    assert [book.number_word(n) for n in (0, 1, 4, 12, 13)] == ["no", "one", "four", "twelve", "13"]
    assert book.all_of(2) == "both" and book.all_of(4) == "all four" and book.all_of(1) != "both"
    assert book.all_of(1) == "the one" and book.all_of(1, "architecture") == "the one architecture"
    assert book.all_of(2, "envelope") == "both envelopes" and book.all_of(3, "L(C) law") == "all three L(C) laws"


def test_glue_hands_myst_plain_python_numbers(monkeypatch):
    """A NumPy scalar is glued as a Python number: NumPy 2 writes np.float64(0.96) as its text form, which
    would reach the page and break the prose's format specs; other values pass through as they are."""
    import numpy as np

    seen = []
    monkeypatch.setattr("myst_nb.glue", lambda name, value, display=False: seen.append((name, value, display)))
    book.glue("ratio", np.float64(0.96))
    book.glue("n", np.int64(3), display=True)
    book.glue("text", "as is")
    assert seen == [("ratio", 0.96, False), ("n", 3, True), ("text", "as is", False)]
    assert [type(value) for _, value, _ in seen] == [float, int, str]


def test_an_executed_chapters_parameters_cell_carries_the_values_it_ran_with():
    """papermill run on an executed chapter injects only what it is given, so the defaults cell holds this
    run's values: a changed value replaces its default (which the comment names), an unchanged one is left
    as written, and a default written over several lines is not rewritten but followed by the run's value."""
    cell = nbformat.v4.new_code_cell('# Parameters\npreset = "cpu"  # which study\nloss = "train_loss"\n'
                                     'archs = [\n    "llama",\n]', metadata={"tags": ["parameters"]})
    nb = nbformat.v4.new_notebook(cells=[cell])
    book.carry_parameters_into_defaults(nb, {"preset": "smoke", "loss": "train_loss"})
    assert nb.cells[0].source.splitlines() == [book.CARRIED_LABEL, 'preset = "smoke"  # which study (default: "cpu")',
                                               'loss = "train_loss"', "archs = [", '    "llama",', "]"]
    cell.source = '# Parameters\narchs = [\n    "llama",\n]'
    book.carry_parameters_into_defaults(nb, {"archs": ["tnl"]})
    namespace: dict = {}
    exec(nb.cells[0].source, {}, namespace)
    assert namespace == {"archs": ["tnl"]} and nb.cells[0].source.startswith('# Parameters\narchs = [\n    "llama",')


def test_papermills_injected_cell_is_labelled_once():
    """The injected cell's bare '# Parameters' head gives way to the label that says what the cell is."""
    injected = nbformat.v4.new_code_cell('# Parameters\npreset = "smoke"\n', metadata={"tags": ["injected-parameters"]})
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("# Parameters\nx = 1"), injected])
    book.label_injected_parameters(nb)
    assert [c.source for c in nb.cells] == ["# Parameters\nx = 1", f'{book.INJECTED_LABEL}\npreset = "smoke"']


def test_a_note_without_a_later_form_stands_for_every_left_out_passage():
    """An untrained ablation's note (there is no short form) stands in place of each run of its passages."""
    def cell(text, tag=None):
        return nbformat.v4.new_markdown_cell(text, metadata={"tags": [tag]} if tag else {})

    tag, note = book.READS_ABLATION["aspect"], book.ABLATION_LEFT_OUT_NOTE.format(what="aspect-ratio")
    nb = nbformat.v4.new_notebook(cells=[cell("a", tag), cell("kept"), cell("b", tag), cell("c", tag)])
    book.leave_out_tagged(nb, tag, note)
    assert [c.source for c in nb.cells] == [note, "kept", note]


def test_an_ablation_without_runs_counts_as_untrained(tmp_path):
    """A chapter's aspect and context passages are left out where the study has no such runs: no table, or
    a table without rows (a study whose preset left that ablation out)."""
    folder = tmp_path / "smoke" / "ablations"
    folder.mkdir(parents=True)
    pd.DataFrame({"run_id": pd.Series([], dtype=str)}).to_parquet(folder / "aspect.parquet")
    parameters = {"preset": "smoke", "results_dir": str(tmp_path)}
    assert book.untrained_ablations(parameters) == ["aspect", "context"]
    pd.DataFrame({"run_id": ["a1"]}).to_parquet(folder / "aspect.parquet")
    assert book.untrained_ablations(parameters) == ["context"]
    assert book.untrained_ablations({}) == []


def test_a_chapters_stamp_changes_with_its_parameters_benchmarks_and_a_rewritten_table(tmp_path):
    """The up-to-date check must re-execute a chapter run with other parameters, after a new benchmark report
    (the efficiency chapter reads bench_dir), or after a table is rewritten with the same size (a re-run's
    parquet of the same shape: its modification time differs)."""
    import os

    table = tmp_path / "bench" / "report.json"
    table.parent.mkdir()
    assert book._input_tables({"bench_dir": "bench"}, tmp_path) == []
    table.write_text("a")
    assert book._input_tables({"bench_dir": "bench"}, tmp_path) == [table]
    stamp = book._inputs_stamp("efficiency", {"repeats": 2}, "source", [table])
    assert book._inputs_stamp("efficiency", {"repeats": 3}, "source", [table]) != stamp
    table.write_text("b")
    os.utime(table, ns=(table.stat().st_atime_ns, table.stat().st_mtime_ns + 10**9))
    assert book._inputs_stamp("efficiency", {"repeats": 2}, "source", [table]) != stamp


def test_the_package_digest_covers_task_files_but_not_caches(tmp_path, monkeypatch):
    """A task's YAML or a JSON table in the package decides a chapter's numbers as much as its code does, so
    changing one re-executes the chapters; compiled caches do not count."""
    (tmp_path / "tasks" / "__pycache__").mkdir(parents=True)
    (tmp_path / "book.py").write_text("code")
    (tmp_path / "tasks" / "qa.yaml").write_text("metric: acc")
    (tmp_path / "tasks" / "__pycache__" / "qa.py").write_text("cache")
    monkeypatch.setattr(book, "__file__", str(tmp_path / "book.py"))
    digest = book._package_digest()
    (tmp_path / "tasks" / "__pycache__" / "qa.py").write_text("another cache")
    assert book._package_digest() == digest
    (tmp_path / "tasks" / "qa.yaml").write_text("metric: acc_norm")
    assert book._package_digest() != digest


def test_a_chapter_is_skipped_only_when_unchanged_and_replaced_only_by_a_finished_run(tmp_path, monkeypatch):
    """execute_chapter without a kernel (papermill's run replaced): an unchanged chapter is not re-run, new
    parameters or force re-run it; a failing run leaves the previous output as it was and keeps its notebook
    as <chapter>.failed.ipynb, which the next finished run removes."""
    import papermill

    runs = []

    def run_notebook(source, out, parameters, cwd, timeout, log_output, fail=False):
        runs.append(parameters)
        nb = nbformat.read(source, as_version=4)
        nb.metadata["run"] = len(runs)
        nbformat.write(nb, out)
        if fail:
            raise papermill.PapermillExecutionError(3, 3, "x", "ValueError", "bad value", [])

    monkeypatch.setattr(book, "run_notebook", run_notebook)
    said = []
    out = book.execute_chapter("architectures", {}, out_dir=tmp_path, progress=said.append)
    assert book.execute_chapter("architectures", {}, out_dir=tmp_path, progress=said.append) == out
    assert said == ["[book] executing architectures", "[book] architectures: up to date"] and len(runs) == 1
    book.execute_chapter("architectures", {"seed": 1}, out_dir=tmp_path)
    book.execute_chapter("architectures", {"seed": 1}, out_dir=tmp_path, force=True)
    assert runs == [{}, {"seed": 1}, {"seed": 1}] and nbformat.read(out, as_version=4).metadata["run"] == 3
    monkeypatch.setattr(book, "run_notebook", lambda *args, **kw: run_notebook(*args, **kw, fail=True))
    with pytest.raises(book.ChapterFailed, match=r"chapter architectures: a cell raised ValueError: bad value"):
        book.execute_chapter("architectures", {"seed": 2}, out_dir=tmp_path)
    assert nbformat.read(out, as_version=4).metadata["run"] == 3  # the previous output, untouched
    assert nbformat.read(tmp_path / "architectures.failed.ipynb", as_version=4).metadata["run"] == 4
    monkeypatch.setattr(book, "run_notebook", run_notebook)
    book.execute_chapter("architectures", {"seed": 2}, out_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["architectures.ipynb"]


def test_a_numpy_repr_in_a_page_is_raw_output():
    """np.float64(0.96) in a page's prose is a glued value that was not turned into a number (book.glue);
    in a code listing it is code."""
    from bs4 import BeautifulSoup

    page = BeautifulSoup("<p>a ratio of np.float64(0.96)</p><pre>np.float64(1.0)</pre>", "html.parser")
    found = book.raw_output(page)
    assert len(found) == 1 and "np.float64(0.96)" in found[0]
    assert book.raw_output(BeautifulSoup("<p>a ratio of 0.96</p><code>np.int64(3)</code>", "html.parser")) == []


def left_out_passages(prose: str) -> int:
    """How many passages a page of another study left out: the first note in full, the later ones short
    (a dozen full notes, one under each heading of the law-probes appendix, were noise to read past)."""
    again = prose.find(book.LEFT_OUT_AGAIN_NOTE)
    assert prose.count(book.LEFT_OUT_NOTE) == 1 and (again == -1 or prose.index(book.LEFT_OUT_NOTE) < again)
    return 1 + prose.count(book.LEFT_OUT_AGAIN_NOTE)


def test_the_smoke_studys_law_pages_say_what_its_grid_cannot_show(built_book):
    """`linscale book --chapter scaling_laws -p preset smoke` is an exercise: on the CI study's two sizes
    no larger model overtakes a smaller one, no law is identified (no reference law) and no law can be
    refitted without the top decade. The pages must say so, not show the cpu study's readings: loss
    exponents set beside the paper's, 'the order at the end could flip', 'it did so after an unmeasured
    number of tokens', '0 of 0 refitted laws', intervals 'nan wide', or the cpu probes' long fallbacks."""
    def text(values):  # the glued strings themselves (text/plain holds their repr; markdown glues are skipped)
        return {name: ast.literal_eval(value) for name, value in values.items()
                if value and value[:1] in "'\""}
    laws = text(glued(built_book["outputs"]["scaling_laws"]))
    assert laws["loss_exp_text"].startswith("Our loss law is not identified for any architecture")
    assert laws["crossover_noise"].startswith("In no pair does the larger model end ahead")
    assert laws["holdout_count"].startswith("No law could be refitted without the top decade")
    assert "this study has no design check" in laws["holdout_design_text"]
    assert laws["holdout_noise_text"].startswith("No size is held out here")
    assert laws["a_width_real"] == "not identified for any architecture, so it has no width" \
        and laws["budget_rule"] == "The smoke preset sets its budgets in its own YAML, not by crossings."
    assert not [name for name, value in laws.items() if "the probe simulated the cpu grid" in str(value)]
    # the paragraphs that quote probes of the cpu grid are left out, a note in their place
    cells = nbformat.read(built_book["outputs"]["scaling_laws"], as_version=4).cells
    prose = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    assert left_out_passages(prose) == 5 and "probe_holdout_reach.py" not in prose
    training = text(glued(built_book["outputs"]["training"]))
    assert training["top_crossing"].startswith("It did not") and "0 of 4 pairs" in training["curves_cross"]
    assert training["diverged_text"] == "no run diverged"  # not "0 runs diverged and are left out"
    assert training["budget_reading"] == "do not grow with size; the smoke preset sets them in its YAML"
    # the cpu preset's budget rule is not told as this study's, and no design check asks anything of its top size
    assert glued_markdown(built_book["outputs"]["training"])["budget_rule"] == (
        "The smoke preset's budgets are s1 0.15M, s2 0.15M tokens, set by its own YAML, not by crossings.")
    assert training["top_rule"].startswith("Does it at least")
    # s2 costs more a token than s1 on the same budget: the compute both cover ends before its own tokens do
    assert "which ends where the s1 run does, before its own 0.15M tokens" in training["top_crossing"]
    efficiency = text(glued(built_book["outputs"]["efficiency"]))  # its benchmark report timed the cpu grid
    assert "at the cpu grid's largest size (s6)" in efficiency["mfu_summary"]
    language = text(glued(built_book["outputs"]["synthetic_language"]))
    assert language["ex_smoke_against"].startswith("this page's own figure")
    assert language["ex_smoke_language"] == "the language this page shows, larger than the published cpu study's"
    assert laws["n_grid_sizes"] == "two" and laws["a_bend_reading"].startswith("With two sizes this grid cannot show a bend")
    # a size off the law on opposite sides in two architectures (smoke's s2: LLaMA below, the others above) is
    # no shared pattern, on the chapter's page and in the introduction's sentence alike
    split = "s2 sits above it in TNL, HGRN2 and cosFormer2 and below it in LLaMA"  # each architecture named
    assert laws["a_pattern"].endswith(split + ".") and laws["a_miss_pattern"].endswith("while " + split)
    assert training["grid_sizes_text"].startswith("two small sizes, s1 to s2")
    assert laws["excess_exponents"].startswith("not identified for any architecture (no design check: the preset")
    assert laws["E_free_reading"].startswith("approach 3 is not identified for any architecture here (no design check")
    # no approach 2 to have intervals, no reference law to measure the FLOP accountings with, no simulated
    # noise to set the residuals against, no interval for the bootstrap to explain
    assert laws["a2_intervals"] == \
        "Here no approach 2 fit is reported (the figure above says why), so it has no intervals."
    assert laws["accounting_shift"].startswith("This study's design check has no reference law")
    assert laws["a_noise_against"].startswith("and the design check simulates no noise")
    assert "above the law (the design check simulates no noise, so any miss counts) in every one" in laws["a_pattern"]
    # a preset without a reference law has no design check: the page says so where it explains the check, and the
    # paragraphs that read its bounds and its rule on E are not written around a check that never ran; the reason
    # a law is not identified is in words, not the command line's error
    assert laws["design_absent"].startswith("The smoke preset records no reference law") and laws["design_bullet_note"]
    assert "(no design check: the preset records no reference law in design.law)" in laws["loss_exp_text"]
    markdown = glued_markdown(built_book["outputs"]["scaling_laws"])
    assert markdown["E_design_paragraph"] == "" and markdown["holdout_bound_meaning"] == ""
    assert markdown["holdout_paragraph"] == (f"**{laws['holdout_count']}** **With no refit there is nothing to read "
                                             "for or against the law's form**.")
    assert "fewer than the 6 a law of 5 parameters needs" in laws["holdout_count"]
    assert laws["real_runs_lead"] == "The real runs do not follow one law"
    assert laws["design_intro"].startswith("The smoke preset records no reference law, so no design check said")
    assert laws["isoflop_budgets"].startswith("none here: approach 2 could not be fitted")  # the figure's caption
    assert laws["status_no_check"].startswith("Here no design check ran")
    assert "it joins neighbours only:" in glued_markdown(built_book["outputs"]["training"])["envelope_comparison"]
    assert laws["bootstrap_reading"] == ""
    probes = "\n".join(c.source for c in nbformat.read(built_book["outputs"]["law_probes"], as_version=4).cells
                       if c.cell_type == "markdown")
    assert "This appendix tells how the study looked" not in probes and left_out_passages(probes) >= 10


def test_the_downstream_page_reads_each_study_from_its_own_numbers(built_book, tmp_path):
    """`linscale book --chapter downstream -p preset smoke` is an exercise. On the CI study no knowledge band
    is at ceiling, no cloze step between sizes exceeds its items' noise, no size's seeds disagree on the
    needle, and the binder probe is the published cpu study's (it ran on its models): the page must say so,
    not 'at ceiling ... at no size', 'cloze then jumps', 'luck of the seed at the seeds ablation's size' or
    a paragraph of dashes. The cpu study keeps its readings, each decided by the same rules; a re-run's
    folder, whose HGRN2 s6 runs all missed the needle, is not told that one of them found it."""
    def text(values):
        return {name: ast.literal_eval(value) for name, value in values.items() if value and value[:1] in "'\""}
    smoke = text(glued(built_book["outputs"]["downstream"]))
    assert smoke["knowledge_ceiling"].startswith("No band reaches the ceiling")
    assert smoke["cloze_jump_reading"].startswith("No architecture's cloze rises")
    assert smoke["cloze_small"].endswith("at every size") and smoke["niah_chance"] == "0.016"
    assert smoke["niah_seed_reading"].startswith("At no size here") and "lotteries" not in smoke["findings_noise_reading"]
    assert smoke["binder_source"].startswith("This section reads a probe of the published cpu study's models")
    assert smoke["binder_overall_text"] == "does not explain" and smoke["binder_n_values"] == "32"
    assert smoke["above_copy_sentence"].endswith("the models do not even copy a bound value: the task measures nothing yet")
    # a fall or a flat line between sizes is no step; one size has one needle leader; a budget under a million
    # tokens is not rounded up a third; the registered test is the cpu preset's, said before its design
    assert "LLaMA none (0.025 at s1 → 0.025 at s2)" in smoke["cloze_jumps"]
    assert smoke["cloze_needle"] == "on the needle (easy) LLaMA scores highest at that size"
    assert smoke["largest_tokens"] == "Every size trained on the same budget here, 0.15M tokens."
    assert smoke["registered_whose"].startswith("This test trained runs of its own from the cpu preset")
    assert smoke["size_seeds_retrains"] == ("the grid's largest size, s2 (the base size, s1, is the smallest), with one "
                                            "more (two in all)")
    # bits per byte ordered beyond the noise are not "close together" (7.8% apart, LLaMA > HGRN2 ≈ cosFormer2 > TNL)
    assert smoke["bpb_span"].startswith(" shown, the four apart") and " > " in smoke["rank_bpb"]
    cells = nbformat.read(built_book["outputs"]["downstream"], as_version=4).cells
    prose = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    assert "### Why LLaMA finds the needle worse" not in prose and "(skill-timing)=" in prose  # its label kept
    cpu = text(glued(book.execute_chapter("downstream", {}, out_dir=tmp_path)))
    assert cpu["knowledge_spread"].startswith("In the default (cpu) study the bands separate the architectures")
    assert cpu["knowledge_ceiling"].startswith("At the larger sizes they sit at ceiling")
    assert cpu["cloze_jump_reading"] == "Each architecture's cloze then jumps between two neighbouring sizes"
    assert cpu["niah_seed_reading"].startswith("Retrieval is luck of the seed where it emerges: at s3 some seeds")
    assert cpu["findings_noise_reading"].endswith("below the ceiling every model reaches at the largest")
    assert cpu["binder_source"] == "" and cpu["binder_overall_text"] == "does not explain"
    assert cpu["registered_whose"] == "" and " none (" not in cpu["cloze_jumps"]
    # neighbours within the seed noise, the ends of the chain beyond it (LLaMA and TNL): not "together"
    assert cpu["bpb_span"].startswith(" shown, the four close, though not all within the seed noise of each other")
    assert cpu["size_seeds_retrains"] == ("the grid's smallest and largest sizes, where the base size is neither, "
                                          "with one more (two in all)")
    assert "one of HGRN2's s6 runs learned to look values up: its NIAH easy is 0.9" in cpu["niah_seed_reading"]
    # a committed re-run's folder: its own HGRN2 s6 runs, none of which found the needle; the published probe
    rerun = text(glued(book.execute_chapter("downstream", {"results_dir": "results/reruns/2026-12-05-intel-xeon-m207"},
                                            out_dir=tmp_path / "rerun")))
    assert "HGRN2" not in rerun["niah_seed_reading"] and "the re-run shown here has no such probe" in rerun["binder_source"]
    # it is not the default study, and its checkpoints that score the modes alike only by their totals (TNL
    # s5: 0.983 on both, a paired SE above 0) are not read as models that cannot find the needle
    assert cpu["in_this_study"] == "In the default (cpu) study" and cpu["the_default_study"] == "the default study"
    assert rerun["in_this_study"] == "In this study" and rerun["the_default_study"].startswith("the published default")
    assert "above 0.98" not in rerun["modes_equal"] and rerun["modes_equal"].endswith("whichever word leads it.")


@pytest.mark.slow
def test_a_study_without_a_role_table_says_so_once_and_does_not_explain_the_absent_table(tmp_path):
    """The seed-6 re-run was committed before the study wrote roles.parquet: its downstream page showed two
    identical "No role table" figures in a row and then explained the absent table's columns."""
    assert book.has_role_table({}) and book.has_role_table({"preset": "smoke", "results_dir": "results"})
    seed6 = {"results_dir": "results/reruns/2026-12-03-seed6"}
    assert not book.has_role_table(seed6)
    source = book.read_chapter_source("downstream")
    tagged = [c.source for c in source.cells if book.READS_ROLE_TABLE in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].startswith("The table splits each architecture's largest model's")
    cells = nbformat.read(book.execute_chapter("downstream", seed6, out_dir=tmp_path), as_version=4).cells
    assert not [c for c in cells if c.cell_type == "markdown" and c.source.startswith("The table splits")]
    table = next(c for c in cells if c.cell_type == "code" and "role_ends = findings.role_finals(" in c.source)
    shown = [o for o in table.outputs if o.get("output_type") in ("display_data", "execute_result")
             and "scrapbook" not in o.get("metadata", {})]
    assert shown == []  # the figure after it says "No role table" once
    figure = next(c for c in cells if c.cell_type == "code" and "plot_role_excess(" in c.source)
    assert sum("image/png" in o.get("data", {}) for o in figure.outputs) == 1


def test_the_findings_page_reads_the_smoke_study_from_its_own_numbers(built_book):
    """The findings chapter on the CI study (an exercise): its noise section names the sizes the smoke
    ablations retrained (s1 by the seeds ablation, s2 by size_seeds; the cpu text says s3, s1 and s6), the
    trend's direction follows its sign, knowledge is not said to be at ceiling at the largest size where it
    scores 0.30, TNL's head-count caveat fits a grid without a four-head size, and the published study's
    history (the registered s5 runs, its code-path pins and re-runs, LLaMA's s6 groups) is left out."""
    def text(values):
        return {name: ast.literal_eval(value) for name, value in values.items() if value and value[:1] in "'\""}
    smoke = text(glued(built_book["outputs"]["findings"]))
    assert (smoke["seeds_size"], smoke["size_seeds_sizes"], smoke["noise_sizes"]) == (
        "s1", "size s2, one more seed", "s1 and s2")
    assert smoke["trend_direction"] == ("hardly changes" if float(smoke["trend_b"]) == 0 else
                                        "rises" if float(smoke["trend_b"]) > 0 else "falls")
    assert smoke["trend_sentence"].startswith(f"The seed noise of the final fitted loss {smoke['trend_direction']} "
                                              f"with size as N to the power {smoke['trend_b']} ")
    # no smoke model retrieves (NIAH at chance): the retrieval verdict is said to compare scores at chance
    assert smoke["retrieval_at_chance"].startswith(". But every architecture's mean NIAH (easy) score there is "
                                                   "within 0.05 of chance")
    assert "would do" in smoke["knowledge_largest"] and "nearly every question" not in smoke["knowledge_largest"]
    assert smoke["bpb_lead"] == "For comparison,"  # no "no such ceiling" where knowledge has none either
    # the downstream figure's caption said "three per run in the cpu study" of the smoke study's single points
    downstream = text(glued(built_book["outputs"]["downstream"]))
    assert downstream["checkpoints_per_run"] == "the final one only: each run is a single point"
    if smoke["verdict_exponents"] == "not testable":  # the introduction says why, not only where re-runs are
        assert smoke["exponents_intro"].startswith(": LLaMA's loss envelope is not identified on this grid")
    assert smoke["heads_caveat"].startswith("every size of this grid has two heads")
    assert smoke["rerun_bound_text"].startswith("No re-run's tables are committed")
    # the context-retrieval verdict sets 16 against 64 tokens (twice the main 32): the reading up to 32 beside it
    assert smoke["context_retrieval_upto_main"].startswith(
        " Over the contexts up to the main grid's 32 alone (n = 16 → 32), the scores are TNL 0.014 → 0.010, "
        "HGRN2 0.018 → 0.014, cosFormer2 0.008 → 0.012")
    prose = "\n".join(c.source for c in nbformat.read(built_book["outputs"]["findings"], as_version=4).cells
                      if c.cell_type == "markdown")
    assert "At s6 there is a third reason" not in prose and "Every re-run found" not in prose
    assert "The seed-3 re-run (2026-12-02-seed3)" not in prose and "pins what it can" not in prose
    assert left_out_passages(prose) == 8
    # the rules' history and the context ablation's are the published study's; this study's context size, its
    # size_seeds sizes and the methods that did not run on it are its own
    assert "Six decisions came after results" not in prose and "moved to s6 (commit" not in prose
    assert smoke["context_size_words"] == "here s1, the smoke grid's smallest"
    assert smoke["size_seeds_retrains"] == ("the grid's largest size, s2 (the seeds ablation's size, s1, is the "
                                            "smallest), with one more")
    assert smoke["adds_not_run"].startswith("On the smoke study, not all of this ran: the design check")
    assert "approach 2 (it could not be fitted: needs at least 3 model sizes, the table has 2)" in smoke["adds_not_run"]
    assert "the check of the irreducible loss against the entropy (approach 3 with E free" in smoke["adds_not_run"]
    assert smoke["registered_summary"] == "it ran on runs of the cpu preset, so this study has no result of its own"
    # a verdict no re-run can move has no predicted agreement, not an agreement of "none"
    assert smoke["agreement_exponents"].startswith("not defined")
    if smoke["shaky"].startswith("none"):
        assert smoke["shaky"].startswith("none: every verdict that has a predicted agreement has 0.8 or more")
    assert smoke["seed_rerun_like"] == "" and not smoke["shaky"].startswith("none. ")
    # no re-run to tally, no registered test to split the retrieval claim in two
    assert smoke["tally_text"].startswith("No re-run of this study") and smoke["retrieval_halves"] == ""
    # a study with no re-run committed: "Re-runs" says so once, without explaining tables it does not have
    assert "{glue:md}`rerun_list`" in prose or "```{glue:md} rerun_list" in prose
    for explained in ("*Move* is how far", "Each verdict's predicted agreement", "The noise bound of a single-run",
                      "{glue:text}`tally_text`", "{glue:text}`rerun_bound_text`", "Where a size crosses its bound"):
        assert explained not in prose, explained
    assert smoke["prediction_checked"] == " (no re-run of this study is committed to check it against)"
    # the introduction's reasons for two verdicts name the architectures on each side, and the rule that refutes
    if smoke["verdict_lower_loss"] == "not reproduced":
        assert smoke["lower_loss_reason"].endswith("one linear model above LLaMA beyond the noise refutes the claim")
    assert re.match(r"(TNL|HGRN2|cosFormer2|no linear model)", smoke["lower_loss_reason"]), smoke["lower_loss_reason"]
    assert re.match(r"(TNL|HGRN2|cosFormer2|no architecture)", smoke["retrieval_sides"]), smoke["retrieval_sides"]


def test_the_ablations_page_reads_the_smoke_study_from_its_own_numbers(built_book):
    """On the CI study the aspect shapes are not at fixed parameters (depth rounds to whole layers: the best
    shape keeps a layer and has about twice the others' count), no seed learns to retrieve, and the Bayes
    loss's extremes are not the first and last contexts: the page must say so, not 'luck of the draw' or a
    spread between two numbers it did not print."""
    def text(values):
        return {name: ast.literal_eval(value) for name, value in values.items() if value and value[:1] in "'\""}
    smoke = text(glued(built_book["outputs"]["ablations"]))
    assert smoke["aspect_params_sentence"].startswith("The shapes are not at fixed parameters in this study")
    # the paper's loss claim covers contexts up to the main one: the spread without the longer context is given
    assert "also takes in 64 tokens, beyond the main grid's 32" in smoke["context_excess_upto_main"]
    assert smoke["niah_seed_sentence"].startswith("Retrieval does not tell the seeds apart here")
    assert "(the highest)" in smoke["context_bayes"] and "(the lowest)" in smoke["context_bayes"]
    # a best shape that is also the largest is not said to win on its shape; scores all at chance name no best
    # context; exercise 2's new shape and narrowest one are this grid's, not the cpu grid's
    assert "so in this draw that shape, also the largest, beats the other two" in smoke["aspect_best_sentence"]
    assert smoke["context_best_niah"].startswith("none: no training context lifts any linear model")
    assert smoke["context_twice"].startswith("No run is more than 0.05 above chance at the common context")
    assert smoke["ex_new_shape"] == "width 4 and 16 layers (d/l = 0.25, heads 2 wide)"
    assert smoke["ex_narrowest"] == "the narrowest shape, d/l = 6, is already the worst for both architectures"
    assert smoke["context_size_why"] == "here s1, the smoke grid's smallest"
    assert (smoke["aspect_archs_words"], smoke["context_archs_words"]) == (
        "for LLaMA and cosFormer2 (the paper's Table 5 pair)", "for the three linear models")
    assert smoke["context_gap_reading"].startswith("With one draw of these runs")  # no re-run to show gaps moving


def test_passages_that_read_the_published_study_are_left_out_of_another_studys_page():
    """A markdown cell tagged READS_THE_CPU_STUDY quotes numbers only the published cpu study has: on a page
    of another study (another preset, or a re-run's folder of the cpu preset) it gives way to one note per
    run of neighbouring tagged cells; the published study's page keeps it."""
    import nbformat

    def cell(text, tagged=False):
        made = nbformat.v4.new_markdown_cell(text)
        if tagged:
            made.metadata["tags"] = [book.READS_THE_CPU_STUDY]
        return made

    nb = nbformat.v4.new_notebook(cells=[cell("mine"), cell("probe 1", True), cell("probe 2", True),
                                         nbformat.v4.new_code_cell("x = 1"), cell("probe 3", True), cell("mine again")])
    book.leave_out_cpu_readings(nb)
    assert [c.source for c in nb.cells] == ["mine", book.LEFT_OUT_NOTE, "x = 1", book.LEFT_OUT_AGAIN_NOTE,
                                            "mine again"]
    # a passage about re-runs is dropped without a note where the study has none; notes it leaves side by
    # side, or parted only by code that shows nothing but glued values, are one note
    glue_only = nbformat.v4.new_code_cell("glue('a', 1)", outputs=[nbformat.v4.new_output(
        "display_data", data={"text/plain": "1"}, metadata={"scrapbook": {"name": "a"}})], metadata={"tags": ["hide-input"]})
    shown = nbformat.v4.new_code_cell("plot()", outputs=[nbformat.v4.new_output("display_data", data={"image/png": ""})])
    reruns = cell("re-run tables explained")
    reruns.metadata["tags"] = [book.READS_RERUNS]
    nb = nbformat.v4.new_notebook(cells=[cell("mine"), cell("probe 1", True), reruns, glue_only, cell("probe 2", True),
                                         shown, cell("probe 3", True), cell("mine again")])
    book.leave_out_cpu_readings(nb)
    book.leave_out_tagged(nb, book.READS_RERUNS)
    assert [c.source for c in nb.cells] == ["mine", book.LEFT_OUT_NOTE, "glue('a', 1)", "plot()",
                                            book.LEFT_OUT_AGAIN_NOTE, "mine again"]
    assert book.has_reruns({}) and not book.has_reruns({"preset": "smoke"})
    assert not book.has_reruns({"results_dir": "results/reruns/2026-12-05-seed9"})
    assert book.shows_published_study({}) and book.shows_published_study({"preset": "cpu", "results_dir": "results"})
    assert book.shows_published_study({"results_dir": str(book.ROOT / "results")}, Path("/elsewhere"))
    assert not book.shows_published_study({"preset": "smoke"})
    assert not book.shows_published_study({"results_dir": "results/reruns/2026-12-05-seed9"})
    # every chapter's tagged cells are prose without a label: a tagged code cell would drop glues other cells
    # read, a label left out would break the links to it from other pages
    for chapter in book.CHAPTERS:
        tagged = [c for c in book.read_chapter_source(chapter).cells
                  if {book.READS_THE_CPU_STUDY, book.READS_RERUNS, *book.READS_ABLATION.values(),
                      *book.READS_ARCH.values(), book.READS_EXACT_ENTROPY, book.WITHOUT_EXACT_ENTROPY}
                  & set(c.get("metadata", {}).get("tags", []))]
        assert all(c.cell_type == "markdown" for c in tagged), chapter
        assert not [line for c in tagged for line in c.source.splitlines() if re.fullmatch(r"\(.+\)=", line.strip())]


def test_a_passage_about_tnl_is_left_out_of_the_page_of_a_study_without_tnl(tmp_path):
    """The findings page of a study of three architectures without TNL (a helper's grid) gave "a caveat on
    TNL" about its head count and its probes. That passage is tagged, and left out where the study did not
    train TNL (its preset, with its recorded --set overrides); kept where it did."""
    from linscale.results import OVERRIDES_FILE

    tag = book.READS_ARCH["tnl"]
    caveat = [c for c in book.read_chapter_source("findings").cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(caveat) == 1 and "A caveat on TNL" in caveat[0].source and "heads_caveat" in caveat[0].source
    study = tmp_path / "results" / "smoke"
    study.mkdir(parents=True)
    (study / OVERRIDES_FILE).write_text('{"preset": "smoke", "set": ["archs=[hgrn2,llama]"]}')
    assert book.untrained_archs({"preset": "smoke", "results_dir": str(tmp_path / "results")}) == ["tnl"]
    assert book.untrained_archs({"preset": "smoke", "results_dir": "results"}) == []
    assert book.untrained_archs({"preset": "cpu", "results_dir": "results"}) == [] == book.untrained_archs({})
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("kept"), caveat[0]])
    book.leave_out_tagged(nb, tag)
    assert [c.source for c in nb.cells] == ["kept"]


def test_a_passage_on_the_exact_entropy_gives_way_to_its_words_for_real_text_on_a_study_of_text(tmp_path):
    """A study of real text has no exact entropy rate: the training page read "the language's entropy rate (nan)"
    and "The best envelope is still nan nats above", the scaling-laws page "The exact entropy rate is nan
    nats/token" and "The pattern is the same in all no architectures". Each such passage is tagged, and followed
    by one tagged for a study without it, which says so in words; a page keeps one of the two."""
    from linscale.results import OVERRIDES_FILE

    def tags(cell):
        return set(cell.get("metadata", {}).get("tags", []))

    for chapter, passages in (("training", 2), ("scaling_laws", 5)):
        cells = book.read_chapter_source(chapter).cells
        pairs = [(a, b) for a, b in zip(cells, cells[1:]) if book.READS_EXACT_ENTROPY in tags(a)]
        assert len(pairs) == passages, chapter
        assert all(book.WITHOUT_EXACT_ENTROPY in tags(b) and "real text has no known entropy rate" in b.source.lower()
                   for _, b in pairs), chapter
        assert sum(book.WITHOUT_EXACT_ENTROPY in tags(c) for c in cells) == passages, chapter
    study = tmp_path / "results" / "smoke"
    study.mkdir(parents=True)
    (study / OVERRIDES_FILE).write_text('{"preset": "smoke", "set": ["data.source=text", "data.path=corpus"]}')
    assert not book.knows_exact_entropy({"preset": "smoke", "results_dir": str(tmp_path / "results")})
    assert not book.knows_exact_entropy({"preset": "text", "results_dir": "results"})
    assert book.knows_exact_entropy({"preset": "cpu", "results_dir": "results"}) and book.knows_exact_entropy({})
    assert book.knows_exact_entropy({"preset": "nosuch", "results_dir": "results"})  # a folder named after no preset


def test_budgets_set_by_the_studys_overrides_are_said_to_be_so(tmp_path):
    """The text study made with --set train.tokens=4e5 read that "the text preset sets them in its YAML" and that
    its budgets were "set by its own YAML": the overrides that changed the preset's token budgets are named."""
    from linscale.results import OVERRIDES_FILE

    study = tmp_path / "results" / "smoke"
    study.mkdir(parents=True)
    assert book.budget_overrides("smoke", tmp_path / "results") == ()  # no overrides: the YAML's budgets
    for overrides, named in ((["archs=[tnl,llama]"], ()), (["archs=[tnl]", "train.tokens=4e5"], ("train.tokens=4e5",))):
        (study / OVERRIDES_FILE).write_text(json.dumps({"preset": "smoke", "set": overrides}))
        assert book.budget_overrides("smoke", tmp_path / "results") == named, overrides
    assert book.budget_overrides("cpu") == () == book.budget_overrides("nosuch")


@pytest.mark.slow
def test_the_pages_of_a_study_of_real_text_without_seeds_read_no_nan(tmp_path):
    """The text study of `linscale study --preset text --no-ablations` (here the cpu study's tables with
    data.source=text recorded as its override, no exact losses and no ablations) printed "nan" on its training
    page (the exact loss of the val. tokens, the entropy rate, the envelope's gap to it) and its scaling-laws page
    (the entropy rate; "fitted to seeds at ;" and "s3 nan%" for the noise at the sizes held out), and its
    misfit paragraph read "The pattern is the same in all no architectures". The pages say instead, in words,
    that real text has no known entropy rate and that the study measured no seed noise."""
    from linscale.results import OVERRIDES_FILE

    results = tmp_path / "results"
    shutil.copytree(book.ROOT / "results" / "cpu", results / "cpu", ignore=shutil.ignore_patterns("ablations"))
    (results / "cpu" / OVERRIDES_FILE).write_text('{"preset": "cpu", "set": ["data={source: text, path: c}"]}')
    runs = pd.read_parquet(results / "cpu" / "runs.parquet")
    runs[["bayes_loss", "train_bayes_loss"]] = math.nan  # real text: no exact loss of its tokens
    runs.to_parquet(results / "cpu" / "runs.parquet")
    for chapter in ("training", "scaling_laws"):
        out = book.execute_chapter(chapter, {"results_dir": str(results)}, out_dir=tmp_path / "out")
        markdown = [c.source for c in nbformat.read(out, as_version=4).cells if c.cell_type == "markdown"]
        values = {**glued(out), **glued_markdown(out)}
        glue = r"\{glue:(?:text|md)\}`(\w+)|```\{glue:md\} (\w+)"  # a glued value the page shows, inline or a paragraph
        shown = {key for text in markdown for keys in re.findall(glue, text) for key in keys if key}
        wrong = r"\bnan\b|all no |seeds at ;"
        assert not {key: values.get(key) for key in shown if re.search(wrong, str(values.get(key)))}
        instead = [c for c in book.read_chapter_source(chapter).cells
                   if book.WITHOUT_EXACT_ENTROPY in c.get("metadata", {}).get("tags", [])]
        said = sum("real text has no known entropy rate" in text.lower() for text in markdown)
        assert said == len(instead) > 0, chapter
        assert not [text for text in markdown if "entropy rate of {glue" in text or "entropy rate is {glue" in text
                    or "drawn from a known generating process" in text or "and not to the raw loss" in text]
    assert ast.literal_eval(values["holdout_noise_text"]) == (
        "The seeds' noise of a final loss is not measured at the sizes held out (no seeds ablation)")


def test_the_exercises_on_another_studys_page_say_how_to_run_them_on_it(built_book):
    """The exercises were written for the published study: on the smoke study's page their commands
    (`linscale book --chapter downstream -y ...`) would re-run the cpu study and their *Expect* quote its
    figures. Under the heading of every chapter that interprets a study, a note says so and gives the
    options that point the commands at the study the page shows."""
    note = book.exercises_note("smoke", "results")
    assert "add `--preset smoke` to its `linscale book`" in note
    assert "add `--results-dir results/reruns/x` to" in book.exercises_note("cpu", "results/reruns/x")
    assert "`--preset mine --results-dir /tmp/r`" in book.exercises_note("mine", "/tmp/r")
    # the cpu preset's own folder name, shown from another working folder, still names the folder
    assert "add `--results-dir results` to" in book.exercises_note("cpu", "results")
    for chapter in book.INTERPRETS_THE_CPU_STUDY:
        prose = "\n".join(c.source for c in nbformat.read(built_book["outputs"][chapter], as_version=4).cells
                          if c.cell_type == "markdown")
        assert prose.count(note) == 1 and prose.index(book.EXERCISES_HEADING) < prose.index(note), chapter
    # a chapter without exercises is left as it is
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("## Results\n\ntext")])
    book.note_exercises_study(nb, "smoke", "results")
    assert nb.cells[0].source == "## Results\n\ntext"


def test_a_chapter_run_on_another_study_says_which_of_its_parts_are_that_studys():
    """The chapters that interpret results were written on the cpu study; run on another preset (an
    exercise runs them on smoke), their parameter table says that the numbers are this run's and the
    interpreting sentences the cpu study's. Chapters without such prose, and the cpu study, get no note."""
    note = "Reading this page on the smoke study"
    assert note in book.ChapterParameters("downstream", {"preset": "smoke"})._repr_html_()
    assert note not in book.ChapterParameters("downstream", {"preset": "cpu"})._repr_html_()
    assert note not in book.ChapterParameters("accounting", {"preset": "smoke"})._repr_html_()
    assert set(book.INTERPRETS_THE_CPU_STUDY) < set(book.CHAPTERS)


def test_the_build_is_tagged_with_the_study_each_chapter_shows(tmp_path):
    """linscale.sphinx_study tags the build `published_<chapter>` for a chapter that shows the published study, as
    `linscale book` recorded it; a chapter papermill re-ran with other parameters (the record it carries is its
    source's) or one with no record is judged from papermill's own parameters."""
    from linscale.sphinx_study import study_tags

    chapters = tmp_path / "book" / "chapters"
    chapters.mkdir(parents=True)

    def executed(chapter, record=None, papermill=None):
        nb = nbformat.v4.new_notebook()
        if record is not None:
            nb.metadata["linscale"] = record
        nb.metadata["papermill"] = {"parameters": papermill if papermill is not None else (record or {}).get("parameters", {})}
        nbformat.write(nb, chapters / f"{chapter}.ipynb")

    executed("scaling_laws", {"parameters": {}, "shows_published_study": True})
    executed("findings", {"parameters": {"preset": "smoke"}, "shows_published_study": False})
    executed("training", {"parameters": {}, "shows_published_study": True}, papermill={"preset": "smoke"})
    executed("downstream", papermill={"results_dir": str(book.ROOT / "results")})
    executed("ablations", papermill={"preset": "smoke"})
    assert study_tags(tmp_path / "book") == {"published_scaling_laws", "published_downstream"}


def test_a_chapter_papermill_ran_by_hand_is_judged_from_the_folder_above_the_books_sources(tmp_path):
    """papermill's relative results_dir is read from the folder above the book's sources (the repository, for
    its own book/), not from book/ itself: `results` there holds the published study. Here that folder's
    results/ is a link to the repository's; the smoke chapter shows another study."""
    import types

    from linscale.sphinx_study import _add_study_tags, study_tags

    (tmp_path / "results").symlink_to(book.ROOT / "results")
    chapters = tmp_path / "book" / "chapters"
    chapters.mkdir(parents=True)
    for chapter, preset in (("downstream", "cpu"), ("training", "smoke")):
        nb = nbformat.v4.new_notebook()
        nb.metadata["papermill"] = {"parameters": {"preset": preset, "results_dir": "results"}}
        nbformat.write(nb, chapters / f"{chapter}.ipynb")
    assert study_tags(tmp_path / "book") == {"published_downstream"}
    tags = []  # and the extension adds them to the build when its configuration is read
    _add_study_tags(types.SimpleNamespace(srcdir=str(tmp_path / "book"), tags=types.SimpleNamespace(add=tags.append)),
                    None)
    assert tags == ["published_downstream"]


def test_the_sphinx_extension_registers_its_tags_and_curls_glued_quotes_after_the_glue_is_pasted():
    """setup() connects the study tags to the configuration and adds the quotes transform; that transform runs
    after myst-nb pastes glued text in (before it there is nothing to curl), and only when the build curls
    the prose's quotes (smartquotes = False keeps them straight everywhere)."""
    import types

    from docutils import nodes
    from myst_nb.ext.glue.crossref import ReplacePendingGlueReferences

    from linscale import sphinx_study

    calls = []
    app = types.SimpleNamespace(connect=lambda event, handler: calls.append((event, handler)),
                                add_transform=lambda transform: calls.append(("transform", transform)),
                                add_post_transform=lambda transform: calls.append(("post-transform", transform)))
    assert sphinx_study.setup(app) == {"parallel_read_safe": True, "parallel_write_safe": True}
    assert calls == [("config-inited", sphinx_study._add_study_tags), ("transform", sphinx_study.GluedKeepsItsDashes),
                     ("post-transform", sphinx_study.GluedSmartQuotes),
                     ("missing-reference", sphinx_study.link_to_left_out_chapter)]
    assert sphinx_study.GluedSmartQuotes.default_priority > ReplacePendingGlueReferences.default_priority
    for smartquotes, text in ((True, "the paper\u2019s"), (False, "the paper's")):
        page = nodes.paragraph("", "", nodes.inline("", "the paper's", classes=["pasted-text"]))
        transform = types.SimpleNamespace(config=types.SimpleNamespace(smartquotes=smartquotes), document=page)
        sphinx_study.GluedSmartQuotes.run(transform)
        assert page.astext() == text, smartquotes


@pytest.mark.slow
def test_the_introduction_keeps_the_published_studys_caveat_to_the_book_that_shows_it(built_book):
    """The introduction is not executed, so its passages written for the published study are Sphinx `only`
    blocks: a book of the smoke study shows the other version of the laws' caveat (no simulation of a grid it
    does not have, no probes, no hold-out share of '–') and no registered test it did not run."""
    import re

    page = re.sub(r"<[^>]+>", "", (built_book["html"] / "intro.html").read_text())
    assert "This book’s scaling-laws chapter shows another study" in page and "the smoke study" in page
    assert "The fitted laws need one caveat" not in page and "s6 alone has four heads" not in page
    assert "Separately from these claims" not in page
    nb = nbformat.read(built_book["outputs"]["scaling_laws"], as_version=4)
    assert nb.metadata["linscale"]["shows_published_study"] is False


def test_refits_of_the_top_decade_with_no_design_bound_are_not_read_as_a_true_laws(tmp_path):
    """A study whose laws were refitted without the top decade but that has no design bounds (a preset of one's
    own with no reference law; here the published tables without design_holdout.csv) cannot tell a miss from
    what its grid does to a true law: the page said "No refit misses by more than a true law would" of refits
    that missed by up to 29%, after "would have missed by at most an amount no design check measured"."""
    shutil.copytree(book.ROOT / "results" / "cpu", tmp_path / "cpu")
    (tmp_path / "cpu" / "fits" / "design_holdout.csv").unlink()
    # and fits refitted with 1000 resamples (scaling_laws' exercise 1), which the overview's count must follow
    settings = tmp_path / "cpu" / "fits" / "settings.json"
    settings.write_text(json.dumps({**json.loads(settings.read_text()), "bootstrap": 1000}))
    out = book.execute_chapter("scaling_laws", {"results_dir": str(tmp_path)}, out_dir=tmp_path / "out")
    assert ast.literal_eval(glued(out)["bootstrap_count"]) == "1000 bootstrap resamples"
    reading = ast.literal_eval(glued(out)["holdout_reading"])
    assert reading.startswith("With no design bound, a miss cannot be told from what this grid does to a true law")
    paragraph = glued_markdown(out)["holdout_paragraph"]
    assert "Had the models followed the law" not in paragraph and reading in paragraph


def test_the_probes_page_of_a_rerun_says_the_probes_are_the_published_studys(tmp_path):
    """On a re-run's folder (preset cpu) the probes page said "the cpu preset has none": the probes
    measured the published grid, and the re-run's folder has none beside it."""
    values = glued(book.execute_chapter("law_probes", {"results_dir": "results/reruns/2026-12-01-seed1"},
                                        out_dir=tmp_path))
    assert ast.literal_eval(values["probes_brief"]) == \
        "none was measured for the cpu study in results/reruns/2026-12-01-seed1/cpu"


def test_the_downstream_page_of_llama_alone_compares_with_no_linear_model(tmp_path):
    """With `archs: [llama]` the page said "only softmax attention reads it" and, of LLaMA beating the copy
    baseline, "So at this scale the task barely measures matching a variable to its value beyond copying":
    conclusions about architectures it does not show (the review of chapters re-executed with new values)."""
    out = book.execute_chapter("downstream", {"archs": ["llama"]}, out_dir=tmp_path)
    values = {name: ast.literal_eval(v) for name, v in glued(out).items() if v and v[:1] in "'\""}
    if values["above_copy_sentence"].startswith("LLaMA ("):  # it beats the copy baseline: no "barely measures"
        assert "barely measures" not in values["above_copy_sentence"]
    assert values["the_default_study"].endswith(", with all four architectures drawn,")
    roles = glued_markdown(out)["role_findings"]
    assert "only softmax attention" not in roles and "(this page shows no linear model)" in roles


# ----------------------------------------------------------------------------- mutation audit (fast)


def test_the_smoke_parameters_go_only_to_chapters_that_declare_them_and_never_name_the_preset():
    """The smoke study's live measurements reach the chapters that take them; ``preset`` stays the caller's."""
    assert book.preset_parameters("cpu") == {} and book.preset_parameters(None) == {}
    assert book.preset_parameters("smoke", ["architectures"]) == {"contexts": [32, 128, 512]}
    efficiency = book.preset_parameters("smoke", ["efficiency"])
    assert efficiency == {"seq_lens": [64, 128, 256], "tokens_per_batch": 512, "repeats": 2}
    assert "preset" not in book.preset_parameters("smoke")


def test_a_tuple_parameter_is_handed_on_as_a_list():
    """papermill writes a tuple into the injected cell as a string ("('tnl', 'llama')"), so a chapter given
    archs=("tnl", "llama") from Python would have read one string; validation hands on a list."""
    defaults = book.default_parameters("architectures")
    checked = book.validate_parameters("architectures", **{**defaults, "archs": ("tnl", "llama"), "contexts": (64,)})
    assert checked["archs"] == ["tnl", "llama"] and type(checked["archs"]) is list and type(checked["contexts"]) is list


def test_list_and_name_parameters_refuse_what_would_fail_inside_the_chapter():
    defaults = book.default_parameters("architectures")
    with pytest.raises(ConfigError, match=r"parameter contexts: must be a non-empty list of distinct positive int"):
        book.validate_parameters("architectures", **{**defaults, "contexts": []})
    # a length given twice failed deep in the chapter ("a cell raised ValueError: Index contains duplicate entries")
    with pytest.raises(ConfigError, match=r"parameter context_lengths: must be .* distinct .*, got \[2048, 2048\]"):
        book.validate_parameters("accounting", **{**book.default_parameters("accounting"),
                                                  "context_lengths": [2048, 2048]})
    with pytest.raises(ConfigError, match=r"parameter seed: must be >= 0, got -1"):
        book.validate_parameters("architectures", **{**defaults, "seed": -1})
    assert book.validate_parameters("architectures", **{**defaults, "seed": 0})["seed"] == 0
    training = book.default_parameters("training")
    with pytest.raises(ConfigError, match=r"parameter preset: must be a preset name \(a folder under results_dir\)"):
        book.validate_parameters("training", **{**training, "preset": "smoke/runs"})


def test_a_preset_file_of_ones_own_may_end_in_yml():
    assert book._known_preset("mine.yml") is None and book._known_preset("mine.yaml") is None
    assert "must be a preset" in book._known_preset("nosuch")


def test_a_chapter_missing_a_parameter_is_refused_in_one_line():
    defaults = book.default_parameters("architectures")
    del defaults["seed"]
    with pytest.raises(ConfigError, match=r"^chapter architectures: parameter\(s\) seed not set$"):
        book.validate_parameters("architectures", **defaults)


def test_the_chapters_own_check_lets_private_names_through_and_runs_away_from_an_unreadable_source(monkeypatch):
    """A chapter's kernel may hold private names (``_``, ``_tmp``); a source it cannot read (an OSError, not
    only a missing file) leaves the page's table without defaults rather than a traceback."""
    namespace = {**book.default_parameters("architectures"), "_": 3, "_tmp": "x"}
    assert book.check_parameters("architectures", namespace).changed() == []

    def unreadable(chapter, notebooks=book.NOTEBOOKS):
        raise PermissionError(13, "Permission denied", str(notebooks))

    monkeypatch.setattr(book, "default_parameters", unreadable)
    params = book.check_parameters("architectures", namespace)
    assert params.defaults == {} and "the chapter&#x27;s defaults are not known here" in params._repr_html_()


def test_a_parameter_without_a_default_is_shown_as_set_for_this_run():
    """A value whose name the chapter's defaults lack (a source older than the run) is the run's own: the
    table said "default" beside it, and its summary named it as set."""
    params = book.ChapterParameters("training", {"loss": "val_loss", "archs": ["tnl"]}, {"loss": "val_loss"})
    html = params._repr_html_()
    assert "1 set for this run: archs" in html
    row = html[html.index("<code>archs</code>"):].split("</tr>")[0]
    assert "set for this run" in row and "<td>default</td>" not in row


def test_a_glued_range_ignores_missing_values():
    """An architecture without a value (NaN) is left out of the range, not read as "nan to nan"."""
    assert book.value_range([0.91, float("nan"), 1.18], ".2f") == "0.91 to 1.18"


def test_a_chapter_source_without_its_parameters_cell_is_one_line(tmp_path):
    """A source without a cell tagged parameters was a StopIteration traceback in default_parameters."""
    (tmp_path / "mine.md").write_text("---\nkernelspec:\n  name: python3\n  display_name: Python 3\n---\n\n# Mine\n\n"
                                      "```{code-cell} ipython3\nx = 1\n```\n")
    with pytest.raises(ConfigError, match=r"mine\.md: expected exactly one cell tagged 'parameters', found 0"):
        book.default_parameters("mine", tmp_path)
    with pytest.raises(ConfigError, match=r"chapter: no source .*absent\.md"):
        book.read_chapter_source("absent", tmp_path)


def test_only_a_chapter_that_interprets_the_cpu_study_notes_its_exercises_on_another_studys_page(tmp_path, monkeypatch):
    """The note under the exercises ("written for the published study") belongs to the chapters whose prose
    reads the cpu study; the synthetic language's page of the smoke study describes the smoke study's own."""
    def run_notebook(source, out, parameters, cwd, timeout, log_output):
        nbformat.write(nbformat.read(source, as_version=4), out)

    monkeypatch.setattr(book, "run_notebook", run_notebook)
    notes = {}
    for chapter in ("synthetic_language", "training"):
        out = book.execute_chapter(chapter, {"preset": "smoke"}, out_dir=tmp_path)
        notes[chapter] = sum("These exercises were written for the published study" in c.source
                             for c in nbformat.read(out, as_version=4).cells)
    assert notes == {"synthetic_language": 0, "training": 1}


def test_the_exercises_note_always_names_an_option_that_points_at_the_study_shown():
    """The cpu preset's folder seen from elsewhere is named by its folder (the note read "add `` to ...")."""
    assert "add `--results-dir results` to its" in book.exercises_note("cpu", "results")
    assert "add `--preset smoke` to its" in book.exercises_note("smoke", "results")
    assert "add `--preset smoke --results-dir /x` to its" in book.exercises_note("smoke", "/x")


def test_a_hidden_cell_that_shows_a_figure_parts_two_left_out_passages():
    """A code cell whose input is hidden but whose output is a figure is read between two left-out passages,
    so each gets its note; one that only glues values (the page shows them elsewhere) does not part them."""
    def cell(text, tag=None):
        return nbformat.v4.new_markdown_cell(text, metadata={"tags": [tag]} if tag else {})

    def code(outputs):
        made = nbformat.v4.new_code_cell("plot()", metadata={"tags": ["hide-input"]})
        made.outputs = outputs
        return made

    figure = nbformat.v4.new_output("display_data", data={"image/png": "iVBOR"})
    glue = nbformat.v4.new_output("display_data", data={"text/plain": "1"}, metadata={"scrapbook": {"name": "n"}})
    tag = book.READS_THE_CPU_STUDY
    nb = nbformat.v4.new_notebook(cells=[cell("a", tag), code([figure]), cell("b", tag)])
    book.leave_out_cpu_readings(nb)
    assert [c.source for c in nb.cells] == [book.LEFT_OUT_NOTE, "plot()", book.LEFT_OUT_AGAIN_NOTE]
    nb = nbformat.v4.new_notebook(cells=[cell("a", tag), code([glue]), cell("b", tag)])
    book.leave_out_cpu_readings(nb)
    assert [c.source for c in nb.cells] == [book.LEFT_OUT_NOTE, "plot()"]


def test_a_studys_architectures_are_shown_in_the_chapters_order(monkeypatch):
    """The chapters' colours and rows follow their default order, whatever order the study's --set named."""
    monkeypatch.setattr(book, "_trained_archs", lambda preset, results_dir, cwd=book.ROOT: ["hgrn2", "llama"])
    assert book.study_archs({"preset": "smoke"}) == ["llama", "hgrn2"]
    monkeypatch.setattr(book, "_trained_archs", lambda preset, results_dir, cwd=book.ROOT: ["tnl", "cosformer2",
                                                                                            "hgrn2", "llama"])
    assert book.study_archs({"preset": "smoke"}) is None  # all four, in another order: the default


def test_archs_given_for_the_book_win_over_the_studys_own(monkeypatch, tmp_path):
    """`linscale book -p archs [tnl]` on a study of two architectures shows TNL alone; without it, the two."""
    seen = {}
    monkeypatch.setattr(book, "study_archs", lambda parameters, notebooks, cwd: ["llama", "tnl"])
    monkeypatch.setattr(book, "check_results", lambda parameters, chapters, cwd=book.ROOT: None)
    monkeypatch.setattr(book, "execute_chapter", lambda chapter, own, **kw: seen.setdefault(chapter, []).append(own))
    book.execute_book({"preset": "smoke", "archs": ["tnl"]}, chapters=["training", "architectures"], out_dir=tmp_path)
    book.execute_book({"preset": "smoke"}, chapters=["training", "architectures"], out_dir=tmp_path)
    assert seen["training"] == [{"preset": "smoke", "archs": ["tnl"]}, {"preset": "smoke", "archs": ["llama", "tnl"]}]
    assert seen["architectures"] == [{"archs": ["tnl"]}, {}]  # shows no trained runs: its own default


def test_the_accounting_chapter_needs_no_runs_of_its_study(tmp_path):
    """The accounting chapter tabulates a preset's grid (with a study's --set overrides where there are any):
    `linscale book --chapter accounting --preset paper` must not ask for the paper study's results first."""
    book.check_results({"preset": "paper", "results_dir": str(tmp_path)}, ["accounting"])
    with pytest.raises(ConfigError, match=r"no results of preset 'paper'"):
        book.check_results({"preset": "paper", "results_dir": str(tmp_path)}, ["training"])


def test_the_html_build_rebuilds_every_page_with_warnings_as_errors(monkeypatch, tmp_path):
    """Every page is rebuilt (--all: a page whose chapter changed under an unchanged source was left stale), and
    a warning stops the build (-W); all_pages=False leaves Sphinx's incremental build."""
    import subprocess

    commands = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **k: commands.append((cmd, k["cwd"]))
                        or subprocess.CompletedProcess(cmd, 0))
    assert book.build_html(tmp_path) == tmp_path / "_build" / "html"
    book.build_html(tmp_path, all_pages=False)
    (first, cwd), (second, _) = commands
    assert cwd == tmp_path and "-W" in first and "--all" in first and "--all" not in second
    assert first[first.index("--config") + 1] == "_config.yml"


def test_html_checker_follows_folder_links_to_their_index_and_reads_encoded_anchors(tmp_path):
    """A link to a folder is a link to its index.html (a folder without one is broken, and the anchor is
    looked up in it); an anchor written percent-encoded names the id it decodes to."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "index.html").write_text('<main id="top"></main>')
    (tmp_path / "index.html").write_text('<main id="café"><a href="sub/#top">a</a><a href="sub/#nope">b</a>'
                                         '<a href="empty/">c</a><a href="#caf%C3%A9">d</a></main>')
    problems = book.check_html(tmp_path, chapters=[])
    assert sorted(problems) == ["index.html: broken anchor sub/#nope", "index.html: broken link empty/"]


def test_the_table_of_contents_names_a_chapter_with_or_without_its_extension(tmp_path):
    toc = tmp_path / "_toc.yml"
    toc.write_text("format: jb-book\nroot: intro\nparts:\n- chapters:\n  - file: chapters/training.ipynb\n"
                   "  - file: chapters/findings\n  - file: glossary\n")
    assert book.toc_chapters(toc) == ["training", "findings"]
