"""The book's Sphinx extension: tags the build with the study each executed chapter shows.

The chapters leave out, on another study's page, the passages written for the published study
(``book.READS_THE_CPU_STUDY``). The introduction is not a chapter and is never executed, so it cannot: its
passages that read the published study are wrapped instead in Sphinx's ``only`` directive,

    ```{only} published_scaling_laws
    ...
    ```

and this extension adds the tag ``published_<chapter>`` for every chapter in ``book/chapters/`` that shows
the published study (``results/cpu`` of this repository), as ``linscale book`` recorded it when it executed
the chapter. A book whose scaling-laws chapter shows the smoke study, or a re-run's folder, renders the
introduction's other version of those passages. Listed in ``_config.yml``'s Sphinx extensions.

It also gives glued text the typographic quotes of the prose around it (:class:`GluedSmartQuotes`), and
writes a link to a chapter the book leaves out as its text (:func:`link_to_left_out_chapter`).
"""
from __future__ import annotations

import json
from pathlib import Path

from docutils import nodes
from sphinx.transforms import SphinxTransform
from sphinx.transforms.post_transforms import SphinxPostTransform

from linscale import book

TAG = "published_{chapter}"


def study_tags(source_dir: Path) -> set[str]:
    """The tags for the executed chapters in ``source_dir/chapters``. A chapter executed by papermill by hand
    has no record of its own (it may carry the record of the chapter it was executed from, made with other
    parameters); its study is judged from papermill's parameters, relative to the folder above the book's
    sources."""
    tags = set()
    for chapter in book.CHAPTERS:
        path = Path(source_dir) / "chapters" / f"{chapter}.ipynb"
        if not path.exists():
            continue
        metadata = json.loads(path.read_text()).get("metadata", {})
        record, papermill = metadata.get("linscale", {}), metadata.get("papermill", {}).get("parameters", {})
        published = record.get("shows_published_study") if record.get("parameters") == papermill else None
        if published is None:
            published = book.shows_published_study(papermill, Path(source_dir).parent)
        if published:
            tags.add(TAG.format(chapter=chapter))
    return tags


def _add_study_tags(app, config) -> None:
    for tag in sorted(study_tags(Path(app.srcdir))):
        app.tags.add(tag)


def chapter_labels(chapters, notebooks: Path = book.NOTEBOOKS) -> set[str]:
    """The labels (``(name)=``) the sources of ``chapters`` define."""
    import re

    return {label for chapter in chapters
            for label in re.findall(r"^\(([\w-]+)\)=\s*$", (Path(notebooks) / f"{chapter}.md").read_text(), re.M)}


def link_to_left_out_chapter(app, env, node, contnode):
    """``missing-reference``: a link to a label of a chapter this build leaves out is its text, not a warning
    (which fails the build): the book of a study of real text (``book/_toc_text.yml``) has no appendix on the
    synthetic language, which the glossary links. A link without a text of its own names the chapter in the
    published book instead of showing its bare label (the training page's "the seed noise (seed-noise)").
    Any other missing label still fails the build."""
    if node.get("reftype") not in ("ref", "numref"):
        return None
    left_out = [chapter for chapter in book.CHAPTERS if f"chapters/{chapter}" not in env.found_docs]
    chapter = next((c for c in left_out if node.get("reftarget") in chapter_labels([c])), None)
    if chapter is None:
        return None
    if node.get("refexplicit"):
        return contnode
    # inserted after SmartQuotes ran, so its apostrophe is curled here, as the prose's
    return nodes.inline("", f"the published book\u2019s {chapter.replace('_', ' ')} chapter")


class GluedKeepsItsDashes(SphinxTransform):
    """A value glued on the page that pastes it is pasted while the page is read, before Sphinx's SmartQuotes
    (priority 750), which made its dashes and dots typographic with the prose's: the accounting page of a study
    made with --set overrides read "(\u2013set data.path=...)", an option no command takes. Marked here as not
    smartquotable, it keeps them; its quotes are curled after, by :class:`GluedSmartQuotes`, as any pasted
    value's."""

    default_priority = 745

    def apply(self, **kwargs) -> None:
        for pasted in self.document.findall(lambda n: isinstance(n, nodes.inline) and "pasted-text" in n["classes"]):
            pasted["support_smartquotes"] = False


class GluedSmartQuotes(SphinxPostTransform):
    """Curly quotes and apostrophes in glued text, as Sphinx's SmartQuotes gives the prose: that transform
    runs while a page is read, before myst-nb pastes the glued values in (its post-transform), so a glued
    "the paper's" kept a straight apostrophe beside the prose's curly ones. Quotes only: a glued
    ``--set`` is not made a dash."""

    default_priority = 6  # after myst-nb's ReplacePendingGlueReferences (5)

    def run(self, **kwargs) -> None:
        if not self.config.smartquotes:
            return
        for pasted in self.document.findall(lambda n: isinstance(n, nodes.inline) and "pasted-text" in n["classes"]):
            curl_quotes(pasted)


def curl_quotes(node: nodes.Element) -> None:
    """Replace the straight quotes of ``node``'s text (not inside literals) with typographic ones."""
    from docutils.utils import smartquotes

    texts = [t for t in node.findall(nodes.Text) if not isinstance(t.parent, (nodes.literal, nodes.literal_block))]
    curled = smartquotes.educate_tokens([("plain", str(t)) for t in texts], attr="q", language="en")
    for old, new in zip(texts, curled):
        if new != str(old):
            old.parent.replace(old, nodes.Text(new))


def setup(app):
    app.connect("config-inited", _add_study_tags)
    app.add_transform(GluedKeepsItsDashes)
    app.add_post_transform(GluedSmartQuotes)
    app.connect("missing-reference", link_to_left_out_chapter)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
