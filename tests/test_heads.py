"""The multi-task general NER head and the multi-task / mixed configs, on a tiny BERT."""
import io
import pickle
from pathlib import Path
from typing import Dict, List, Tuple

import numpy
import pytest
import spacy
from spacy.attrs import ENT_IOB, ENT_KB_ID, ENT_TYPE
from spacy.tokens import DocBin, Span
from spacy.training import Example
from spacy.training.initialize import init_nlp
from spacy.training.loop import train
from spacy.util import fix_random_seed, load_config, load_model_from_config, registry
from thinc.api import SGD, Adam

import spacy_domain_ner.training.heads as heads
from conftest import LEGAL_TEXTS, load_benchmark, save_tiny_bert
from spacy_domain_ner.training.heads import (
    GeneralEntityRecognizer,
    check_last_listener,
    general_example,
    pipeline_without,
    score_general_ents,
)
from spacy_domain_ner.training.mixing import DOMAIN_KEY, GENERAL, LEGAL

CONFIGS = Path(__file__).parent.parent / "configs"
READER = "spacy_domain_ner.MixedCorpus.v1"
NEWS_TEXTS = [
    ("Germany beat England in London on Sunday.", [(0, 7, "LOC"), (13, 20, "LOC"), (24, 30, "LOC")]),
    ("Reuters reported that Peter Blackburn visited the European Union.",
     [(0, 7, "ORG"), (22, 37, "PER"), (50, 64, "ORG")]),
]
LEGAL_LABELS = ("BUSINESS", "COURT", "GOVERNMENT", "LEGISLATION/ACT", "LOCATION", "PERSON")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory) -> Path:
    """A tiny BERT (no dropout) with a tokenizer covering the test texts."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), (text for text, _ in LEGAL_TEXTS + NEWS_TEXTS))


def _docbin(path: Path, data: List[Tuple[str, list]]) -> Path:
    nlp = spacy.blank("en")
    db = DocBin()
    for text, spans in data:
        doc = nlp.make_doc(text)
        doc.ents = [doc.char_span(s, e, label=label) for s, e, label in spans]
        db.add(doc)
    db.to_disk(path)
    return path


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> Dict[str, Path]:
    path = tmp_path_factory.mktemp("corpora")
    return {"legal": _docbin(path / "legal.spacy", LEGAL_TEXTS), "news": _docbin(path / "news.spacy", NEWS_TEXTS)}


def _overrides(bert_dir: Path, corpora: Dict[str, Path], **extra) -> Dict:
    values = {
        "paths.transformer": str(bert_dir),
        "paths.train": str(corpora["legal"]),
        "paths.dev": str(corpora["legal"]),
        "paths.general_train": str(corpora["news"]),
        "training.max_steps": 4,
        "training.eval_frequency": 2,
    }
    values.update(extra)
    return values


def _pipeline(bert_dir: Path, corpora: Dict[str, Path], **extra):
    config = load_config(CONFIGS / "ner_multitask.cfg", overrides=_overrides(bert_dir, corpora, **extra), interpolate=True)
    return load_model_from_config(config, auto_fill=True)


def _examples(nlp, corpora: Dict[str, Path]) -> List[Example]:
    reader = registry.readers.get(READER)(legal_path=corpora["legal"], general_path=corpora["news"], ratio=None)
    return list(reader(nlp))


def _domain(eg: Example) -> str:
    return eg.reference.user_data[DOMAIN_KEY]


def _ents(doc) -> List[Tuple[str, str]]:
    return [(e.text, e.label_) for e in doc.ents]


def _spans(doc, key: str = "general") -> List[Tuple[str, str]]:
    return [(s.text, s.label_) for s in doc.spans[key]]


def _transformer_weights(nlp) -> Dict[str, numpy.ndarray]:
    (shim,) = [shim for node in nlp.get_pipe("transformer").model.walk() for shim in node.shims]
    return {name: value.detach().numpy().copy() for name, value in shim._model.state_dict().items()}


def _step(nlp, examples: List[Example], optimizer, losses: Dict[str, float]) -> Dict[str, float]:
    # As spaCy's loop: update every component, then apply the gradients. (nlp.update
    # with an optimizer would step the transformer before its listeners backprop.)
    nlp.update(examples, sgd=False, losses=losses, drop=0.0)
    for _, proc in nlp.pipeline:
        if getattr(proc, "is_trainable", False):
            proc.finish_update(optimizer)
    return losses


@pytest.fixture(scope="module")
def trained(bert_dir, corpora):
    """The multi-task pipeline, overfit on the two tiny corpora."""
    fix_random_seed(0)
    nlp = _pipeline(bert_dir, corpora)
    examples = _examples(nlp, corpora)
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.01)
    for _ in range(80):
        _step(nlp, examples, optimizer, {})
    return nlp, examples


# Per-head supervision


def test_general_example_reads_the_span_group_or_is_missing():
    nlp = spacy.blank("en")
    news = nlp.make_doc("Peter Blackburn flew to Paris")
    news.spans["general"] = [Span(news, 0, 2, "PER"), Span(news, 4, 5, "LOC")]
    news.set_ents([], default="missing")
    eg = general_example(Example(nlp.make_doc(news.text), news), spans_key="general")
    assert _ents(eg.reference) == [("Peter Blackburn", "PER"), ("Paris", "LOC")]
    assert [t.ent_iob_ for t in eg.reference] == ["B", "I", "O", "O", "B"]
    assert not news.has_annotation("ENT_IOB")  # the reader's reference is not modified
    legal = nlp.make_doc("Acme sued")
    legal.ents = [Span(legal, 0, 1, "BUSINESS")]
    eg = general_example(Example(nlp.make_doc(legal.text), legal), spans_key="general")
    assert not eg.reference.has_annotation("ENT_IOB") and _ents(legal) == [("Acme", "BUSINESS")]


def test_each_head_has_gold_only_on_its_own_domain(trained):
    nlp, examples = trained
    ner, general = nlp.get_pipe("ner"), nlp.get_pipe("general_ner")
    for eg in examples:
        assert ner.moves.has_gold(eg) == (_domain(eg) == LEGAL)
        assert general.moves.has_gold(general_example(eg, spans_key="general")) == (_domain(eg) == GENERAL)
    assert ner.labels == LEGAL_LABELS and general.labels == ("LOC", "ORG", "PER")


def test_a_batch_of_one_domain_trains_only_its_head(bert_dir, corpora):
    nlp = _pipeline(bert_dir, corpora)
    examples = _examples(nlp, corpora)
    nlp.initialize(lambda: examples)
    legal = [eg for eg in examples if _domain(eg) == LEGAL]
    news = [eg for eg in examples if _domain(eg) == GENERAL]
    losses: Dict[str, float] = {}
    _step(nlp, news, SGD(0.1, L2=0.0), losses)
    assert losses["ner"] == 0.0 and losses["general_ner"] > 0.0
    losses = {}
    _step(nlp, legal, SGD(0.1, L2=0.0), losses)
    assert losses["general_ner"] == 0.0 and losses["ner"] > 0.0


@pytest.mark.parametrize("domain", [LEGAL, GENERAL])
def test_the_shared_transformer_learns_from_either_domain(bert_dir, corpora, domain):
    nlp = _pipeline(bert_dir, corpora)
    examples = _examples(nlp, corpora)
    nlp.initialize(lambda: examples)
    before = _transformer_weights(nlp)
    _step(nlp, [eg for eg in examples if _domain(eg) == domain], SGD(0.1, L2=0.0), {})
    after = _transformer_weights(nlp)
    assert not numpy.array_equal(before["embeddings.word_embeddings.weight"], after["embeddings.word_embeddings.weight"])


def test_without_the_zero_backprop_a_legal_batch_never_reaches_the_transformer(bert_dir, corpora, monkeypatch):
    # Why GeneralEntityRecognizer.update releases its listener: as the last
    # listener it runs the transformer's backward pass for the whole batch.
    nlp = _pipeline(bert_dir, corpora)
    examples = _examples(nlp, corpora)
    nlp.initialize(lambda: examples)
    monkeypatch.setattr(heads, "release_listener", lambda pipe, docs, *, drop: None)
    before = _transformer_weights(nlp)
    losses: Dict[str, float] = {}
    _step(nlp, [eg for eg in examples if _domain(eg) == LEGAL], SGD(0.1, L2=0.0), losses)
    assert losses["ner"] > 0.0
    after = _transformer_weights(nlp)
    assert all(numpy.array_equal(before[name], after[name]) for name in before)


def test_general_head_must_be_the_last_listener(bert_dir, corpora):
    nlp = _pipeline(bert_dir, corpora, **{"nlp.pipeline": ["transformer", "general_ner", "ner"]})
    examples = _examples(nlp, corpora)
    with pytest.raises(ValueError, match=r"'general_ner' must be the last of the components listening to 'transformer' \(general_ner, ner\)"):
        nlp.initialize(lambda: examples)
    check_last_listener(_pipeline(bert_dir, corpora), "general_ner")  # the config's order passes


# Both heads train; the general head never touches doc.ents


def test_both_heads_learn_their_own_corpus(trained):
    nlp, _ = trained
    for text, spans in LEGAL_TEXTS:
        assert _ents(nlp(text)) == [(text[s:e], label) for s, e, label in spans]
    for text, spans in NEWS_TEXTS:
        assert _spans(nlp(text)) == [(text[s:e], label) for s, e, label in spans]


def test_general_head_never_overwrites_legal_entities(trained):
    nlp, _ = trained
    for text, _ in LEGAL_TEXTS + NEWS_TEXTS:
        doc = nlp(text)
        with nlp.select_pipes(disable=["general_ner"]):
            legal_only = nlp(text)
        assert _ents(doc) == _ents(legal_only)
        assert doc.to_array([ENT_IOB, ENT_TYPE]).tolist() == legal_only.to_array([ENT_IOB, ENT_TYPE]).tolist()
        assert "general" in doc.spans and "general" not in legal_only.spans


def test_general_head_ignores_and_keeps_preset_entities(trained):
    nlp, _ = trained
    general = nlp.get_pipe("general_ner")
    labels = general.labels
    text = NEWS_TEXTS[1][0]
    with nlp.select_pipes(enable=["transformer"]):
        plain, preset = nlp(text), nlp(text)
    # Entities a previous component set, with a KB id, an O and a missing token.
    preset.set_ents([Span(preset, 0, 1, "BUSINESS", kb_id="Q1"), Span(preset, 3, 6, "GOVERNMENT")],
                    missing=[preset[7:8]], default="outside")
    saved = preset.to_array([ENT_IOB, ENT_TYPE, ENT_KB_ID])
    general(plain)
    general(preset)
    assert numpy.array_equal(preset.to_array([ENT_IOB, ENT_TYPE, ENT_KB_ID]), saved)
    assert _spans(preset) == _spans(plain) == [("Reuters", "ORG"), ("Peter Blackburn", "PER"), ("European Union", "ORG")]
    assert general.labels == labels  # the preset labels were not added as moves
    list(general.pipe([preset]))
    assert numpy.array_equal(preset.to_array([ENT_IOB, ENT_TYPE, ENT_KB_ID]), saved)


def test_scores_each_head_on_its_own_references(trained):
    nlp, examples = trained
    scores = nlp.evaluate(examples)
    assert scores["ents_f"] == 1.0 and scores["spans_general_f"] == 1.0
    assert set(scores["ents_per_type"]) == set(LEGAL_LABELS)
    assert set(scores["spans_general_per_type"]) == {"LOC", "ORG", "PER"}
    legal_only = [eg for eg in examples if _domain(eg) == LEGAL]
    assert score_general_ents(legal_only)["spans_general_f"] is None  # no general reference: not scored


# Serialization


def test_pipeline_with_both_heads_round_trips(trained, tmp_path):
    nlp, _ = trained
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert loaded.pipe_names == ["transformer", "ner", "general_ner"]
    assert isinstance(loaded.get_pipe("general_ner"), GeneralEntityRecognizer)
    for text, _ in LEGAL_TEXTS + NEWS_TEXTS:
        doc, again = nlp(text), loaded(text)
        assert _ents(again) == _ents(doc) and _spans(again) == _spans(doc)
    general = nlp.get_pipe("general_ner")
    copy = pickle.loads(pickle.dumps(general))
    assert copy.labels == general.labels and copy.spans_key == "general"
    restored = loaded.get_pipe("general_ner").from_bytes(general.to_bytes())
    assert restored.labels == general.labels and restored.cfg["spans_key"] == "general"


def test_pipeline_without_general_head(trained, tmp_path):
    nlp, _ = trained
    assert pipeline_without(nlp, names=[]) is nlp
    legal = pipeline_without(nlp, names=["general_ner"])
    assert legal.pipe_names == ["transformer", "ner"] and nlp.pipe_names == ["transformer", "ner", "general_ner"]
    legal.to_disk(tmp_path / "legal")
    loaded = spacy.load(tmp_path / "legal")
    assert loaded.pipe_names == ["transformer", "ner"] and "general_ner" not in loaded.config["components"]
    for text, _ in LEGAL_TEXTS:
        assert _ents(loaded(text)) == _ents(nlp(text))
        assert "general" not in loaded(text).spans
    with pytest.raises(ValueError, match=r"\['tagger'\] not in the pipeline"):
        pipeline_without(nlp, names=["tagger"])
    make = registry.callbacks.get("spacy_domain_ner.without_components.v1")
    assert make(names=[])(nlp) is nlp
    with pytest.raises(ValueError, match="names must be a list of component names"):
        make(names="general_ner")


def test_standalone_head_with_its_default_model():
    # The factory's default model has its own tok2vec (no listener).
    nlp = spacy.blank("en")
    general = nlp.add_pipe("general_ner", config={"spans_key": "news"})
    news = nlp.make_doc("Peter Blackburn flew to Paris")
    news.spans["news"] = [Span(news, 0, 2, "PER"), Span(news, 4, 5, "LOC")]
    legal = nlp.make_doc("Acme sued")
    legal.ents = [Span(legal, 0, 1, "BUSINESS")]
    examples = [Example(nlp.make_doc(d.text), d) for d in (news, legal)]
    fix_random_seed(0)
    nlp.initialize(lambda: examples)
    assert general.labels == ("LOC", "PER")
    losses = nlp.update(examples[1:], losses={})
    assert losses["general_ner"] == 0.0
    optimizer = Adam(0.01)
    for _ in range(40):
        nlp.update(examples[:1], sgd=optimizer, losses={})
    assert _spans(nlp(news.text), "news") == [("Peter Blackburn", "PER"), ("Paris", "LOC")]
    assert general.update([], losses={}) == {"general_ner": 0.0}
    with pytest.raises(ValueError, match="spans_key must be a non-empty string"):
        GeneralEntityRecognizer(nlp.vocab, general.model, spans_key="")
    assert nlp.config["training"]["before_to_disk"] is None
    assert pipeline_without(nlp, names=["general_ner"]).pipe_names == [] and nlp.pipe_names == ["general_ner"]


# The configs through init_nlp and spaCy's training loop


@pytest.mark.parametrize("names", [[], ["general_ner"]])
def test_multitask_config_trains_and_saves(bert_dir, corpora, tmp_path, names):
    overrides = _overrides(bert_dir, corpora, **{"paths.general_dev": str(corpora["news"]), "training.before_to_disk.names": names})
    nlp = init_nlp(load_config(CONFIGS / "ner_multitask.cfg", overrides=overrides))
    assert nlp.pipe_names == ["transformer", "ner", "general_ner"]
    assert nlp.get_pipe("ner").labels == LEGAL_LABELS and nlp.get_pipe("general_ner").labels == ("LOC", "ORG", "PER")
    out = io.StringIO()
    train(nlp, tmp_path, stdout=out, stderr=io.StringIO())
    assert "LOSS GENER..." in out.getvalue() and "SPANS_GENE..." in out.getvalue()
    saved = spacy.load(tmp_path / "model-last")
    expected = ["transformer", "ner"] + ([] if names else ["general_ner"])
    assert saved.pipe_names == expected
    # The saved config trains again as it is (it no longer names the dropped head).
    assert saved.config["training"]["before_to_disk"]["names"] == []
    assert "spans_general_f" in saved.meta["performance"]
    doc = saved(NEWS_TEXTS[0][0])
    assert ("general" in doc.spans) == (not names)


def test_mixed_config_trains_one_head_on_legal_labels(bert_dir, corpora, tmp_path):
    overrides = _overrides(bert_dir, corpora, **{"paths.general_label_map": str(CONFIGS / "labels" / "conll_to_legal.json")})
    config = load_config(CONFIGS / "ner_mixed.cfg", overrides=overrides)
    nlp = init_nlp(config)
    assert nlp.pipe_names == ["transformer", "ner"]
    # ORG and MISC are dropped (as missing), PER and LOC became legal classes.
    assert nlp.get_pipe("ner").labels == LEGAL_LABELS
    reader = registry.resolve(config.interpolate()["corpora"])["train"]
    news = [eg.reference for eg in reader(nlp) if _domain(eg) == GENERAL]
    assert {e.label_ for doc in news for e in doc.ents} == {"LOCATION", "PERSON"}
    train(nlp, tmp_path, stdout=io.StringIO(), stderr=io.StringIO())
    saved = spacy.load(tmp_path / "model-last")
    assert saved.pipe_names == ["transformer", "ner"] and saved.get_pipe("ner").labels == LEGAL_LABELS


# The mixed and multi-task configs are variants of the hybrid recipe (spacy_domain_ner.training.variants)


@pytest.mark.parametrize("variant", ["mixed", "multitask"])
def test_mixed_and_multitask_configs_keep_the_recipes_cased_head_and_copies(bert_dir, corpora, variant):
    extra = {"paths.general_label_map": str(CONFIGS / "labels" / "conll_to_legal.json")} if variant == "mixed" else {}
    config = load_config(CONFIGS / f"ner_{variant}.cfg", overrides=_overrides(bert_dir, corpora, **extra))
    assert config["corpora"]["train"]["@readers"] == READER
    assert config["training"]["max_epochs"] == 0  # initialized from the whole sample: every label
    assert config["corpora"]["train"]["augmenter"]["@augmenters"] == "spacy_domain_ner.case_augmenter.v1"
    nlp = init_nlp(config)
    expected = ["transformer", "ner"] + (["general_ner"] if variant == "multitask" else [])
    assert nlp.pipe_names == expected and nlp.get_pipe("ner").labels == LEGAL_LABELS
    assert any(n.name == "hashembed" for n in nlp.get_pipe("ner").model.walk())  # the cased side came along
    assert [t.text for t in nlp("Form 10-K.")][-2:] == ["K", "."]  # and the legal tokenizer rules


@pytest.mark.parametrize("config_name", ["ner_mixed.cfg", "ner_multitask.cfg"])
@pytest.mark.parametrize("streamed", [False, True])
def test_configs_know_a_label_first_seen_after_100_examples(bert_dir, corpora, tmp_path, config_name, streamed):
    # spaCy initializes a streamed corpus (max_epochs = -1) from its first 100 examples. The configs
    # read the whole sample (max_epochs = 0); streamed, the NER's labels must come from the whole
    # legal corpus (spacy_domain_ner.entity_labels.v1).
    texts = [(LEGAL_TEXTS[0][0], [s for s in LEGAL_TEXTS[0][1] if s[2] != "COURT"])] * 150 + [LEGAL_TEXTS[1]]
    assert not any(label == "COURT" for _, spans in texts[:150] for _, _, label in spans)
    legal = _docbin(tmp_path / "legal.spacy", texts)
    overrides = _overrides(bert_dir, {"legal": legal, "news": corpora["news"]})
    if config_name == "ner_mixed.cfg":
        overrides["paths.general_label_map"] = str(CONFIGS / "labels" / "conll_to_legal.json")
    config = load_config(CONFIGS / config_name, overrides=overrides)
    assert config["training"]["max_epochs"] == 0
    if streamed:
        config["training"]["max_epochs"] = -1
        config["initialize"]["components"]["ner"] = {"labels": {"@readers": "spacy_domain_ner.entity_labels.v1",
                                                                 "path": "${paths.train}"}}
    assert "COURT" in init_nlp(config).get_pipe("ner").labels


# The head-only control (benchmarks/headonly_config.py): the encoder sourced, frozen, forward only


def test_headonly_config_trains_the_head_and_leaves_the_encoder(bert_dir, corpora, tmp_path):
    module = load_benchmark("headonly_config")
    recipe = load_config(CONFIGS / "ner_hybrid.cfg", interpolate=False)
    with pytest.raises(ValueError, match="no 'transformer' component"):
        module.save_encoder(load_config(CONFIGS / "ner_cnn.cfg", interpolate=False), str(bert_dir), tmp_path / "none")
    module.save_encoder(recipe, str(bert_dir), tmp_path / "encoder")
    encoder = spacy.load(tmp_path / "encoder")
    assert encoder.pipe_names == ["transformer"]
    config = module.headonly_config(recipe, tmp_path / "encoder")
    assert recipe["training"]["frozen_components"] == [] and "factory" in recipe["components"]["transformer"]
    config.to_disk(tmp_path / "headonly.cfg")
    config = load_config(tmp_path / "headonly.cfg", overrides=_overrides(bert_dir, corpora))
    assert config["training"]["frozen_components"] == config["training"]["annotating_components"] == ["transformer"]
    nlp = init_nlp(config)
    before = _transformer_weights(nlp)
    ner_before = nlp.get_pipe("ner").model.to_bytes()
    (tmp_path / "out").mkdir()
    train(nlp, tmp_path / "out", stdout=io.StringIO(), stderr=io.StringIO())
    saved = spacy.load(tmp_path / "out" / "model-last")
    after = _transformer_weights(saved)
    assert before.keys() == after.keys() and all(numpy.array_equal(before[k], after[k]) for k in before)
    assert nlp.get_pipe("ner").model.to_bytes() != ner_before  # the head learned
    assert saved.get_pipe("ner").labels == LEGAL_LABELS
