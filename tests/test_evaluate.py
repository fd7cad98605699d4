"""Tests of spacy_domain_ner.evaluation.evaluate and the `evaluate` CLI, against hand-computed values."""
import json
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import pytest
import spacy
import srsly
from sklearn.metrics import classification_report
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example
from spacy.vocab import Vocab
from typer.testing import CliRunner

import spacy_domain_ner.cli.evaluate  # noqa: F401  (registers the command)
from spacy_domain_ner.cli import app
from spacy_domain_ner.evaluation.evaluate import (
    apply_label_map, evaluate_docs, evaluate_pipeline, load_gold, report_markdown, whole_documents, write_report,
)
from spacy_domain_ner.evaluation.scoring import bio_tags, match_spans, project_predictions, token_report
from spacy_domain_ner.corpus.labels import LabelMap, load_label_map

ROOT = Path(__file__).resolve().parent.parent
VOCAB = Vocab()


def make_doc(words: Sequence[str], ents: Sequence[Tuple[int, int, str]], spaces: Optional[List[bool]] = None) -> Doc:
    doc = Doc(VOCAB, words=list(words), spaces=spaces)
    doc.ents = [Span(doc, s, e, label=label) for s, e, label in ents]
    return doc


def fixture_docs() -> Tuple[List[Doc], List[Doc]]:
    """Three docs with every kind of outcome (hand-computed values in the tests below)."""
    a = "Apple sued Google in New York .".split()
    b = "Judge Smith of the Ninth Circuit ruled .".split()
    c = "Acme hired Bob .".split()
    gold = [
        make_doc(a, [(0, 1, "ORG"), (2, 3, "ORG"), (4, 6, "LOC")]),
        make_doc(b, [(1, 2, "PER"), (4, 6, "ORG")]),
        make_doc(c, [(0, 1, "ORG"), (2, 3, "PER")]),
    ]
    pred = [
        make_doc(a, [(0, 1, "ORG"), (1, 2, "MISC"), (2, 3, "PER"), (4, 5, "LOC")]),
        make_doc(b, [(0, 2, "PER"), (3, 5, "LOC")]),
        make_doc(c, []),
    ]
    return pred, gold


# gold and predicted BIO tags of fixture_docs, written out by hand
HAND_TRUE = ["B-ORG", "O", "B-ORG", "O", "B-LOC", "I-LOC", "O",
             "O", "B-PER", "O", "O", "B-ORG", "I-ORG", "O", "O",
             "B-ORG", "O", "B-PER", "O"]
HAND_PRED = ["B-ORG", "B-MISC", "B-PER", "O", "B-LOC", "O", "O",
             "B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O", "O", "O",
             "O", "O", "O", "O"]


def test_entity_scores_hand_computed():
    pred, gold = fixture_docs()
    result = evaluate_docs(pred, gold)
    # 6 predictions, 7 gold entities, 1 correct (Apple)
    assert result["ents_p"] == pytest.approx(1 / 6)
    assert result["ents_r"] == pytest.approx(1 / 7)
    assert result["ents_f"] == pytest.approx(2 / 13)
    per_type = result["ents_per_type"]
    assert sorted(per_type) == ["LOC", "MISC", "ORG", "PER"]
    assert {k: per_type["ORG"][k] for k in ("tp", "fp", "fn", "support")} == {"tp": 1, "fp": 0, "fn": 3, "support": 4}
    assert per_type["ORG"]["p"] == pytest.approx(1.0)
    assert per_type["ORG"]["r"] == pytest.approx(0.25)
    assert per_type["ORG"]["f"] == pytest.approx(0.4)
    assert {k: per_type["PER"][k] for k in ("tp", "fp", "fn")} == {"tp": 0, "fp": 2, "fn": 2}
    assert {k: per_type["LOC"][k] for k in ("tp", "fp", "fn")} == {"tp": 0, "fp": 2, "fn": 1}
    assert {k: per_type["MISC"][k] for k in ("tp", "fp", "fn", "support")} == {"tp": 0, "fp": 1, "fn": 0, "support": 0}
    assert per_type["PER"]["f"] == 0.0
    # the headline numbers are spaCy's scorer's
    spacy_scores = get_ner_prf([Example(p, g) for p, g in zip(pred, gold)])
    assert result["ents_f"] == spacy_scores["ents_f"]
    assert result["speed"] is None
    assert result["n_docs"] == 3 and result["n_tokens"] == 19


