"""`mine-kb` (annotated DocBins -> KB JSONL) and `add-knowledge` (trained pipeline + KB -> new pipeline)."""
from pathlib import Path
from typing import Any, Dict, List, Optional

import typer

from ..io.atomic import replace_directory, write_json_atomic
from ._app import app, fail


def _groups(value: str) -> List[str]:
    return [g.strip() for g in value.split(",") if g.strip()]


@app.command("mine-kb")
def mine_kb_cli(
    inputs: List[Path] = typer.Argument(..., help="Annotated .spacy files to mine (the training corpus)"),
    output: Path = typer.Option(..., "--output", "-o", help="Output KB .jsonl"),
    curated: Optional[Path] = typer.Option(None, "--curated", help="Curated KB .jsonl to merge with (it wins on conflicts); only its entries whose (mapped) label the corpus has are used"),
    curated_labels: Optional[Path] = typer.Option(None, "--curated-labels", help="Label map (JSON) from the curated KB's labels to the corpus's (default: its labels as they are); a label mapped to null, or unmapped under 'unmapped': 'drop', is left out"),
    report: Optional[Path] = typer.Option(None, "--report", help="Write the mining/merge report (JSON) here"),
    min_count: int = typer.Option(3, "--min-count", help="Least occurrences of a string's majority label"),
    min_purity: float = typer.Option(0.9, "--min-purity", help="Least share of the majority label"),
    o_weight: float = typer.Option(1.0, "--o-weight", help="Weight of an un-annotated occurrence against a string"),
    exclude_groups: str = typer.Option("citation", "--exclude-groups", help="Comma-separated curated KB groups to skip"),
    lang: str = typer.Option("en", "--lang", help="spaCy language whose tokenizer splits phrases"),
) -> None:
    """Mine a dictionary of unambiguous entity strings from an annotated corpus, merged with a curated KB if given."""
    import spacy

    from ..corpus.labels import load_label_map
    from ..evaluation.evaluate import load_gold
    from ..knowledge.kb import KnowledgeError, read_kb, write_kb
    from ..knowledge.mining import merge_kb, mine_kb, relabel_curated

    nlp = spacy.blank(lang)
    try:
        if curated_labels is not None and curated is None:
            raise ValueError("--curated-labels maps a curated KB: give it with --curated")
        docs = [doc for path in inputs for doc in load_gold(path, vocab=nlp.vocab)]
        labels = sorted({ent.label_ for doc in docs for ent in doc.ents})
        entries, mined_report = mine_kb(docs, min_count=min_count, min_purity=min_purity, o_weight=o_weight)
        result = {"labels": labels, "mined": mined_report}
        if curated is not None:
            chosen, result["curated"] = relabel_curated(
                read_kb(curated, exclude_groups=_groups(exclude_groups)), label_map=load_label_map(curated_labels), labels=labels
            )
            entries, result["merge"] = merge_kb(chosen, entries, nlp=nlp)
        write_kb(entries, output)
        if report is not None:
            write_json_atomic(report, result)
    except (KnowledgeError, ValueError) as err:
        fail(err)
    typer.echo(knowledge_summary(output, result, inputs=inputs, curated=curated, curated_labels=curated_labels))
    for conflict in result.get("merge", {}).get("conflicts", []):
        typer.echo(
            f"  conflict: {conflict['text']!r} mined as {conflict['mined_label']}, "
            f"curated {conflict['curated_label']} ({conflict['curated_source']})"
        )


def knowledge_summary(output: Path, result: Dict[str, Any], *, inputs: List[Path], curated: Optional[Path],
                      curated_labels: Optional[Path]) -> str:
    """The one line that says what the KB was made of.

    output (Path): The KB written.
    result (Dict[str, Any]): mine-kb's report (`labels`, `mined`, and `curated`/`merge` with a curated KB).
    inputs (List[Path]): The mined corpus files.
    curated (Optional[Path]): The curated KB, if any.
    curated_labels (Optional[Path]): Its label map, if any.
    RETURNS (str): The line.
    """
    source = f"mined from {', '.join(map(str, inputs))} (labels {', '.join(result['labels']) or 'none'})"
    if curated is None:
        return f"{output}: {result['mined']['kept']} entries {source}; no curated KB"
    chosen, merge = result["curated"], result["merge"]
    through = f" through {curated_labels}" if curated_labels is not None else " (labels as they are)"
    added = merge["mined"] - merge["duplicates"] - len(merge["conflicts"])
    line = f"{output}: {chosen['kept'] + added} entries: {added} {source}, "
    if not chosen["kept"]:
        return line + f"none of the {chosen['entries']} curated entries of {curated}{through} (no label of it maps to one of the corpus)"
    left_out = chosen["entries"] - chosen["kept"]
    reasons = [f"{sum(chosen['dropped_by_map'].values())} dropped by the map"] if chosen["dropped_by_map"] else []
    if chosen["not_in_corpus"]:
        reasons.append(f"{sum(chosen['not_in_corpus'].values())} labelled {', '.join(chosen['not_in_corpus'])}, which the corpus lacks")
    return (line + f"{chosen['kept']} curated from {curated}{through}"
            + (f" ({left_out} left out: {'; '.join(reasons)})" if left_out else "")
            + f"; {merge['duplicates']} mined strings were already curated, {len(merge['conflicts'])} conflicts (curated wins)")


