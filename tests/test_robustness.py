"""Tests of spacy_domain_ner.evaluation.robustness: span-preserving, seeded perturbations and the robustness table."""
import random
from typing import List, Sequence, Tuple

import pytest
import spacy
from spacy.tokens import Doc, Span
from spacy.vocab import Vocab

from spacy_domain_ner.corpus.labels import LabelMap
from spacy_domain_ner.evaluation.robustness import PERTURBATIONS, build_entity_pool, evaluate_robustness, perturb_doc, perturb_docs

# What each case perturbation must do to a word, written independently of the module's own functions.
CASED = {"upper": str.upper, "lower": str.lower, "title": str.title}

VOCAB = Vocab()


def make_doc(words: Sequence[str], ents: Sequence[Tuple[int, int, str]], sent_starts=None) -> Doc:
    doc = Doc(VOCAB, words=list(words), sent_starts=sent_starts)
    doc.ents = [Span(doc, s, e, label=label) for s, e, label in ents]
    return doc


def gold_docs() -> List[Doc]:
    docs = []
    for i in range(12):
        words = ["The", "Supreme", "Court", "of", "Ohio", "fined", "Acme", "Holdings", ",", "Inc.", f"{i}",
                 "times", ".", "X", "left", "."]
        ents = [(1, 5, "COURT"), (6, 10, "BUSINESS"), (13, 14, "PERSON")]
        sent_starts = [True] + [False] * 12 + [True, False, False]
        docs.append(make_doc(words, ents, sent_starts=sent_starts))
    docs[0].user_data["doc_id"] = "dev.csv#0"
    return docs


def pool_docs() -> List[Doc]:
    return [
        make_doc(["Beta", "LLC", "and", "Gamma", "Corp", "met", "Jane", "Roe"],
                 [(0, 2, "BUSINESS"), (3, 5, "BUSINESS"), (6, 8, "PERSON")]),
        make_doc(["the", "District", "Court", "said"], [(1, 3, "COURT")]),
        make_doc(["Beta", "LLC", "again"], [(0, 2, "BUSINESS")]),
    ]


def ent_text(words: Sequence[str], spaces: Sequence[bool]) -> str:
    return "".join(w + (" " if s else "") for w, s in zip(words, spaces)).rstrip(" ")


def edit_distance_one(a: str, b: str) -> bool:
    """True when b is a after one swap of neighbours, deletion, insertion or replacement."""
    if a == b:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long = sorted((a, b), key=len)
    return len(long) == len(short) + 1 and any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def test_build_entity_pool():
    pool = build_entity_pool(pool_docs())
    assert list(pool) == ["BUSINESS", "COURT", "PERSON"]
    assert pool["BUSINESS"] == [(("Beta", "LLC"), (True,)), (("Gamma", "Corp"), (True,))]  # sorted, unique
    assert pool["COURT"] == [(("District", "Court"), (True,))]


