"""Review export: annotated records as Label Studio, doccano and Prodigy tasks, most useful first."""
import json

import pytest
from typer.testing import CliRunner

from spacy_domain_ner.annotation.review import (
    ReviewError, export_review, order_records, read_annotated, selection_key, to_task,
)
from spacy_domain_ner.cli import app
from spacy_domain_ner.corpus.convert import convert
from spacy.tokens import DocBin
import spacy

TEXT = "Acme Holdings, Inc. sued the SEC in Delaware."


def ent(start, end, label, confidence=None):
    e = {"start": start, "end": end, "label": label, "text": TEXT[start:end]}
    if confidence is not None:
        e["confidence"] = confidence
    return e


def records():
    return [
        {"id": "sure", "text": TEXT, "meta": {"source": "a"}, "entities": [ent(0, 19, "BUSINESS", 0.95), ent(29, 32, "GOVERNMENT", 0.9)]},
        {"id": "unsure", "text": TEXT, "meta": {"source": "b"}, "entities": [ent(0, 4, "BUSINESS", 0.3), ent(29, 32, "GOVERNMENT", 0.99)]},
        {"id": "middling", "text": TEXT, "entities": [ent(0, 19, "BUSINESS", 0.6), ent(29, 32, "GOVERNMENT", 0.6)]},
        {"id": 7, "text": TEXT, "entities": [ent(36, 44, "LOCATION")]},  # unscored
        {"id": "none", "text": TEXT, "entities": []},
    ]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf8")
    return path


@pytest.mark.parametrize("strategy,expected", [
    # means: sure 0.925, unsure 0.645, middling 0.6; minima: 0.9, 0.3, 0.6; under 0.8: 0, 1, 2
    ("lowest-mean", ["middling", "unsure", "sure", 7, "none"]),
    ("lowest-min", ["unsure", "middling", "sure", 7, "none"]),
    ("most-uncertain", ["middling", "unsure", "sure", 7, "none"]),
])
def test_strategies_order_the_records(strategy, expected):
    assert [r["id"] for r in order_records(records(), strategy=strategy, threshold=0.8)] == expected


def test_random_order_is_seeded_and_limit_keeps_the_first():
    ids = lambda seed: [r["id"] for r in order_records(records(), strategy="random", seed=seed)]
    assert ids(1) == ids(1) and sorted(map(str, ids(1))) == sorted(map(str, [r["id"] for r in records()]))
    assert any(ids(s) != ids(1) for s in range(2, 6))
    assert [r["id"] for r in order_records(records(), strategy="lowest-min", limit=2)] == ["unsure", "middling"]
    with pytest.raises(ValueError, match="strategy"):
        selection_key(records()[0], strategy="newest", threshold=0.8)


def test_tasks_keep_the_record():
    record = records()[1]
    ls = to_task(record, fmt="labelstudio", model_version="en_legal_ner-0.1.0")
    assert ls["data"] == {"id": "unsure", "text": TEXT, "meta": {"source": "b"}}
    prediction = ls["predictions"][0]
    assert prediction["model_version"] == "en_legal_ner-0.1.0" and prediction["score"] == pytest.approx(0.645)
    assert [(r["value"]["start"], r["value"]["end"], r["value"]["text"], r["value"]["labels"], r["score"]) for r in prediction["result"]] == [
        (0, 4, "Acme", ["BUSINESS"], 0.3), (29, 32, "SEC", ["GOVERNMENT"], 0.99)]
    doccano = to_task(record, fmt="doccano")
    assert doccano["label"] == [[0, 4, "BUSINESS"], [29, 32, "GOVERNMENT"]] and {k: doccano[k] for k in record} == record
    prodigy = to_task(records()[3], fmt="prodigy")
    assert prodigy["spans"] == [{"start": 36, "end": 44, "label": "LOCATION"}] and prodigy["id"] == 7