def test_token_report_matches_sklearn():
    pred, gold = fixture_docs()
    result = evaluate_docs(pred, gold)
    labels = sorted(set(HAND_TRUE + HAND_PRED) - {"O"})
    expected = classification_report(HAND_TRUE, HAND_PRED, labels=labels, output_dict=True, zero_division=0)
    assert set(result["token_report"]) == set(expected)
    for key, row in expected.items():
        assert result["token_report"][key] == pytest.approx(row), key
    assert result["token_accuracy"] == pytest.approx(sum(t == p for t, p in zip(HAND_TRUE, HAND_PRED)) / 19)
    # hand-checked values: B-ORG 1 of 1 predicted right, 4 gold
    assert result["token_report"]["B-ORG"] == pytest.approx({"precision": 1.0, "recall": 0.25, "f1-score": 0.4, "support": 4})


def test_token_report_edge_cases():
    # a tag only predicted (support 0), a tag only gold (no predictions)
    y_true = ["B-A", "O", "O", "B-C", "I-C"]
    y_pred = ["B-A", "B-B", "O", "O", "I-C"]
    labels = ["B-A", "B-B", "B-C", "I-C"]
    expected = classification_report(y_true, y_pred, labels=labels, output_dict=True, zero_division=0)
    report = token_report(y_true, y_pred)
    for key, row in expected.items():
        assert report[key] == pytest.approx(row), key
    empty = token_report(["O", "O"], ["O", "O"])
    assert empty["micro avg"] == {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0}
    with pytest.raises(ValueError, match="2 gold tags but 1 predicted"):
        token_report(["O", "O"], ["O"])


def test_confusion_and_errors_hand_computed():
    pred, gold = fixture_docs()
    result = evaluate_docs(pred, gold)
    confusion = result["confusion"]
    assert confusion["labels"] == ["LOC", "MISC", "ORG", "PER", "O"]
    nonzero = {(g, p): n for g, row in confusion["matrix"].items() for p, n in row.items() if n}
    assert nonzero == {
        ("ORG", "ORG"): 1, ("ORG", "PER"): 1, ("LOC", "LOC"): 1, ("O", "MISC"): 1,
        ("PER", "PER"): 1, ("ORG", "LOC"): 1, ("ORG", "O"): 1, ("PER", "O"): 1,
    }
    assert confusion["counts"] == {
        "correct": 1, "label": 1, "boundary": 2, "label_boundary": 1, "missed": 2, "spurious": 1
    }
    errors = result["errors"]
    assert errors["total"] == 7 and len(errors["sample"]) == 7
    by_text = {(e["gold"] or {}).get("text", "") + "/" + (e["predicted"] or {}).get("text", ""): e for e in errors["sample"]}
    assert by_text["Google/Google"]["type"] == "label"
    assert by_text["Google/Google"]["context"] == "Apple sued [[{{Google}}]] in New York ."
    assert by_text["Ninth Circuit/the Ninth"]["type"] == "label_boundary"
    assert by_text["Ninth Circuit/the Ninth"]["context"] == "Judge Smith of {{the [[Ninth}} Circuit]] ruled ."
    assert by_text["Smith/Judge Smith"]["type"] == "boundary"
    assert by_text["Bob/"] == {
        "type": "missed", "doc": 2, "doc_id": None, "gold": {"label": "PER", "text": "Bob"}, "predicted": None,
        "context": "Acme hired [[Bob]] .",
    }
    assert by_text["/sued"]["type"] == "spurious" and by_text["/sued"]["gold"] is None


