"""benchmarks/profile_pipeline.py: time attributed to the right stage, outputs written and consistent."""
import json
import time

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training import Example

import spacy_domain_ner.casing.restorer as restorer_module
import spacy_domain_ner.evaluation.confidence as confidence_module
from conftest import LEGAL_TEXTS, load_benchmark
from spacy_domain_ner.casing.forms import mine_case_forms
from spacy_domain_ner.casing.restorer import add_case_restorer

profiler = load_benchmark("profile_pipeline")
SLEEP = 0.2  # long next to the tiny components, so that a busy machine does not blur the attribution
PATTERNS = [{"label": "BUSINESS", "pattern": "Acme Corp"}, {"label": "GOVERNMENT", "pattern": "SEC"},
            {"label": "LOCATION", "pattern": "Delaware"}]
TEXT = "Acme Corp sued the SEC in Delaware. The court agreed with Acme Corp today."
TEXTS = [TEXT, TEXT.upper(), LEGAL_TEXTS[0][0], LEGAL_TEXTS[1][0], TEXT.lower(), "Nothing here."]


class Sleeper:
    """A lazy generator `pipe` that sleeps SLEEP per doc: its time shows only where it is pulled."""

    def __call__(self, doc: Doc) -> Doc:
        time.sleep(SLEEP)
        return doc

    def pipe(self, docs, *, batch_size=128):
        for doc in docs:
            yield self(doc)

    def to_disk(self, path, *, exclude=()):
        path.mkdir(parents=True, exist_ok=True)

    def from_disk(self, path, *, exclude=()):
        return self


@Language.factory("profile_test_sleeper")
def make_sleeper(nlp, name):
    return Sleeper()


@Language.component("profile_test_counter")
def count_words(doc: Doc) -> Doc:  # no `pipe`: run through __call__
    return doc