def test_review_file_entities_go_back_and_bad_input_is_located(tmp_path):
    kept = [{**r, "entities": [e for e in r["entities"] if e.get("confidence", 1) >= 0.8]} for r in records()]
    review = [{**r, "entities": [e for e in r["entities"] if e.get("confidence", 1) < 0.8]} for r in records()]
    out = write_jsonl(tmp_path / "out.jsonl", kept)
    rev = write_jsonl(tmp_path / "out.review.jsonl", [r for r in review if r["entities"]])
    assert read_annotated(out, review=rev) == records()
    write_jsonl(tmp_path / "bad.jsonl", [records()[0], {"id": "x", "entities": []}])
    with pytest.raises(ReviewError, match=r"bad.jsonl:2: no 'text' string"):
        read_annotated(tmp_path / "bad.jsonl")
    write_jsonl(tmp_path / "twice.jsonl", [records()[0], records()[0]])
    with pytest.raises(ReviewError, match=r"twice.jsonl:2: id 'sure' occurs twice"):
        read_annotated(tmp_path / "twice.jsonl")
    write_jsonl(tmp_path / "stray.review.jsonl", [{**records()[0], "id": "elsewhere"}])
    with pytest.raises(ReviewError, match="stray.review.jsonl:1: id 'elsewhere' is not in"):
        read_annotated(out, review=tmp_path / "stray.review.jsonl")


def test_export_reconciles_and_a_corrected_label_studio_export_converts_back(tmp_path):
    out = write_jsonl(tmp_path / "out.jsonl", records())
    tasks_path = tmp_path / "tasks.json"
    summary = export_review(out, tasks_path, strategy="lowest-min", limit=3)
    assert summary["records"] == summary["records_exported"] + summary["records_left"] == 5
    assert summary["ids"] == ["unsure", "middling", "sure"] and summary["entities_exported"] == 6
    tasks = json.loads(tasks_path.read_text(encoding="utf8"))
    # the reviewer corrects "Acme" to the whole name; Label Studio adds its own ids and the annotation
    for i, task in enumerate(tasks):
        task["id"] = 100 + i
        result = [dict(r, value=dict(r["value"])) for r in task["predictions"][0]["result"]]
        for r in result:
            if r["value"]["text"] == "Acme":
                r["value"].update(end=19, text=TEXT[:19])
        task["annotations"] = [{"result": result, "updated_at": "2026-12-07T12:00:00"}]
    tasks_path.write_text(json.dumps(tasks), encoding="utf8")
    corrected = tmp_path / "corrected.spacy"
    stats = convert([tasks_path], corrected)[corrected]
    docs = list(DocBin().from_disk(corrected).get_docs(spacy.blank("en").vocab))
    assert [d.user_data["doc_id"] for d in docs] == ["unsure", "middling", "sure"]
    assert [(e.text, e.label_) for e in docs[0].ents] == [("Acme Holdings, Inc.", "BUSINESS"), ("SEC", "GOVERNMENT")]
    assert stats["entities_written"] == 6 and stats["reconciled"]


def test_cli_writes_tasks_and_summary(tmp_path):
    out = write_jsonl(tmp_path / "out.jsonl", records())
    result = CliRunner().invoke(app, ["export-review", str(out), "-o", str(tmp_path / "tasks.jsonl"), "--format", "doccano",
                                      "--strategy", "random", "--seed", "3", "--limit", "2"])
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "tasks.jsonl").read_text(encoding="utf8").splitlines()
    summary = json.loads((tmp_path / "tasks.summary.json").read_text(encoding="utf8"))
    assert len(lines) == 2 and [json.loads(l)["id"] for l in lines] == summary["ids"] and summary["records_left"] == 3
    result = CliRunner().invoke(app, ["export-review", str(out), "-o", str(tmp_path / "t.json"), "--format", "excel"])
    assert result.exit_code != 0 and "format must be one of" in result.output and not (tmp_path / "t.json").exists()