def test_match_spans_order_and_ties():
    gold = [(0, 2, "A"), (3, 6, "B")]
    # exact same label wins over exact other label; then largest overlap
    assert match_spans(gold, [(0, 2, "X"), (0, 2, "A")]) == [("correct", 0, 1), ("missed", 1, None), ("spurious", None, 0)]
    assert match_spans(gold, [(2, 4, "B"), (4, 7, "B")]) == [("boundary", 1, 1), ("missed", 0, None), ("spurious", None, 0)]
    assert match_spans(gold, [(3, 6, "A")]) == [("label", 1, 0), ("missed", 0, None)]
    assert match_spans([], [(1, 2, "A")]) == [("spurious", None, 0)]
    assert bio_tags(4, [(0, 2, "A"), (1, 3, "B"), (3, 4, "C")]) == ["B-A", "I-A", "O", "B-C"]


def test_differing_tokenization_is_aligned():
    gold = make_doc(["We", "don't", "sue", "Acme", "Corp", "."], [(3, 5, "ORG")], spaces=[True, True, True, True, True, False])
    nlp = spacy.blank("en")
    pred = nlp.make_doc(gold.text)
    assert [t.text for t in pred] == ["We", "do", "n't", "sue", "Acme", "Corp", "."]
    pred.ents = [Span(pred, 4, 6, label="ORG"), Span(pred, 2, 3, label="NEG")]
    assert project_predictions(Example(pred, gold)) == [(1, 2, "NEG"), (3, 5, "ORG")]
    result = evaluate_docs([pred], [gold])
    assert result["ents_r"] == 1.0 and result["ents_p"] == 0.5
    assert result["ents_per_type"]["ORG"]["f"] == 1.0
    assert result["token_report"]["B-ORG"]["f1-score"] == 1.0 and result["token_report"]["I-ORG"]["f1-score"] == 1.0
    assert result["errors"]["sample"][0]["predicted"] == {"label": "NEG", "text": "don't"}


def test_missing_gold_annotation_is_ignored():
    gold = Doc(VOCAB, words=["Acme", "sued", "Beta", "today"])
    gold.set_ents([Span(gold, 0, 1, label="ORG")], missing=[gold[2:3]], default="outside")
    pred = make_doc(["Acme", "sued", "Beta", "today"], [(0, 1, "ORG"), (2, 3, "ORG")])
    result = evaluate_docs([pred], [gold])
    assert result["ents_p"] == 1.0 and result["errors"]["total"] == 0
    assert result["token_report"]["B-ORG"]["support"] == 1 and result["token_accuracy"] == 1.0
    # a gold doc without any entity annotation is skipped, as by spaCy's scorer
    unannotated = Doc(VOCAB, words=["Acme"])
    result = evaluate_docs([make_doc(["Acme"], [(0, 1, "ORG")])], [unannotated])
    assert result["ents_f"] is None and result["confusion"]["counts"]["spurious"] == 0


def test_label_maps():
    pred, gold = fixture_docs()
    # gold: LOC dropped, ORG kept; predictions: PER and LOC mapped to ORG
    gold_map = LabelMap(labels={"LOC": None})
    pred_map = LabelMap(labels={"PER": "ORG", "LOC": "ORG", "MISC": None})
    result = evaluate_docs(pred, gold, gold_map=gold_map, pred_map=pred_map)
    # gold: Apple, Google, Smith, Ninth Circuit, Acme, Bob; predicted (after map): Apple, Google, Judge Smith, the Ninth
    assert result["ents_per_type"]["ORG"]["tp"] == 2  # Apple, Google
    assert result["ents_p"] == pytest.approx(2 / 5) and result["ents_r"] == pytest.approx(2 / 6)
    assert "LOC" not in result["confusion"]["labels"] and "MISC" not in result["confusion"]["labels"]
    # New York dropped from the gold: its tokens are O, and the inputs are untouched
    assert [t.ent_iob_ for t in apply_label_map(gold, gold_map)[0]][4:6] == ["O", "O"]
    assert [e.label_ for e in gold[0].ents] == ["ORG", "ORG", "LOC"]
    with pytest.raises(ValueError, match=r"predicted doc 0, entity 'sued'.*'MISC' is not in the label map"):
        evaluate_docs(pred, gold, pred_map=LabelMap(labels={"ORG": "ORG", "PER": "PER", "LOC": "LOC"}, unmapped="error"))


