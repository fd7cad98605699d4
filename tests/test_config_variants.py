"""The shipped configs other than the recipe are the variants spacy_domain_ner.training.variants makes of it."""
import shutil
from pathlib import Path

import pytest
import spacy
from confection import Config
from spacy.schemas import ConfigSchemaInit, ConfigSchemaTraining
from spacy.tokens import DocBin
from spacy.training import Example
from spacy.util import load_config, load_model_from_config, registry

from spacy_domain_ner.training.variants import BASE, REGENERATE, VARIANTS, load_base, main, variant_configs, write_variants

from conftest import save_tiny_bert

CONFIGS = Path(__file__).parent.parent / "configs"
NAMES = sorted(VARIANTS)
BASE_PATHS = ["train", "dev", "vectors", "init_tok2vec", "transformer"]
TEXT = "The Securities and Exchange Commission sued Acme Holdings in New York ."
ENTS = [(4, 38, "GOVERNMENT"), (44, 57, "BUSINESS"), (61, 69, "LOCATION")]
NEWS_TEXT = "Peter Blackburn visited Paris ."
NEWS_ENTS = [(0, 15, "PER"), (24, 29, "LOC")]


def shipped(name: str) -> Config:
    return Config().from_disk(CONFIGS / name, interpolate=False)


@pytest.fixture(scope="module")
def base() -> Config:
    return load_base(CONFIGS)


@pytest.fixture(scope="module")
def variants(base):
    return variant_configs(base)