def test_corrections_keep_the_latest_leave_dev_out_and_report_train(tmp_path):
    from spacy_domain_ner.corpus.corrections import import_corrections

    nlp = spacy.blank("en")

    def docbin(path, rows):
        docs = []
        for doc_id, text in rows:
            doc = nlp.make_doc(text)
            doc.user_data["doc_id"] = doc_id
            docs.append(doc)
        DocBin(docs=docs, store_user_data=True).to_disk(path)
        return path

    dev_text = "The Commission approved the merger of Beta Bank and Gamma Trust on Monday afternoon."
    train = docbin(tmp_path / "train.spacy", [("old-1", "Acme Holdings, Inc. sued the SEC in Delaware."), ("t2", "Other text.")])
    dev = docbin(tmp_path / "dev.spacy", [("d1", dev_text)])
    first = [{"id": "old-1", "text": TEXT, "label": [[0, 4, "BUSINESS"]]},
             {"id": "new-2", "text": "Zeta LLC sued Omega Corp.", "label": [[0, 8, "BUSINESS"]]}]
    second = [{"id": "old-1", "text": TEXT, "label": [[0, 19, "BUSINESS"], [29, 32, "GOVERNMENT"]]},
              {"id": "d1-again", "text": dev_text + " More.", "label": []}]
    inputs = [write_jsonl(tmp_path / "a.jsonl", first), write_jsonl(tmp_path / "b.jsonl", second)]
    out = tmp_path / "corrections.spacy"
    result = import_corrections(inputs, out, train=[train], dev=[dev])
    docs = list(DocBin().from_disk(out).get_docs(nlp.vocab))
    assert [d.user_data["doc_id"] for d in docs] == ["new-2", "old-1"]
    assert [(e.text, e.label_) for e in docs[1].ents] == [("Acme Holdings, Inc.", "BUSINESS"), ("SEC", "GOVERNMENT")]
    assert result["records_read"] == 4 and result["records_written"] == 2 and result["superseded"] == ["old-1"]
    assert result["in_dev"] == [{"id": "d1-again", "match": "text"}] and result["in_train"] == [{"id": "old-1", "match": "id"}]
    assert result["entities_written"] == 3 and result["reconciled"]
    assert json.loads((tmp_path / "corrections.stats.json").read_text(encoding="utf8"))["records_written"] == 2
    result = CliRunner().invoke(app, ["import-corrections", *map(str, inputs), "-o", str(tmp_path / "c2.spacy"), "--dev", str(dev)])
    assert result.exit_code == 0 and "2 of 4 records" in result.output and "1 in dev left out" in result.output


def test_merged_training_corpus_replaces_what_the_corrections_cover(tmp_path):
    from spacy_domain_ner.corpus.corrections import import_corrections

    nlp = spacy.blank("en")
    long_text = "Acme Holdings, Inc. sued the Securities and Exchange Commission in Delaware on Monday."
    rows = [("old-1", "Acme Holdings, Inc. sued the SEC in Delaware."), ("t2", "Other text."), ("t3", long_text)]
    docs = []
    for doc_id, text in rows:
        doc = nlp.make_doc(text)
        doc.user_data["doc_id"] = doc_id
        docs.append(doc)
    train = tmp_path / "train.spacy"
    DocBin(docs=docs, store_user_data=True).to_disk(train)
    corrected = [{"id": "old-1", "text": TEXT, "label": [[0, 19, "BUSINESS"]]},  # the same id
                 {"id": "new-9", "text": long_text + " It lost.", "label": [[0, 19, "BUSINESS"]]},  # contains t3's text
                 {"id": "new-2", "text": "Zeta LLC sued Omega Corp.", "label": [[0, 8, "BUSINESS"]]}]
    merged = tmp_path / "merged" / "train.spacy"
    result = import_corrections([write_jsonl(tmp_path / "a.jsonl", corrected)], tmp_path / "c.spacy", train=[train], merged=merged)
    out = list(DocBin().from_disk(merged).get_docs(nlp.vocab))
    assert [d.user_data["doc_id"] for d in out] == ["t2", "old-1", "new-9", "new-2"]
    assert [(e.text, e.label_) for e in out[1].ents] == [("Acme Holdings, Inc.", "BUSINESS")]
    counts = {"train_docs_read": 3, "train_docs_kept": 1, "train_docs_replaced": 2, "correction_docs": 3, "docs_written": 4}
    assert {k: result["merged"][k] for k in counts} == counts
    assert json.loads((tmp_path / "merged" / "train.stats.json").read_text(encoding="utf8"))["docs_written"] == 4
    with pytest.raises(ValueError, match="needs the training corpus"):
        import_corrections([tmp_path / "a.jsonl"], tmp_path / "d.spacy", merged=tmp_path / "m.spacy")
    assert not (tmp_path / "d.spacy").exists()
    result = CliRunner().invoke(app, ["import-corrections", str(tmp_path / "a.jsonl"), "-o", str(tmp_path / "e.spacy"),
                                      "--train", str(train), "--merged", str(tmp_path / "m.spacy")])
    assert result.exit_code == 0 and "4 docs = 1 of 3 training docs (2 replaced) + 3 corrected" in result.output