def test_ontonotes_to_conll_map():
    label_map = load_label_map(ROOT / "configs" / "labels" / "ontonotes_to_conll.json")
    expected = {"PERSON": "PER", "ORG": "ORG", "GPE": "LOC", "LOC": "LOC", "FAC": "LOC", "NORP": "MISC",
                "EVENT": "MISC", "LAW": "MISC", "PRODUCT": "MISC", "WORK_OF_ART": "MISC", "LANGUAGE": "MISC"}
    for label, target in expected.items():
        assert label_map.map(label) == target
    for label in ("DATE", "TIME", "PERCENT", "MONEY", "QUANTITY", "ORDINAL", "CARDINAL"):
        assert label_map.map(label) is None
    with pytest.raises(ValueError, match="not in the label map"):
        label_map.map("PER")  # a CoNLL model given the OntoNotes map by mistake


def test_error_sample_is_seeded():
    words = ["Acme", "sued", "Beta"]
    gold = [make_doc(words, [(0, 1, "ORG"), (2, 3, "ORG")]) for _ in range(15)]
    pred = [make_doc(words, []) for _ in range(15)]
    first = evaluate_docs(pred, gold, n_errors=5, seed=3)["errors"]
    again = evaluate_docs(pred, gold, n_errors=5, seed=3)["errors"]
    other = evaluate_docs(pred, gold, n_errors=5, seed=4)["errors"]
    assert first == again and first["total"] == 30 and len(first["sample"]) == 5
    assert [e["doc"] for e in first["sample"]] == sorted(e["doc"] for e in first["sample"])
    assert first["sample"] != other["sample"]
    assert evaluate_docs(pred, gold, n_errors=0)["errors"]["sample"] == []


def test_input_errors():
    pred, gold = fixture_docs()
    with pytest.raises(ValueError, match="3 predicted docs but 2 gold docs"):
        evaluate_docs(pred, gold[:2])
    with pytest.raises(ValueError, match="doc 1: the predicted text differs"):
        evaluate_docs([pred[0], pred[0], pred[2]], gold)
    with pytest.raises(ValueError, match="n_errors"):
        evaluate_docs(pred, gold, n_errors=-1)


def test_load_gold(tmp_path):
    _, gold = fixture_docs()
    gold[0].user_data["doc_id"] = "a.csv#0"
    path = tmp_path / "gold.spacy"
    DocBin(docs=gold, store_user_data=True).to_disk(path)
    loaded = load_gold(path)
    assert [d.text for d in loaded] == [d.text for d in gold]
    assert [[(e.start, e.end, e.label_) for e in d.ents] for d in loaded] == [[(e.start, e.end, e.label_) for e in d.ents] for d in gold]
    assert loaded[0].user_data["doc_id"] == "a.csv#0"
    with pytest.raises(ValueError, match="nope.spacy: no such file"):
        load_gold(tmp_path / "nope.spacy")
    (tmp_path / "bad.spacy").write_text("not a docbin")
    with pytest.raises(ValueError, match="bad.spacy: not a spaCy DocBin"):
        load_gold(tmp_path / "bad.spacy")
    DocBin().to_disk(tmp_path / "empty.spacy")
    with pytest.raises(ValueError, match="empty.spacy: the DocBin has no documents"):
        load_gold(tmp_path / "empty.spacy")


def make_ruler(path: Optional[Path] = None, patterns: Sequence[Tuple[str, str]] = ()) -> spacy.Language:
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": label, "pattern": text} for text, label in patterns])
    if path is not None:
        nlp.to_disk(path)
    return nlp


RULER_PATTERNS = [("Acme Corp", "ORG"), ("Boston", "LOC"), ("Beta", "ORG")]


