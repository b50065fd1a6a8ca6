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
"""
from __future__ import annotations

import json
from pathlib import Path

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


def setup(app):
    app.connect("config-inited", _add_study_tags)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
