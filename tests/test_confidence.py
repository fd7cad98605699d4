import math

import numpy
import pytest
import spacy
from spacy.tokens import Doc
from spacy.training import Example

from conftest import LEGAL_TEXTS
from spacy_domain_ner.evaluation.calibration import (calibrate, expected_calibration_error, fit_isotonic, fit_temperature,
                                                     plot_reliability, precision_above)
from spacy_domain_ner.evaluation.confidence import calibrated, check_settings, entity_confidence, greedy_entity_scores


@pytest.fixture(scope="module")
def trained(one_torch_thread):
    nlp = spacy.blank("en")
    nlp.add_pipe("ner")
    examples = [Example.from_dict(nlp.make_doc(text), {"entities": ents}) for text, ents in LEGAL_TEXTS]
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(40):
        nlp.update(examples, sgd=optimizer, drop=0.0, losses={})
    nlp.add_pipe("entity_confidence", before="ner")
    return nlp


def gold_docs(nlp):
    docs = []
    for text, ents in LEGAL_TEXTS:
        doc = nlp.make_doc(text)
        doc.ents = [doc.char_span(s, e, label=label) for s, e, label in ents]
        docs.append(doc)
    return docs


def test_every_ner_entity_gets_a_confidence(trained):
    texts = [text for text, _ in LEGAL_TEXTS] + ["Jane Doe sued the Commission in Ohio."]
    for doc in trained.pipe(texts):
        assert doc.ents
        for ent in doc.ents:
            assert 0.0 <= ent._.confidence <= 1.0
        # the replay builds exactly the entities ner sets
        assert [(s, e, label) for s, e, label, _ in doc._.ent_confidences] == [(e.start, e.end, e.label_) for e in doc.ents]
    doc = trained(LEGAL_TEXTS[0][0])
    assert doc.char_span(0, 3)._.confidence is None  # not an entity of ner


def test_replay_matches_greedy_ner_without_confidence(trained):
    texts = [text for text, _ in LEGAL_TEXTS]
    with trained.select_pipes(disable=["entity_confidence"]):
        plain = [[(e.start, e.end, e.label_) for e in doc.ents] for doc in trained.pipe(texts)]
    replayed = greedy_entity_scores(trained.get_pipe("ner"), [trained.make_doc(t) for t in texts])
    assert [[(s, e, label) for s, e, label, _ in doc] for doc in replayed] == plain


def test_replay_with_preset_entities_and_cached_validity_matches_the_transition_system(trained, monkeypatch):
    # preset entities (an entity ruler before ner) constrain the valid actions; validity is cached per
    # validity_key, so the same replay with the cache defeated must choose the same actions and scores
    from spacy_domain_ner.evaluation import confidence

    def preset(text):
        doc = trained.make_doc(text)
        doc.ents = [doc.char_span(0, len(text.split()[0]), label="COURT")]
        return doc

    texts = [text for text, _ in LEGAL_TEXTS]
    cached = greedy_entity_scores(trained.get_pipe("ner"), [preset(t) for t in texts])
    calls = iter(range(10**9))
    monkeypatch.setattr(confidence, "validity_key", lambda doc, state, label: next(calls))  # never the same key
    uncached = greedy_entity_scores(trained.get_pipe("ner"), [preset(t) for t in texts])
    flat = lambda result: [(s, e, label, [(list(scores), best) for scores, best in steps]) for doc in result for s, e, label, steps in doc]
    assert flat(cached) == flat(uncached)
    assert all(doc[0][:3] == (0, 1, "COURT") for doc in cached)  # the preset entity is kept
    with trained.select_pipes(disable=["entity_confidence"]):
        assert [[(s, e, label) for s, e, label, _ in doc] for doc in cached] == [
            [(e.start, e.end, e.label_) for e in trained.get_pipe("ner")(preset(t)).ents] for t in texts]