@pytest.fixture(scope="module")
def nlp(one_torch_thread):
    """sentencizer, the sleeper, a plain function, entity_confidence + a tiny trained ner, an entity
    ruler and the case restorer (whose second pass runs all of them again on truecased copies)."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("profile_test_sleeper")
    nlp.add_pipe("profile_test_counter")
    nlp.add_pipe("ner")
    examples = [Example.from_dict(nlp.make_doc(text), {"entities": ents}) for text, ents in LEGAL_TEXTS]
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(40):
        nlp.update(examples, sgd=optimizer, drop=0.0, losses={})
    nlp.add_pipe("entity_confidence", before="ner")
    nlp.add_pipe("entity_ruler").add_patterns(PATTERNS)
    add_case_restorer(nlp, forms=mine_case_forms([nlp.make_doc(TEXT)]))
    return nlp


def stage(result, key):
    return next(s for s in result["stages"] if s["stage"] == key)


def test_time_goes_to_the_stage_that_spends_it(nlp):
    forward = nlp.get_pipe("ner").model._func
    result = profiler.profile(nlp, TEXTS, batch_size=4)
    seconds = {s["stage"]: s["seconds"] for s in result["stages"]}
    top = [s for s in result["stages"] if not s["level"]]
    assert [s["stage"] for s in top] == ["tokenizer", *nlp.pipe_names]
    assert sum(s["share"] for s in top) == pytest.approx(1.0)
    assert result["parts_seconds"] <= result["profiled_seconds"] and result["parts_seconds"] > 0.8 * result["profiled_seconds"]
    # the sleeper's generator is drained under its own stage, not under the components after it
    assert seconds["profile_test_sleeper"] >= len(TEXTS) * SLEEP
    assert all(seconds[s["stage"]] < len(TEXTS) * SLEEP / 2 for s in top if s["stage"] not in ("profile_test_sleeper", "case_restorer"))
    # the restorer's second pass runs the sleeper again on the copies of the case-free docs
    assert result["restored_docs"] == 2  # upper and lower; the others are ordinary text
    assert seconds["case_restorer › second pass › profile_test_sleeper"] >= 2 * SLEEP
    assert seconds["case_restorer"] >= seconds["case_restorer › second pass"] >= 2 * SLEEP
    assert stage(result, "case_restorer › truecased copy › Doc()")["calls"] == 2
    for key in ("ner › model forward", "entity_confidence › replay › ner model forward", "entity_confidence › scoring",
                "case_restorer › mark case-free docs", "case_restorer › second pass › ner › model forward",
                "case_restorer › second pass › profile_test_counter", "case_restorer › transfer annotations"):
        assert key in seconds, key
    # the profiled loop finds what nlp.pipe finds
    assert result["same_entities"] and result["differing_docs"] == 0 and result["entities"] > 0
    assert result["words"] == sum(len(nlp.make_doc(t)) for t in TEXTS) and result["docs"] == len(TEXTS)
    # every wrapper is gone afterwards
    restorer = nlp.get_pipe("case_restorer")
    assert not {"_mark", "_copy", "_recopy", "_annotate", "_upstream"} & set(vars(restorer))
    assert "score" not in vars(nlp.get_pipe("entity_confidence"))
    assert nlp.get_pipe("ner").model._func is forward
    assert restorer_module.Doc is Doc and restorer_module.ignores_case.__name__ == "ignores_case"
    assert confidence_module.greedy_entity_scores.__module__ == confidence_module.__name__
    assert not hasattr(confidence_module.greedy_entity_scores, "__wrapped__")


def test_clock_nests_stages_and_keeps_their_first_order():
    clock = profiler.Clock()
    for _ in range(2):
        with clock.stage("a"):
            with clock.stage("b"):
                pass
            clock.wrap("c", lambda: None)()
    assert list(clock.seconds) == ["a", "a › b", "a › c"] and clock.calls["a › b"] == 2


def test_texts_from_jsonl_and_docbin_with_limit_and_chars(tmp_path):
    (tmp_path / "t.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    assert profiler.load_texts(tmp_path / "t.jsonl", limit=2, chars=10) == [TEXT[:10], TEXT.upper()[:10]]
    blank = spacy.blank("en")
    DocBin(docs=[blank.make_doc(t) for t in TEXTS]).to_disk(tmp_path / "d.spacy")
    assert profiler.load_texts(tmp_path / "d.spacy") == TEXTS


def test_modes_and_quantize_flags():
    assert profiler.parse_args(["p", "t.jsonl"]).modes == ["config"]
    assert profiler.parse_args(["p", "q", "t.jsonl", "--quantize"]).modes == ["int8"]
    args = profiler.parse_args(["p", "t.jsonl", "--no-quantize", "--modes", "float32,int8"])
    assert args.modes == ["float32", "int8"] and args.pipelines == ["p"]
    with pytest.raises(SystemExit):
        profiler.parse_args(["p", "t.jsonl", "--modes", "fp8"])


def test_cli_writes_consistent_json_markdown_and_chart(nlp, tmp_path):
    nlp.to_disk(tmp_path / "pipeline")
    (tmp_path / "t.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    out = tmp_path / "out" / "profile"
    assert profiler.main([str(tmp_path / "pipeline"), str(tmp_path / "t.jsonl"), "-o", str(out), "--in-process",
                          "--modes", "config,float32", "--limit", "4", "--chars", "60", "--batch-size", "2"]) == 0
    results = json.loads(out.with_suffix(".json").read_text())
    markdown = out.with_suffix(".md").read_text()
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [r["mode"] for r in results["runs"]] == ["config", "float32"] and "## Side by side" in markdown
    for r in results["runs"]:
        assert r["docs"] == 4 and r["chars"] <= 4 * 60 and r["int8"] == [] and r["same_entities"]
        assert sum(s["share"] for s in r["stages"] if not s["level"]) == pytest.approx(1.0)
        assert r["peak_mb"] >= r["loaded_mb"] > 0 and r["batch_size"] == 2
        assert f"## {r['name']}" in markdown
        for s in r["stages"]:
            assert f"| {'› ' * s['level']}{s['stage'].split(' › ')[-1]} | {s['seconds']:.3f} | {s['share']:.1%} |" in markdown


def test_cli_runs_each_profile_in_its_own_process(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("entity_ruler").add_patterns(PATTERNS)
    nlp.to_disk(tmp_path / "pipeline")
    DocBin(docs=[nlp.make_doc(t) for t in TEXTS]).to_disk(tmp_path / "d.spacy")
    out = tmp_path / "profile"
    assert profiler.main([str(tmp_path / "pipeline"), str(tmp_path / "d.spacy"), "-o", str(out)]) == 0
    (run,) = json.loads(out.with_suffix(".json").read_text())["runs"]
    assert [s["stage"] for s in run["stages"]] == ["tokenizer", "sentencizer", "entity_ruler"]
    assert run["same_entities"] and run["entities"] >= 4 and run["docs"] == len(TEXTS)