@pytest.mark.parametrize("kind", PERTURBATIONS)
def test_every_gold_span_covers_the_perturbed_entity_text(kind):
    pool = build_entity_pool(pool_docs())
    pool_texts = {label: {ent_text(w, list(s) + [False]) for w, s in entries} for label, entries in pool.items()}
    originals = gold_docs()
    perturbed = perturb_docs(originals, kind=kind, seed=7, pool=pool, noise_rate=0.5)
    n_changed = n_inserted = 0
    sentences_kept = sentences_upper = 0
    for old, new in zip(originals, perturbed):
        assert len(new.ents) == len(old.ents)
        assert new.user_data == old.user_data
        # sentence boundaries survive: same number of sentences, each starting with the (perturbed) same word
        assert len(list(new.sents)) == len(list(old.sents))
        for o, n in zip(old.ents, new.ents):
            assert n.label_ == o.label_
            assert new.text[n.start_char : n.end_char] == n.text
            if kind in CASED:
                case = CASED[kind]
                assert n.text == ent_text([case(t.text) for t in o], [bool(t.whitespace_) for t in o])
            elif kind == "typos":
                assert len(n) == len(o)
                changed = [(a.text, b.text) for a, b in zip(o, n) if a.text != b.text]
                if any(sum(c.isalpha() for c in t.text) >= 2 for t in o):
                    assert len(changed) == 1 and edit_distance_one(*changed[0]), changed
                    assert not any(c.isspace() for c in changed[0][1])
                else:  # "X": no token with two letters
                    assert changed == []
            elif kind == "natural":  # the same tokens; only the space before the comma goes
                assert [t.text for t in n] == [t.text for t in o]
                assert n.text == o.text.replace(" ,", ",")
            elif kind == "upper_passages":
                assert n.text in (o.text, o.text.upper())
            elif kind == "swap":
                if o.label_ in pool_texts:
                    assert n.text in pool_texts[o.label_] and n.text != o.text
                else:
                    assert n.text == o.text
            else:
                assert n.text == o.text
            n_changed += n.text != o.text
        if kind in CASED:
            assert new.text == "".join(CASED[kind](t.text) + t.whitespace_ for t in old)
        if kind == "upper_passages":  # each sentence as it was or all in capitals, entities with it
            for o, n in zip(old.sents, new.sents):
                assert n.text in (o.text, o.text.upper())
                sentences_kept += n.text == o.text
                sentences_upper += n.text == o.text.upper()
        if kind == "natural":
            assert new.text == old.text.replace(" ,", ",").replace(" .", ".")
            assert [t.text for t in new] == [t.text for t in old]
        if kind == "spaced":
            assert new.text == old.text  # the gold docs were built with a space after every token
        if kind in ("whitespace", "punctuation"):
            # noise is whitespace, or punctuation: no letter or digit that could read as a word
            noise_ok = str.isspace if kind == "whitespace" else (lambda text: not any(c.isalnum() or c.isspace() for c in text))
            # the original tokens, in order, with only noise tokens (outside entities) between them
            j, inserted = 0, []
            for token in new:
                if j < len(old) and token.text == old[j].text and token.ent_iob_ == old[j].ent_iob_:
                    j += 1
                else:
                    inserted.append(token)
            assert j == len(old)
            assert inserted and all(noise_ok(t.text) and t.ent_iob_ == "O" for t in inserted)
            n_inserted += len(inserted)
    if kind in ("upper", "lower", "typos", "swap", "natural", "upper_passages"):
        assert n_changed > 0
    if kind == "upper_passages":  # noise_rate 0.5 of 24 sentences
        assert sentences_kept >= 4 and sentences_upper >= 4
    if kind in ("whitespace", "punctuation"):
        assert n_inserted >= len(originals)


@pytest.mark.parametrize("kind", ["typos", "swap", "whitespace", "punctuation", "upper_passages"])
def test_perturbations_are_deterministic(kind):
    pool = build_entity_pool(pool_docs())

    def run(seed: int) -> List[Tuple[str, List[Tuple[int, int, str]]]]:
        return [(d.text, [(e.start_char, e.end_char, e.label_) for e in d.ents])
                for d in perturb_docs(gold_docs(), kind=kind, seed=seed, pool=pool)]

    assert run(1) == run(1)
    assert run(1) != run(2)
    # each doc has its own random source: perturbing a subset gives the same docs
    subset = perturb_docs(gold_docs()[:3], kind=kind, seed=1, pool=pool)
    assert [d.text for d in subset] == [text for text, _ in run(1)[:3]]


def test_noise_keeps_missing_annotation_and_rate_bounds():
    doc = Doc(VOCAB, words=["Acme", "sued", "Beta", "today", "."])
    doc.set_ents([Span(doc, 0, 1, label="ORG")], missing=[doc[2:4]], default="outside")
    new = perturb_doc(doc, kind="punctuation", rng=random.Random(0), noise_rate=1.0)
    # a noise token after every word boundary but the last
    assert [t.text for t in new][::2] == ["Acme", "sued", "Beta", "today", "."]
    assert [t.ent_iob_ for t in new][::2] == ["B", "O", "", "", "O"]
    assert perturb_doc(doc, kind="upper", rng=random.Random(0))[2].ent_iob == 0
    assert perturb_doc(doc, kind="whitespace", rng=random.Random(0), noise_rate=0.0).text == doc.text
    with pytest.raises(ValueError, match="noise_rate"):
        perturb_doc(doc, kind="whitespace", rng=random.Random(0), noise_rate=1.5)
    # without sentence annotation the passages are the punctuation's sentences; missing annotation stays
    unsplit = Doc(VOCAB, words=["Acme", "sued", ".", "Beta", "won", "."])
    unsplit.set_ents([Span(unsplit, 0, 1, label="ORG")], missing=[unsplit[3:5]], default="outside")
    texts = {perturb_doc(unsplit, kind="upper_passages", rng=random.Random(seed), noise_rate=0.5).text.strip() for seed in range(20)}
    assert texts == {"Acme sued . Beta won .", "ACME SUED . Beta won .", "Acme sued . BETA WON .", "ACME SUED . BETA WON ."}
    assert [t.ent_iob_ for t in perturb_doc(unsplit, kind="upper_passages", rng=random.Random(0), noise_rate=1.0)] == [
        "B", "O", "O", "", "", "O"]
    with pytest.raises(ValueError, match="noise_rate"):
        perturb_doc(doc, kind="upper_passages", rng=random.Random(0), noise_rate=-0.1)