def test_entity_confidence_math():
    steps = [(numpy.array([2.0, 0.0]), 0), (numpy.array([1.0, 1.0, 1.0]), 1)]
    p1, p2 = 1 / (1 + math.exp(-2.0)), 1 / 3
    assert entity_confidence(steps) == pytest.approx(math.sqrt(p1 * p2))
    assert entity_confidence(steps, aggregate="min") == pytest.approx(p2)
    # a higher temperature softens the peaked step, a lower one sharpens it
    assert entity_confidence(steps[:1], temperature=2.0) == pytest.approx(1 / (1 + math.exp(-1.0)))
    assert entity_confidence(steps[:1], temperature=0.5) > p1
    assert entity_confidence([(numpy.array([5.0]), 0)]) == 1.0  # one valid action: certain


def test_settings_are_checked():
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match="temperature must be > 0"):
        nlp.add_pipe("entity_confidence", config={"temperature": 0.0})
    with pytest.raises(ValueError, match="aggregate must be one of"):
        nlp.add_pipe("entity_confidence", config={"aggregate": "mean"})


def test_expected_calibration_error():
    result = expected_calibration_error([0.95, 0.95, 0.15, 0.15, 1.0], [True, False, False, False, True], n_bins=10)
    assert result["n"] == 5 and sum(b["count"] for b in result["bins"]) == 5
    top = result["bins"][9]
    assert top["count"] == 3 and top["confidence"] == pytest.approx((0.95 + 0.95 + 1.0) / 3) and top["accuracy"] == pytest.approx(2 / 3)
    expected = 3 / 5 * abs(2 / 3 - 2.9 / 3) + 2 / 5 * abs(0.0 - 0.15)
    assert result["ece"] == pytest.approx(expected)
    assert expected_calibration_error([], [])["ece"] is None
    with pytest.raises(ValueError, match="2 confidences but 1"):
        expected_calibration_error([0.1, 0.2], [True])


def test_fit_temperature_softens_overconfident_scores():
    # sharp scores, half of them wrong: a temperature above 1 brings the confidence toward 0.5
    predictions = [([(numpy.array([6.0, 0.0]), 0)], i % 2 == 0) for i in range(20)]
    assert fit_temperature(predictions) > 1.0
    assert fit_temperature([]) == 1.0


def test_fit_isotonic_maps_scores_to_the_share_correct():
    # scores 0.9 are right half the time, 0.95 always: the map is monotone and says so
    mapping = fit_isotonic([0.9, 0.9, 0.95, 0.95, 0.3], [True, False, True, True, False])
    assert calibrated(0.9, mapping) == pytest.approx(0.5) and calibrated(0.95, mapping) == pytest.approx(1.0)
    assert calibrated(0.3, mapping) == 0.0 and calibrated(0.99, mapping) == 1.0  # clipped outside the knots
    assert calibrated(0.6, mapping) == pytest.approx(0.25)  # linear between knots
    assert calibrated(0.42, None) == 0.42
    assert fit_isotonic([], []) is None
    with pytest.raises(ValueError, match="2 confidences but 1"):
        fit_isotonic([0.1, 0.2], [True])


def test_check_settings_rejects_bad_calibration_maps():
    check_settings(temperature=1.0, aggregate="gmean", calibration={"x": [0.1, 0.5], "y": [0.0, 0.7]})
    for bad in ({"x": [], "y": []}, {"x": [0.1], "y": [0.1, 0.2]}, {"x": [0.5, 0.1], "y": [0.1, 0.2]},
                {"x": [0.1, 0.5], "y": [0.7, 0.2]}, {"x": [0.1], "y": [1.5]}):
        with pytest.raises(ValueError, match="calibration"):
            check_settings(temperature=1.0, aggregate="gmean", calibration=bad)


def test_precision_above_thresholds():
    rows = precision_above([0.95, 0.85, 0.55, 0.2], [True, False, True, False], thresholds=(0.5, 0.9, 0.99))
    assert rows == [{"threshold": 0.5, "kept": 3, "share": 0.75, "precision": pytest.approx(2 / 3)},
                    {"threshold": 0.9, "kept": 1, "share": 0.25, "precision": 1.0},
                    {"threshold": 0.99, "kept": 0, "share": 0.0, "precision": None}]


