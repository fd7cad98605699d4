"""Tests of benchmarks/review_simulation.py: review by confidence against random, simulated with the gold."""
import json

import pytest
import spacy
from spacy.tokens import Doc

from conftest import load_benchmark

simulation = load_benchmark("review_simulation")


def _doc(nlp, text, doc_id):
    doc = nlp.make_doc(text)
    if doc_id is not None:
        doc.user_data["doc_id"] = doc_id
    return doc


def test_docs_group_by_document_and_split_is_seeded():
    nlp = spacy.blank("en")
    docs = [_doc(nlp, "a", "f1"), _doc(nlp, "b", "f2"), _doc(nlp, "c", "f1"), _doc(nlp, "d", None)]
    groups = simulation.group_docs(docs)
    assert list(groups) == ["f1", "f2", "#3"] and [d.text for d in groups["f1"]] == ["a", "c"]
    start, pool = simulation.split_groups(list(groups), share=0.5, seed=0)
    assert sorted(start + pool) == sorted(groups) and len(start) == 2 and len(pool) == 1
    assert simulation.split_groups(list(groups), share=0.5, seed=0) == (start, pool)
    assert simulation.split_groups(list(groups), share=0.01, seed=0)[0]  # never an empty start set
    with pytest.raises(ValueError):
        simulation.split_groups(["only"], share=0.5, seed=0)


def test_selection_takes_the_least_sure_documents_until_the_budget():
    records = [
        {"id": "sure", "entities": [{"confidence": 0.99}], "gold": 5},
        {"id": "unsure", "entities": [{"confidence": 0.2}, {"confidence": 0.4}], "gold": 3},
        {"id": "middling", "entities": [{"confidence": 0.7}], "gold": 4},
        {"id": "nothing", "entities": [], "gold": 2},
    ]
    assert simulation.select(records, strategy="lowest-mean", budget=3, seed=0) == ["unsure"]
    assert simulation.select(records, strategy="lowest-mean", budget=4, seed=0) == ["unsure", "middling"]
    assert simulation.select(records, strategy="lowest-mean", budget=100, seed=0) == ["unsure", "middling", "sure", "nothing"]
    randomly = simulation.select(records, strategy="random", budget=100, seed=1)
    assert sorted(randomly) == sorted(r["id"] for r in records)
    assert randomly == simulation.select(records, strategy="random", budget=100, seed=1)


def test_markdown_names_the_interval_against_random():
    result = {"start": {"documents": 3, "f": 0.5, "cpu_seconds": 10.0}, "rows": [
        {"strategy": "lowest-mean", "budget": 10, "documents": ["a"], "entities": 12, "f": 0.6, "cpu_seconds": 5.0,
         "against_random": {"difference": 0.02, "low": -0.01, "high": 0.05}},
        {"strategy": "random", "budget": 10, "documents": ["b", "c"], "entities": 11, "f": 0.58, "cpu_seconds": 5.0}]}
    text = simulation.markdown(result)
    assert "| lowest-mean | 10 | 1 | 12 | 60.00 | +2.00 (-1.00 to +5.00) | 5 |" in text
    assert "| random | 10 | 2 | 11 | 58.00 |  | 5 |" in text
    assert simulation.plot(result["rows"], 0.5).startswith(b"\x89PNG")


@pytest.mark.slow
def test_simulation_runs_on_the_embedded_sample(tmp_path):
    from spacy_domain_ner.corpus.convert import convert

    convert([simulation.ROOT / "assets" / "legal_sample.jsonl"], tmp_path / "corpus", split=(0.8, 0.2), seed=0)
    train, dev = tmp_path / "corpus" / "train.spacy", tmp_path / "corpus" / "dev.spacy"
    overrides = ["--training.batcher.size", "500", "--training.max_steps", "4", "--training.eval_frequency", "2",
                 "--training.optimizer.learn_rate.warmup_steps", "1"]
    result = simulation.simulate(train, dev, tmp_path / "out" / "sim", config=simulation.ROOT / "configs" / "ner_hybrid.cfg",
                                 budgets=[30], strategies=["lowest-mean", "random"], start_share=0.5, seed=0,
                                 update_steps=2, overrides=overrides)
    assert [(r["strategy"], r["budget"]) for r in result["rows"]] == [("lowest-mean", 30), ("random", 30)]
    assert all(r["entities"] >= 30 and r["cpu_seconds"] > 0 for r in result["rows"])
    assert "against_random" in result["rows"][0] and "against_random" not in result["rows"][1]
    assert json.loads((tmp_path / "out" / "sim.json").read_text(encoding="utf8"))["start"]["pool"] == result["start"]["pool"]
    assert (tmp_path / "out" / "sim.png").read_bytes().startswith(b"\x89PNG")