def ruler_gold() -> List[Doc]:
    # gold tokens differ from the blank English tokenizer ("don't", "Corp.")
    return [
        make_doc(["We", "don't", "sue", "Acme", "Corp", "in", "Boston", "."], [(3, 5, "ORG"), (6, 7, "LOC")],
                 spaces=[True, True, True, True, True, True, False, False]),
        make_doc(["Beta", "met", "Jane", "."], [(0, 1, "ORG"), (2, 3, "PER")], spaces=[True, True, False, False]),
    ]


def test_evaluate_pipeline():
    nlp = make_ruler(patterns=RULER_PATTERNS)
    result = evaluate_pipeline(nlp, ruler_gold(), batch_size=1, progress=False)
    assert result["ents_p"] == 1.0 and result["ents_r"] == pytest.approx(3 / 4)
    assert result["errors"]["sample"][0]["gold"] == {"label": "PER", "text": "Jane"}
    speed = result["speed"]
    assert speed["docs"] == 2 and speed["words"] == 9 + 4 and speed["batch_size"] == 1
    assert speed["seconds"] > 0 and speed["words_per_second"] == pytest.approx(13 / speed["seconds"])
    with pytest.raises(ValueError, match="batch_size"):
        evaluate_pipeline(nlp, ruler_gold(), batch_size=0)


def test_evaluate_pipeline_scores_a_spans_key(tmp_path):
    # a span ruler writes doc.spans["general"] and no entities, like the multi-task general head
    nlp = spacy.blank("en")
    nlp.add_pipe("span_ruler", config={"spans_key": "general"}).add_patterns(
        [{"label": label, "pattern": text} for text, label in RULER_PATTERNS])
    assert evaluate_pipeline(nlp, ruler_gold(), progress=False)["ents_r"] == 0.0  # doc.ents: nothing found
    result = evaluate_pipeline(nlp, ruler_gold(), progress=False, spans_key="general")
    assert result["ents_p"] == 1.0 and result["ents_r"] == pytest.approx(3 / 4)
    with pytest.raises(ValueError, match=r"predicted doc 0: no doc.spans\['other'\]"):
        evaluate_pipeline(nlp, ruler_gold(), progress=False, spans_key="other")
    # overlapping spans cannot be entities: a clear error rather than a silent choice
    nlp.get_pipe("span_ruler").add_patterns([{"label": "ORG", "pattern": "Corp in"}])
    with pytest.raises(ValueError, match="cannot be scored as entities"):
        evaluate_pipeline(nlp, ruler_gold(), progress=False, spans_key="general")
    # the CLI: --spans-key, and its conflict with --robustness
    nlp.get_pipe("span_ruler").clear()
    nlp.get_pipe("span_ruler").add_patterns([{"label": label, "pattern": text} for text, label in RULER_PATTERNS])
    nlp.to_disk(tmp_path / "model")
    DocBin(docs=ruler_gold()).to_disk(tmp_path / "gold.spacy")
    runner = CliRunner()
    base = ["evaluate", str(tmp_path / "model"), str(tmp_path / "gold.spacy"), "-o", str(tmp_path / "m.json"), "--no-progress"]
    res = runner.invoke(app, base + ["--spans-key", "general"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "m.json").read_text())["ents_p"] == 1.0
    res = runner.invoke(app, base + ["--spans-key", "general", "--robustness"])
    assert res.exit_code == 1 and "cannot be combined" in res.output