def test_calibrate_stores_the_temperature_and_plot(trained, tmp_path):
    nlp = trained
    report = calibrate(nlp, gold_docs(nlp))
    assert report["temperature"] == nlp.get_pipe("entity_confidence").cfg["temperature"] > 0
    assert report["calibration"] == nlp.get_pipe("entity_confidence").cfg["calibration"] is not None
    assert report["after"]["n"] == report["before"]["n"] == report["cross_validated"]["n"] > 0
    assert [r["threshold"] for r in report["thresholds"]] == [0.5, 0.6, 0.7, 0.8, 0.9] and report["default_threshold"] == 0.8
    png = plot_reliability(report["after"], tmp_path / "reliability.png")
    assert png.read_bytes().startswith(b"\x89PNG")
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert loaded.get_pipe("entity_confidence").cfg == nlp.get_pipe("entity_confidence").cfg  # floats saved exactly
    doc = loaded(LEGAL_TEXTS[1][0])
    assert all(0.0 <= ent._.confidence <= 1.0 for ent in doc.ents)
    assert isinstance(doc, Doc)
    nlp.get_pipe("entity_confidence").cfg.update(temperature=1.0, calibration=None)


def test_add_confidence_cli(trained, tmp_path):
    import json

    from spacy.tokens import DocBin
    from typer.testing import CliRunner

    from spacy_domain_ner.cli import app

    plain = spacy.blank("en")
    plain.add_pipe("ner", source=trained)
    plain.to_disk(tmp_path / "model")
    DocBin(docs=gold_docs(trained)).to_disk(tmp_path / "dev.spacy")
    out = tmp_path / "calibrated"
    res = CliRunner().invoke(app, ["add-confidence", str(tmp_path / "model"), str(tmp_path / "dev.spacy"), str(out),
                                   "--report", str(tmp_path / "metrics" / "calibration.json"), "--plot", str(tmp_path / "reliability.png")])
    assert res.exit_code == 0, res.output
    assert "temperature" in res.output and "ECE" in res.output
    nlp = spacy.load(out)
    assert nlp.pipe_names == ["entity_confidence", "ner"]
    report = json.loads((tmp_path / "metrics" / "calibration.json").read_text())  # its folder is created
    assert nlp.get_pipe("entity_confidence").cfg["temperature"] == report["temperature"]
    assert nlp.get_pipe("entity_confidence").cfg["calibration"] == report["calibration"]  # both saved with exact floats
    assert "cross-validated" in res.output and "confidence >= 0.8" in res.output
    assert (tmp_path / "reliability.png").read_bytes().startswith(b"\x89PNG")
    res = CliRunner().invoke(app, ["add-confidence", str(tmp_path / "model"), str(tmp_path / "dev.spacy"), str(out), "--ner", "nope"])
    assert res.exit_code == 1 and "no component 'nope'" in res.output


def test_span_confidence_follows_the_scores_list():
    # `Span._.confidence` reads an index of Doc._.ent_confidences that must follow the list.
    from spacy.tokens import DocBin
    nlp = spacy.blank("en")
    doc = nlp("Acme Corp sued Beta LLC in Ohio .")
    acme, beta = doc[0:2], doc[3:5]
    assert acme._.confidence is None  # no scores yet
    doc._.ent_confidences = [[0, 2, "", 0.25]]
    assert acme._.confidence == 0.25 and beta._.confidence is None
    doc._.ent_confidences.append([3, 5, "", 0.5])  # grown in place
    assert beta._.confidence == 0.5
    doc._.ent_confidences[0][3] = 0.75  # changed in place
    assert acme._.confidence == 0.75
    doc._.ent_confidences = [[0, 2, "ORG", 0.125], [0, 2, "ORG", 0.9]]  # replaced; label must match
    assert acme._.confidence is None
    acme_org = doc.char_span(0, 9, label="ORG")
    assert acme_org._.confidence == 0.125  # the first entry wins, as before the index
    restored = list(DocBin(docs=[doc], store_user_data=True).get_docs(nlp.vocab))[0]
    assert restored.char_span(0, 9, label="ORG")._.confidence == 0.125