def _docbin(path: Path, text: str, ents: list) -> str:
    nlp = spacy.blank("en")
    DocBin(docs=[Example.from_dict(nlp.make_doc(text), {"entities": ents}).reference]).to_disk(path)
    return str(path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("corpus")
    return {"legal": _docbin(path / "legal.spacy", TEXT, ENTS), "news": _docbin(path / "news.spacy", NEWS_TEXT, NEWS_ENTS)}


@pytest.fixture(scope="module")
def source(tmp_path_factory, corpus) -> str:
    """A trained pipeline of the recipe (tiny BERT) for ner_update.cfg to continue from."""
    path = tmp_path_factory.mktemp("source")
    bert = save_tiny_bert(path, [TEXT])
    config = load_config(CONFIGS / BASE, overrides={"paths.transformer": str(bert)}, interpolate=True)
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    examples = [Example.from_dict(nlp.make_doc(TEXT), {"entities": ENTS})]
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(2):
        nlp.update(examples, sgd=optimizer)
        optimizer.step_schedules()
    nlp.to_disk(path / "model")
    return str(path / "model")


def test_every_shipped_config_is_the_recipe_or_a_variant():
    assert sorted(p.name for p in CONFIGS.glob("*.cfg")) == sorted([BASE, *NAMES])


@pytest.mark.parametrize("name", NAMES)
def test_shipped_variant_is_what_the_generator_makes(name, variants):
    assert dict(shipped(name)) == dict(variants[name]), f"configs/{name} is stale: {REGENERATE}"
    text = (CONFIGS / name).read_text(encoding="utf8")
    assert text.startswith(f"# Generated from configs/{BASE}") and REGENERATE in text.split("\n\n")[0]


def test_no_shipped_variant_is_stale():
    assert write_variants(CONFIGS, check=True) == []


@pytest.mark.parametrize("name", NAMES)
def test_variant_builds_and_resolves(name, corpus, request):
    overrides = {"paths.train": corpus["legal"], "paths.dev": corpus["legal"]}
    if name == "ner_update.cfg":
        overrides["paths.source"] = request.getfixturevalue("source")
    if name == "ner_mixed.cfg":
        overrides.update({"paths.general_train": corpus["news"],
                          "paths.general_label_map": str(CONFIGS / "labels" / "conll_to_legal.json")})
    if name == "ner_multitask.cfg":
        overrides.update({"paths.general_train": corpus["news"], "paths.general_dev": corpus["news"]})
    config = load_config(CONFIGS / name, overrides=overrides, interpolate=True)
    nlp = load_model_from_config(config, auto_fill=True, validate=True)  # builds, no transformer weights loaded
    assert nlp.pipe_names == config["nlp"]["pipeline"]
    training = registry.resolve(config["training"], schema=ConfigSchemaTraining, validate=True)
    assert callable(training["optimizer"]) and callable(training["batcher"]) and callable(training["logger"])
    initialize = registry.resolve(config["initialize"], schema=ConfigSchemaInit, validate=True)
    assert callable(initialize["after_init"])
    corpora = registry.resolve(config["corpora"], validate=True)
    assert all(list(corpora[split](nlp)) for split in ("train", "dev"))


@pytest.mark.parametrize("name", NAMES)
def test_variants_keep_the_recipes_paths_logger_and_shared_settings(name, base):
    config = shipped(name)
    expected = BASE_PATHS[:-1] if name == "ner_cnn.cfg" else BASE_PATHS
    assert set(expected) <= set(config["paths"])
    assert set(config["paths"]) - set(expected) <= {"general_train", "general_dev", "general_label_map", "source"}
    assert config["training"]["logger"] == base["training"]["logger"]
    assert set(config["training"]) == set(base["training"])
    assert config["initialize"]["after_init"]["@callbacks"] == base["initialize"]["after_init"]["@callbacks"]
    assert config["corpora"]["dev"].get("augmenter") is None


def test_trf_is_the_transformer_without_the_recipes_additions(base):
    config = shipped("ner_trf.cfg")
    assert "CaseAwareListener" not in config.to_str(interpolate=False)
    assert config["components"]["ner"]["model"]["tok2vec"] == base["components"]["ner"]["model"]["tok2vec"]["listener"]
    assert config["nlp"]["after_creation"] is None and config["corpora"]["train"]["augmenter"] is None
    assert config["training"]["optimizer"]["@optimizers"] == "Adam.v1" and "head_lr_scale" not in config["training"]["optimizer"]
    # the same schedule and learning rate as the recipe (they had drifted apart)
    assert config["training"]["optimizer"]["learn_rate"] == base["training"]["optimizer"]["learn_rate"]
    assert config["components"]["transformer"] == base["components"]["transformer"]


def test_adversarial_is_the_recipe_with_adversarial_training_on(base):
    config = shipped("ner_adversarial.cfg")
    assert config["initialize"]["after_init"]["enabled"] is True and base["initialize"]["after_init"]["enabled"] is False
    config["initialize"]["after_init"]["enabled"] = False
    assert dict(config) == dict(base)


def test_mixed_and_multitask_read_both_domains_with_the_recipes_copies(base):
    augmenter = base["corpora"]["train"]["augmenter"]
    mixed, multitask = shipped("ner_mixed.cfg"), shipped("ner_multitask.cfg")
    for config, target in ((mixed, "ents"), (multitask, "spans")):
        train = config["corpora"]["train"]
        assert (train["@readers"], train["general_target"], train["augmenter"]) == ("spacy_domain_ner.MixedCorpus.v1", target, augmenter)
        assert config["training"]["max_epochs"] == 0  # the whole sample at initialize: every label
        assert config["components"]["ner"] == base["components"]["ner"]  # the recipe's case-aware head
    assert mixed["nlp"]["pipeline"] == base["nlp"]["pipeline"]
    assert multitask["nlp"]["pipeline"] == [*base["nlp"]["pipeline"], "general_ner"]
    assert multitask["corpora"]["dev"]["ratio"] is None and multitask["training"]["score_weights"]["spans_general_f"] == 0.0
    assert multitask["training"]["before_to_disk"]["names"] == []


def test_update_continues_the_source_pipelines_transformer_and_ner(base, source, corpus):
    config = shipped("ner_update.cfg")
    assert config["components"] == {"transformer": {"source": "${paths.source}"}, "ner": {"source": "${paths.source}"}}
    config["components"] = base["components"]
    del config["paths"]["source"]
    assert dict(config) == dict(base)  # the recipe otherwise
    resolved = load_config(CONFIGS / "ner_update.cfg", interpolate=True, overrides={
        "paths.source": source, "paths.train": corpus["legal"], "paths.dev": corpus["legal"]})
    nlp = load_model_from_config(resolved, auto_fill=True, validate=True)
    trained = spacy.load(source)
    assert nlp.get_pipe("ner").model.to_bytes() == trained.get_pipe("ner").model.to_bytes()  # its weights, not new ones
    assert nlp.get_pipe("ner").labels == trained.get_pipe("ner").labels


def test_cnn_has_no_transformer_and_keeps_its_vectors_slot(base):
    config = shipped("ner_cnn.cfg")
    assert config["nlp"]["pipeline"] == ["tok2vec", "ner"] and "transformer" not in config["components"]
    assert "transformer" not in config["paths"] and config["system"]["gpu_allocator"] is None
    assert config["components"]["tok2vec"]["model"]["embed"]["include_static_vectors"] is False
    assert config["training"]["optimizer"]["@optimizers"] == "Adam.v1"
    assert config["training"]["batcher"]["@batchers"] == "spacy.batch_by_words.v1"
    assert config["nlp"]["after_creation"] == base["nlp"]["after_creation"]  # the recipe's tokenizer rules
    with_vectors = load_config(CONFIGS / "ner_cnn.cfg", overrides={
        "components.tok2vec.model.embed.include_static_vectors": True})
    assert with_vectors["components"]["tok2vec"]["model"]["embed"]["include_static_vectors"] is True


def test_a_change_to_the_recipe_reaches_every_variant(tmp_path, capsys):
    shutil.copy(CONFIGS / BASE, tmp_path / BASE)
    assert main([str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.cfg")) == sorted([BASE, *NAMES])
    assert main([str(tmp_path), "--check"]) == 0
    recipe = Config().from_disk(tmp_path / BASE, interpolate=False)
    recipe["training"]["dropout"] = 0.2
    recipe.to_disk(tmp_path / BASE, interpolate=False)
    assert main([str(tmp_path), "--check"]) == 1
    assert "stale" in capsys.readouterr().out
    write_variants(tmp_path)
    assert all(shipped_in(tmp_path, name)["training"]["dropout"] == 0.2 for name in NAMES)
    assert main([str(tmp_path / "missing")]) == 2


def shipped_in(directory: Path, name: str) -> Config:
    return Config().from_disk(directory / name, interpolate=False)