def test_report_markdown_and_atomic_write(tmp_path):
    pred, gold = fixture_docs()
    result = evaluate_docs(pred, gold)
    result["robustness"] = {"seed": 0, "noise_rate": 0.2, "skipped": {}, "rows": [
        {"perturbation": "clean", "ents_p": 0.5, "ents_r": 0.5, "ents_f": 0.5, "delta_f": 0.0, "entities_changed": 0, "entities": 7},
        {"perturbation": "upper", "ents_p": 0.25, "ents_r": 0.25, "ents_f": 0.25, "delta_f": -0.25, "entities_changed": 7, "entities": 7},
    ]}
    text = report_markdown(result)
    assert "| all | 16.67 | 14.29 | 15.38 |" in text
    assert "| ORG | 100.00 | 25.00 | 40.00 | 1 | 0 | 3 | 4 |" in text
    assert "| B-ORG | 1.0000 | 0.2500 | 0.4000 | 4 |" in text
    assert "| ORG | 1 | 0 | 1 | 1 | 1 |" in text  # confusion row: ORG -> LOC, MISC, ORG, PER, O
    assert "| label | 0 | Google (ORG) | Google (PER) | Apple sued [[{{Google}}]] in New York . |" in text
    assert "| upper | 25.00 | 25.00 | 25.00 | -25.00 | 7/7 |" in text
    output, markdown = tmp_path / "out" / "m.json", tmp_path / "out" / "r.md"
    write_report(result, output=output, markdown=markdown)
    assert srsly.read_json(output)["ents_f"] == pytest.approx(2 / 13)
    assert markdown.read_text(encoding="utf8") == text
    # a failing write leaves neither file: a directory in the way, or a result the report cannot render
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    with pytest.raises(IsADirectoryError, match="blocked: is a directory"):
        write_report(result, output=tmp_path / "new.json", markdown=blocked)
    broken = {k: v for k, v in result.items() if k != "confusion"}
    with pytest.raises(KeyError):
        write_report(broken, output=tmp_path / "new.json", markdown=tmp_path / "new.md")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked", "out"]