def test_bad_arguments_and_pool_edge_cases():
    doc = make_doc(["Acme", "won"], [(0, 1, "ORG")])
    with pytest.raises(ValueError, match="unknown perturbation 'shout'"):
        perturb_doc(doc, kind="shout", rng=random.Random(0))
    with pytest.raises(ValueError, match="swap perturbation needs an entity pool"):
        perturb_doc(doc, kind="swap", rng=random.Random(0))
    # only the entity itself, or no entity of the label, in the pool: kept as it is
    assert perturb_doc(doc, kind="swap", rng=random.Random(0), pool=build_entity_pool([doc])).text == "Acme won "
    assert perturb_doc(doc, kind="swap", rng=random.Random(0), pool={"PER": [(("Jane",), ())]}).text == "Acme won "
    with pytest.raises(ValueError, match="unknown perturbations"):
        evaluate_robustness(spacy.blank("en"), [doc], perturbations=["upper", "shout"])


def test_evaluate_robustness_table():
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    names = [("Acme Corp", "ORG"), ("Beta", "ORG"), ("Boston", "LOC"), ("Gamma Inc", "ORG"), ("Paris", "LOC")]
    ruler.add_patterns([{"label": label, "pattern": text} for text, label in names])
    gold = [make_doc(["Acme", "Corp", "sued", "Beta", "in", "Boston", "."], [(0, 2, "ORG"), (3, 4, "ORG"), (5, 6, "LOC")])
            for _ in range(4)]
    pool = build_entity_pool([make_doc(["Gamma", "Inc", "in", "Paris", "and", "Beta"], [(0, 2, "ORG"), (3, 4, "LOC"), (5, 6, "ORG")])])
    table = evaluate_robustness(nlp, gold, pool=pool, seed=3, noise_rate=0.5, progress=False)
    rows = {r["perturbation"]: r for r in table["rows"]}
    assert [r["perturbation"] for r in table["rows"]] == ["clean", *PERTURBATIONS]
    assert table["seed"] == 3 and table["skipped"] == {}
    expected_f = {"clean": 1.0, "upper": 0.0, "lower": 0.0, "title": 1.0, "typos": 0.0, "swap": 1.0,
                  "whitespace": 1.0, "punctuation": 1.0, "natural": 1.0, "spaced": 1.0}
    for name, f in expected_f.items():
        assert rows[name]["ents_f"] == pytest.approx(f), name
        assert rows[name]["delta_f"] == pytest.approx(f - 1.0), name
    assert rows["upper"]["entities_changed"] == 12 and rows["title"]["entities_changed"] == 0
    assert rows["swap"]["entities_changed"] == 12 and all(r["entities"] == 12 for r in rows.values())
    # without a pool swap is skipped; a given clean result is reused; maps apply to every run
    clean = dict(rows["clean"], ents_f=0.5)
    table = evaluate_robustness(nlp, gold, perturbations=["title", "swap"], clean=clean, progress=False,
                                gold_map=LabelMap(labels={"LOC": None}), pred_map=LabelMap(labels={"LOC": None}))
    assert table["skipped"] == {"swap": "no entity pool given"}
    assert [(r["perturbation"], r["ents_f"], r["delta_f"]) for r in table["rows"]] == [("clean", 0.5, 0.0), ("title", 1.0, 0.5)]
    assert table["rows"][1]["entities"] == 12  # entities of the gold set before the map


def test_spaced_undoes_natural_spacing():
    natural = perturb_docs(gold_docs(), kind="natural", seed=0)
    assert "Holdings, Inc." in natural[0].text
    spaced = perturb_docs(natural, kind="spaced", seed=0)
    assert [d.text for d in spaced] == [d.text for d in gold_docs()]
    assert [[(e.start, e.end, e.label_) for e in d.ents] for d in spaced] == [
        [(e.start, e.end, e.label_) for e in d.ents] for d in gold_docs()
    ]