@app.command("add-knowledge")
def add_knowledge_cli(
    model_dir: Path = typer.Argument(..., help="Trained pipeline directory"),
    kb: Path = typer.Argument(..., help="KB .jsonl"),
    output_dir: Path = typer.Argument(..., help="Output pipeline directory (replaced atomically)"),
    mode: str = typer.Option("override", "--mode", help="fill, override or trusted"),
    name: str = typer.Option("legal_knowledge", "--name", help="Component name"),
    exclude_groups: str = typer.Option("citation", "--exclude-groups", help="Comma-separated KB groups to skip"),
    case_sensitive: bool = typer.Option(True, "--case-sensitive/--no-case-sensitive", help="Whether KB phrases that do not say are matched case-sensitively"),
    trusted_precision: float = typer.Option(0.9, "--trusted-precision", help="Least precision of an overriding entry in trusted mode"),
    strict_labels: bool = typer.Option(True, "--strict-labels/--no-strict-labels", help="Fail on KB labels the ner does not know (--no-strict-labels: allow them)"),
    consistency: bool = typer.Option(True, "--consistency/--no-consistency", help="Also add entity_consistency last (a Doc's entity strings label their other mentions)"),
    name_designators: Optional[Path] = typer.Option(None, "--name-designators", help="Designators .json (mine-name-designators): also add name_spans after the KB component (entities cut out of a long name become the whole name)"),
    case_forms: Optional[Path] = typer.Option(None, "--case-forms", help="Case forms .json (mine-case-forms): also add case_restorer last (text written all upper, lower or title case is annotated through its truecased copy)"),
    restore_kinds: Optional[str] = typer.Option(None, "--restore-kinds", help="case_restorer: comma-separated kinds of text to restore (upper, lower, title; default all, or the input pipeline's)"),
    passage_words: Optional[int] = typer.Option(None, "--passage-words", help="case_restorer: also truecase passages of at least N words in capitals inside ordinary text (0: off; default 2, or the input pipeline's)"),
    entity_pass: Optional[bool] = typer.Option(None, "--entity-pass/--no-entity-pass", help="case_restorer: annotate each truecased copy again with its entities' words written as the corpus writes entities (default: off, or as the input pipeline's restorer does)"),
) -> None:
    """Add the legal_knowledge component after ner to a trained pipeline, without retraining."""
    import spacy
    import srsly

    from ..casing.restorer import add_case_restorer
    from ..knowledge.component import add_knowledge
    from ..knowledge.kb import KnowledgeError
    from ..knowledge.name_spans import add_name_spans

    try:
        if not model_dir.is_dir():
            raise ValueError(f"{model_dir}: no such pipeline directory")
        nlp = spacy.load(model_dir)
        component = add_knowledge(
            nlp, kb_path=kb, mode=mode, name=name, exclude_groups=_groups(exclude_groups), case_sensitive=case_sensitive,
            trusted_precision=trusted_precision, strict_labels=strict_labels,
        )
        if name_designators is not None:
            if not name_designators.is_file():
                raise ValueError(f"{name_designators}: no such file")
            add_name_spans(nlp, designators=srsly.read_json(name_designators), after=name)
        if consistency:  # last after the KB and name_spans; an input pipeline's settings are kept
            settings = {}
            if "entity_consistency" in nlp.pipe_names:
                settings = dict(nlp.get_pipe("entity_consistency").cfg)
                nlp.remove_pipe("entity_consistency")
            nlp.add_pipe("entity_consistency", last=True, config=settings)
        settings = {} if restore_kinds is None else {"kinds": _groups(restore_kinds)}
        settings.update({} if passage_words is None else {"passage_words": passage_words})
        settings.update({} if entity_pass is None else {"entity_pass": entity_pass})
        if case_forms is not None:
            if not case_forms.is_file():
                raise ValueError(f"{case_forms}: no such file")
            add_case_restorer(nlp, forms=srsly.read_json(case_forms), **settings)
        elif "case_restorer" in nlp.pipe_names:  # from the input pipeline: it must stay last
            old = nlp.get_pipe("case_restorer")
            add_case_restorer(nlp, forms=old.forms, **{**old.settings, **settings})
        elif settings:
            raise ValueError("--restore-kinds, --passage-words and --entity-pass need --case-forms (or a pipeline with case_restorer)")
        replace_directory(output_dir, nlp.to_disk)
    except (KnowledgeError, ValueError, OSError) as err:
        fail(err)
    typer.echo(f"{output_dir}: {', '.join(nlp.pipe_names)} ({len(component.entries)} KB entries, mode {mode})")
