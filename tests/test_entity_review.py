"""annotate with entity confidences: scores and kb ids in the output, --min-confidence and its review file."""
import json

import pytest
from spacy.language import Language
from spacy.tokens import Span
from typer.testing import CliRunner

import spacy_domain_ner.cli.annotate  # noqa: F401  (registers the command)
import spacy_domain_ner.evaluation.confidence  # noqa: F401  (registers Doc._.ent_confidences and Span._.confidence)
from spacy_domain_ner.annotation.journal import RunPaths
from spacy_domain_ner.annotation.local_executor import LocalExecutor
from spacy_domain_ner.annotation.runner import annotate, run_annotation
from spacy_domain_ner.cli import app
from conftest import jsonl_lines, save_ruler_pipeline
from test_annotate import FlakyExecutor

PATTERNS = [{"label": "ORG", "pattern": "Acme Corp"}, {"label": "GPE", "pattern": "Delaware"}, {"label": "ORG", "pattern": "Zeta"}]
SCORES = {"Acme Corp": 0.9, "Delaware": 0.3}  # "Zeta" gets no score


@Language.component("test_review_scores")
def score_entities(doc):
    doc._.ent_confidences = [[e.start, e.end, e.label_, SCORES[e.text]] for e in doc.ents if e.text in SCORES]
    doc.set_ents([Span(doc, e.start, e.end, label=e.label, kb_id="acme" if e.text == "Acme Corp" else "") for e in doc.ents])
    return doc


def save(path, scored=True):
    return save_ruler_pipeline(path, PATTERNS, *(["test_review_scores"] if scored else []))


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    return save(tmp_path_factory.mktemp("scored") / "model")


lines = jsonl_lines


def source(path, n=40):
    records = []
    for i in range(n):
        text = ["Acme Corp in Delaware.", "Delaware only.", "Acme Corp here.", "nothing", "Zeta and Delaware"][i % 5]
        doc_id = f"r{i - (n - 2)}" if n >= 10 and i >= n - 2 else f"r{i}"  # the last 2 ids repeat: errors
        records.append(json.dumps({"id": doc_id, "text": text}) + "\n")
        if i % 13 == 0:
            records.append("{broken\n")
    path.write_text("".join(records), encoding="utf-8")
    return path


def files(out):
    paths = RunPaths.for_output(out)
    return out.read_bytes(), paths.errors.read_bytes(), paths.review.read_bytes()


def test_output_has_confidence_and_kb_id_without_review(tmp_path, scored):
    out = tmp_path / "out.jsonl"
    summary = annotate(source(tmp_path / "in.jsonl", 5), out, model=scored, progress=False)
    first = lines(out)[0]["entities"]
    assert first == [
        {"start": 0, "end": 9, "label": "ORG", "text": "Acme Corp", "confidence": 0.9, "kb_id": "acme"},
        {"start": 13, "end": 21, "label": "GPE", "text": "Delaware", "confidence": 0.3},
    ]
    assert lines(out)[4]["entities"][0] == {"start": 0, "end": 4, "label": "ORG", "text": "Zeta"}  # unscored: no key
    assert not RunPaths.for_output(out).review.exists() and summary["review_file"] is None
    assert summary["entities"] == summary["entities_kept"] == 6 and summary["entities_unscored"] == 1 and summary["reconciled"]


def test_min_confidence_sends_uncertain_entities_to_review(tmp_path, scored):
    out = tmp_path / "out.jsonl"
    summary = annotate(source(tmp_path / "in.jsonl"), out, model=scored, min_confidence=0.5, batch_size=6, progress=False)
    review = RunPaths.for_output(out).review
    assert summary["review_file"] == str(review) and review.name == "out.review.jsonl"
    kept = [e for record in lines(out) for e in record["entities"]]
    uncertain = [e for record in lines(review) for e in record["entities"]]
    assert all(e.get("confidence", 1) >= 0.5 for e in kept) and {e["text"] for e in uncertain} == {"Delaware"}
    assert all(e["confidence"] < 0.5 for e in uncertain) and any("confidence" not in e for e in kept)  # unscored stay
    assert summary["entities_kept"] == len(kept) and summary["entities_review"] == len(uncertain) > 0
    assert summary["entities"] == summary["entities_kept"] + summary["entities_review"] and summary["reconciled"]
    assert summary["review_records"] == len(lines(review))
    by_id = {r["id"]: r for r in lines(out)}
    for record in lines(review):  # one line per record with uncertain entities, its fields and id kept
        assert record["text"] == by_id[record["id"]]["text"] and all(e["text"] == "Delaware" for e in record["entities"])
    boundary = annotate(tmp_path / "in.jsonl", tmp_path / "b.jsonl", model=scored, min_confidence=0.3, progress=False)
    assert boundary["entities_review"] == 0 and RunPaths.for_output(tmp_path / "b.jsonl").review.read_bytes() == b""
    with pytest.raises(ValueError, match="between 0 and 1"):
        annotate(tmp_path / "in.jsonl", tmp_path / "c.jsonl", model=scored, min_confidence=1.5, progress=False)


def test_review_file_is_exactly_once_across_a_resume(tmp_path, scored):
    data = source(tmp_path / "in.jsonl", 60)
    reference = annotate(data, tmp_path / "ref.jsonl", model=scored, min_confidence=0.5, batch_size=7, progress=False)
    out = tmp_path / "out.jsonl"
    paths = RunPaths.for_output(out)
    flaky = FlakyExecutor(LocalExecutor(model=scored, batch_size=5), fail_after=4, lookahead=1)
    with pytest.raises(KeyboardInterrupt):
        run_annotation(data, out, executor=flaky, model=scored, batch_size=5, min_confidence=0.5, progress=False)
    state = json.loads(paths.checkpoint.read_text())
    assert state["review_bytes"] == paths.review_partial.stat().st_size > 0
    with paths.review_partial.open("ab") as file:  # what a killed run wrote after its last commit
        file.write(b'{"id": "torn')
    with pytest.raises(ValueError, match="differ: min_confidence"):
        annotate(data, out, model=scored, min_confidence=0.6, resume=True, progress=False)
    with pytest.raises(ValueError, match="differ"):  # without the review: other settings too
        annotate(data, out, model=scored, resume=True, progress=False)
    summary = annotate(data, out, model=scored, min_confidence=0.5, batch_size=11, resume=True, progress=False)
    assert files(out) == files(tmp_path / "ref.jsonl") and summary["resumed"]
    for key in ("entities", "entities_kept", "entities_review", "review_records", "records", "annotated", "errors"):
        assert summary[key] == reference[key]
    assert not paths.review_partial.exists() and not paths.checkpoint.exists()


def test_pipeline_without_confidence_keeps_everything(tmp_path):
    model = save(tmp_path / "plain", scored=False)
    out = tmp_path / "out.jsonl"
    summary = annotate(source(tmp_path / "in.jsonl", 10), out, model=model, min_confidence=0.99, progress=False)
    assert summary["entities_review"] == 0 and summary["entities_unscored"] == summary["entities"] == summary["entities_kept"]
    assert all("confidence" not in e and "kb_id" not in e for r in lines(out) for e in r["entities"])


def test_cli_min_confidence(tmp_path, scored):
    data, out = source(tmp_path / "in.jsonl", 10), tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["annotate", scored, str(data), str(out), "--min-confidence", "0.5", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "kept +" in result.output and "below 0.5 in review" in result.output
    summary = json.loads((tmp_path / "out.summary.json").read_text())
    assert summary["entities_review"] == len([e for r in lines(tmp_path / "out.review.jsonl") for e in r["entities"]]) > 0