def test_cli_end_to_end(tmp_path):
    model = tmp_path / "model"
    make_ruler(model, RULER_PATTERNS + [("Gamma", "ORG")])
    gold_path, pool_path = tmp_path / "gold.spacy", tmp_path / "pool.spacy"
    DocBin(docs=ruler_gold()).to_disk(gold_path)
    DocBin(docs=[make_doc(["Gamma", "won"], [(0, 1, "ORG")])]).to_disk(pool_path)
    gold_map = tmp_path / "gold_map.json"
    srsly.write_json(gold_map, {"PER": None})
    output, markdown = tmp_path / "metrics.json", tmp_path / "report.md"
    runner = CliRunner()
    args = ["evaluate", str(model), str(gold_path), "--output", str(output), "--markdown", str(markdown),
            "--gold-map", str(gold_map), "--robustness", "--pool", str(pool_path), "--batch-size", "2", "--no-progress"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    data = json.loads(output.read_text())
    for key in ("ents_p", "ents_r", "ents_f", "ents_per_type", "token_report", "confusion", "errors", "speed", "robustness",
                "units", "ents_f_interval"):
        assert key in data
    assert data["ents_f_interval"]["n_resamples"] == 1000 and data["ents_f_interval"]["f"] == data["ents_f"]
    assert data["ents_f"] == 1.0  # Jane (PER) dropped from the gold by the map
    rows = {r["perturbation"]: r for r in data["robustness"]["rows"]}
    assert list(rows)[0] == "clean" and set(rows) == {"clean", "upper", "lower", "title", "upper_passages", "typos", "swap", "whitespace", "punctuation", "natural", "spaced"}
    assert rows["upper"]["ents_f"] == 0.0 and rows["swap"]["ents_f"] == 1.0
    assert "## Robustness" in markdown.read_text()
    assert "P 100.00" in res.output
    # without a pool the swap row is left out, with a warning
    res = runner.invoke(app, ["evaluate", str(model), str(gold_path), "-o", str(output), "--robustness", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "swap" not in {r["perturbation"] for r in json.loads(output.read_text())["robustness"]["rows"]}
    assert "no --pool" in res.output
    # a subset of the suite, without the swap warning
    res = runner.invoke(app, ["evaluate", str(model), str(gold_path), "-o", str(output), "--robustness", "--no-progress",
                              "--perturbations", "upper, lower", "--bootstrap", "0"])
    assert res.exit_code == 0 and "no --pool" not in res.output, res.output
    assert "ents_f_interval" not in json.loads(output.read_text())  # --bootstrap 0: no interval
    assert [r["perturbation"] for r in json.loads(output.read_text())["robustness"]["rows"]] == ["clean", "upper", "lower"]
    # bad input: clear errors, exit status 1, nothing written
    for bad_args, message in (
        ([str(model), str(tmp_path / "missing.spacy")], "missing.spacy: no such file"),
        ([str(tmp_path / "nomodel"), str(gold_path)], "cannot load the pipeline"),
        ([str(model), str(gold_path), "--pool", str(pool_path)], "--pool is only used with --robustness"),
        ([str(model), str(gold_path), "--perturbations", "upper"], "--perturbations is only used with --robustness"),
        ([str(model), str(gold_path), "--bootstrap", "-1"], "--bootstrap must be >= 0"),
        ([str(model), str(gold_path), "--robustness", "--perturbations", "upper,shout"], "unknown perturbations ['shout']"),
    ):
        res = runner.invoke(app, ["evaluate", *bad_args, "-o", str(tmp_path / "never.json")])
        assert res.exit_code == 1 and message in res.output, res.output
        assert not (tmp_path / "never.json").exists()


def chunked_gold():
    """Two source documents, the first cut into two Docs as `convert` cuts token corpora; one Doc without id."""
    vocab = Vocab()
    parts = [("f1", ["Acme", "Corp", "sued", "."], [(0, 2, "ORG")]), ("f1", ["Acme", "Corp", "lost", "."], []),
             ("f2", ["Jane", "won", "."], [(0, 1, "PER")]), (None, ["Zeta", "."], [])]
    docs = []
    for doc_id, words, ents in parts:
        doc = Doc(vocab, words=words, spaces=[True] * len(words))
        doc.ents = [Span(doc, s, e, label=label) for s, e, label in ents]
        if doc_id is not None:
            doc.user_data["doc_id"] = doc_id
        docs.append(doc)
    return docs


def test_whole_documents_join_the_docs_of_one_source_document():
    joined = whole_documents(chunked_gold())
    assert [d.text for d in joined] == ["Acme Corp sued . Acme Corp lost . ", "Jane won . ", "Zeta . "]
    assert [d.user_data.get("doc_id") for d in joined] == ["f1", "f2", None]
    assert [(e.text, e.label_) for e in joined[0].ents] == [("Acme Corp", "ORG")]


@spacy.Language.component("test_first_mention_labels_the_rest")
def first_mention_labels_the_rest(doc):
    # a document-level component: the second "Acme Corp" is found only when the first is in the same Doc
    starts = [i for i in range(len(doc) - 1) if doc[i].text == "Acme" and doc[i + 1].text == "Corp"]
    if len(starts) > 1:
        doc.ents = [Span(doc, i, i + 2, label="ORG") for i in starts]
    return doc


def test_cli_scores_whole_documents_by_default(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("test_first_mention_labels_the_rest")
    nlp.to_disk(tmp_path / "model")
    docs = chunked_gold()
    docs[1].ents = [Span(docs[1], 0, 2, label="ORG")]  # both mentions are gold
    DocBin(docs=docs, store_user_data=True).to_disk(tmp_path / "gold.spacy")
    base = ["evaluate", str(tmp_path / "model"), str(tmp_path / "gold.spacy"), "--no-progress", "--bootstrap", "0"]
    assert CliRunner().invoke(app, [*base, "-o", str(tmp_path / "whole.json")]).exit_code == 0
    assert CliRunner().invoke(app, [*base, "-o", str(tmp_path / "parts.json"), "--no-whole-documents"]).exit_code == 0
    whole, parts = srsly.read_json(tmp_path / "whole.json"), srsly.read_json(tmp_path / "parts.json")
    assert whole["speed"]["docs"] == 3 and parts["speed"]["docs"] == 4
    assert whole["ents_per_type"]["ORG"]["r"] == 1.0 and parts["ents_per_type"]["ORG"]["r"] == 0.0
