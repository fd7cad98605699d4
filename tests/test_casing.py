"""Case forms, truecasing and the `case_restorer` component."""
import pytest
import spacy
import srsly
from spacy.tokens import Doc, Span
from spacy.training import Example

from spacy_domain_ner.casing.forms import (case_free_kind, case_shares, check_case_forms, mine_case_forms, recase_entities,
                                           sentence_starts, truecase, upper_passages, word_case, word_heads)
from spacy_domain_ner.casing.restorer import add_case_restorer, transfer_annotations

TEXT = "Acme Corp sued the SEC in Delaware. The court agreed with Acme Corp today."
PATTERNS = [{"label": "BUSINESS", "pattern": "Acme Corp"}, {"label": "GOVERNMENT", "pattern": "SEC"},
            {"label": "LOCATION", "pattern": "Delaware"}]


@pytest.fixture
def nlp():
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(PATTERNS)  # case-sensitive: it reads capitals like a cased NER
    return nlp


def count_calls(nlp):
    """Record the texts of every `entity_ruler.pipe` call."""
    calls = []
    ruler = nlp.get_pipe("entity_ruler")
    original_pipe = ruler.pipe

    def counting_pipe(docs, **kwargs):
        docs = list(docs)
        calls.append([d.text for d in docs])
        return original_pipe(docs, **kwargs)

    ruler.pipe = counting_pipe
    return calls


def words(nlp, text):
    return [t.text for t in nlp.make_doc(text)]


def test_word_case_and_case_free_kind(nlp):
    assert [word_case(w) for w in ["ACME", "acme", "Acme", "SunGard", "a", "10-K", ","]] == [
        "upper", "lower", "title", "mixed", None, None, None]
    assert case_free_kind(words(nlp, TEXT)) is None
    assert case_free_kind(words(nlp, TEXT.upper())) == "upper"
    assert case_free_kind(words(nlp, TEXT.lower())) == "lower"
    assert case_free_kind(words(nlp, " ".join(w[:1].upper() + w[1:].lower() for w in TEXT.split()))) == "title"
    assert case_free_kind(["A", "10-K", ","]) is None  # no word says anything
    assert case_shares(["A", "10-K", ","]) == {"upper": 0.0, "lower": 0.0, "title": 0.0}
    assert case_shares(["ACME", "acme", "Acme", "ACME", "SunGard", ","]) == {"upper": 0.4, "lower": 0.2, "title": 0.2}
    # one ordinary word in ten is not enough at the default 0.99, enough at 0.9
    mostly = ["acme"] * 9 + ["Acme"]
    assert case_free_kind(mostly) is None and case_free_kind(mostly, min_share=0.9) == "lower"
    for bad in (0.5, 1.5):
        with pytest.raises(ValueError, match="min_share"):
            case_free_kind(mostly, min_share=bad)


def test_word_heads_read_the_case_of_words_not_of_split_off_pieces(nlp):
    doc = nlp.make_doc("The Front-end Fee Of The Investor's (Class A) Shares, Per Holder.")
    # the tokenizer splits "end", "'s" off; the words are still written in title case
    assert case_free_kind([t.text for t in doc]) is None
    assert word_heads(doc) == ["The", "Front", "Fee", "Of", "The", "Investor", "Class", "A", "Shares", "Per", "Holder"]
    assert case_free_kind(word_heads(doc)) == "title"
    assert word_heads(nlp.make_doc("10-K , and/or ( ACME")) == ["K", "and/or", "ACME"]
    assert word_heads(nlp.make_doc("")) == [] and word_heads(nlp.make_doc("a\n\nB")) == ["a", "B"]


def test_upper_passages_are_runs_of_capital_words(nlp):
    text = "SCBV said. BY AND BETWEEN ACME CORP, INC. and 10-K FILED BY I.B.M. NOW"
    found = [nlp.make_doc(text)[s:e].text for s, e in upper_passages(words(nlp, text), min_words=2)]
    # words without two cased letters (",", "10-K") neither count nor end a run; "and" ends one;
    # the lone acronym is no passage at min_words 2, and the run at the end of the text is closed
    assert found == ["BY AND BETWEEN ACME CORP, INC", "FILED BY I.B.M. NOW"]  # "INC" "." before "and"
    assert [len(upper_passages(words(nlp, text), min_words=n)) for n in (1, 4, 6, 7)] == [3, 2, 1, 0]
    assert upper_passages([], min_words=2) == []
    with pytest.raises(ValueError, match="min_words must be at least 1"):
        upper_passages(["ACME"], min_words=0)


def test_sentence_starts_from_punctuation_line_breaks_or_the_parse(nlp):
    doc = nlp.make_doc("we sued.  they won!\nnow what\n")
    assert [t.text for t, s in zip(doc, sentence_starts(doc)) if s and not t.is_space] == ["we", "they", "now"]
    doc = Doc(nlp.vocab, words=["a", "b", "c"], sent_starts=[True, False, True])
    assert sentence_starts(doc) == [True, False, True]


def test_mine_case_forms_counts_mid_sentence_forms_of_ordinary_docs(nlp):
    docs = [nlp.make_doc(t) for t in [TEXT, "The Company and the company met. Company counsel left.",
                                      "THE COMPANY SUED ACME CORP."]]  # case-free: left out
    forms = mine_case_forms(docs)
    words = forms["words"]
    assert words["acme"] == "Acme" and words["sec"] == "SEC" and words["court"] == "court"
    assert words["company"] == "Company"  # tie 1:1 goes to the first form seen; sentence-initial "Company" not counted
    assert words["the"] == "the"  # "The" only starts sentences
    assert words["sued"] == "sued"  # from the first doc, not the upper-case one
    assert "1" not in words and "." not in words
    # contexts only for words seen in more than one form, with counts ("The Company": after "the" too)
    assert forms["after"] == {"the company": ["Company", 1]} and forms["before"] == {
        "company and": ["Company", 1], "company met": ["company", 1]}
    assert forms["entities"] == {}  # Docs without entities
    check_case_forms(forms)


def test_mine_case_forms_counts_the_forms_of_entity_words(nlp):
    doc = nlp.make_doc("We met Fidelity Advisor Fund of Boston. The advisor left. The advisor and the fund stayed.")
    doc.ents = [Span(doc, 2, 7, label="BUSINESS")]
    forms = mine_case_forms([doc, nlp.make_doc("The Fund of funds.")])  # no entities there: not counted
    assert forms["words"]["advisor"] == "advisor" and forms["words"]["fund"] == "Fund"  # 2:1 and 2:1 (ties: first seen)
    assert forms["entities"] == {"advisor": "Advisor", "boston": "Boston", "fidelity": "Fidelity", "fund": "Fund", "of": "of"}
    check_case_forms(forms)
    old = {part: forms[part] for part in ("words", "after", "before")}  # forms mined before "entities" existed
    check_case_forms(old)


def test_recase_entities_writes_entity_words_as_the_corpus_writes_entities():
    forms = {"words": {}, "after": {}, "before": {}, "entities": {"of": "of", "fund": "Fund", "ß": "SS"}}
    words = ["the", "fidelity", "advisor", "fund", "of", "boston", "SCBV", "Acme", "ß", "10", "sued"]
    assert recase_entities(words, [(1, 9)], forms) == [
        "the", "Fidelity", "Advisor", "Fund", "of", "Boston", "SCBV", "Acme", "ß", "10", "sued"]
    assert recase_entities(words, [], forms) == words  # no entities: nothing changes
    # forms without "entities": every lower-case word of an entity is capitalized
    assert recase_entities(words, [(3, 5)], {"words": {}, "after": {}, "before": {}})[3:5] == ["Fund", "Of"]


def test_truecase_writes_known_forms_capitalizes_starts_and_handles_unknown_words(nlp):
    forms = mine_case_forms([nlp.make_doc(TEXT)])
    doc = nlp.make_doc("ACME CORP SUED SCBV. THE COURT AGREED.")
    assert truecase(doc, forms) == ["Acme", "Corp", "sued", "SCBV", ".", "The", "court", "agreed", "."]
    assert truecase(nlp.make_doc("acme sued scbv with sungard."), forms)[2:5] == ["SCBV", "with", "Sungard"]  # auto
    assert truecase(doc, forms, unknown="title")[3] == "Scbv"
    assert truecase(doc, forms, unknown="lower")[3] == "scbv"
    assert truecase(nlp.make_doc("acme sued Scbv"), forms, unknown="keep")[2] == "Scbv"
    empty = {"words": {}, "after": {}, "before": {}}
    assert truecase(nlp.make_doc("in 10 filed"), empty, unknown="title") == ["In", "10", "Filed"]
    # a form of another length (Unicode case mapping) is not used: the copy must keep its offsets
    assert truecase(nlp.make_doc("x ß"), {**empty, "words": {"ß": "SS"}}, unknown="keep") == ["X", "ß"]
    assert truecase(nlp.make_doc("in İstanbul"), empty, unknown="title") == ["In", "İstanbul"]  # nor a guess of another length
    with pytest.raises(ValueError, match="unknown must be"):
        truecase(doc, forms, unknown="upper")


def test_truecase_reads_the_neighbours_of_a_word_with_several_forms(nlp):
    corpus = ["We sold it to Fidelity Investments and to Fidelity Investments again.",
              "The fidelity bond and the fidelity bond and the fidelity bond were renewed."]
    forms = mine_case_forms([nlp.make_doc(t) for t in corpus])
    assert forms["words"]["fidelity"] == "fidelity"  # 3 to 2 alone
    assert truecase(nlp.make_doc("we paid fidelity investments."), forms)[2:4] == ["Fidelity", "Investments"]
    assert truecase(nlp.make_doc("we paid the fidelity bond."), forms)[3] == "fidelity"
    # the previous word and the next word vote with their counts; the heavier wins
    assert truecase(nlp.make_doc("to fidelity bond"), forms)[1] == "fidelity"  # "to" 2 against "bond" 3
    assert truecase(nlp.make_doc("the fidelity investments"), forms)[1] == "fidelity"  # "the" 3 against "investments" 2
@pytest.mark.parametrize("perturb", [str.upper, str.lower, lambda t: " ".join(w.capitalize() for w in t.split(" "))])
def test_restorer_annotates_case_free_text_through_its_truecased_copy(nlp, perturb):
    text = perturb(TEXT)
    assert len(nlp(text).ents) < 4  # the cased annotator misses what the text does not capitalize
    add_case_restorer(nlp, forms=mine_case_forms([nlp.make_doc(TEXT)]))
    doc = nlp(text)
    assert doc.text == text and doc._.case_free is not None
    assert [(e.text, e.label_) for e in doc.ents] == [
        (text[0:9], "BUSINESS"), (text[19:22], "GOVERNMENT"), (text[26:34], "LOCATION"), (text[58:67], "BUSINESS")]


def test_restorer_leaves_ordinary_text_alone_and_pipes_in_batches(nlp):
    restorer = add_case_restorer(nlp, forms=mine_case_forms([nlp.make_doc(TEXT)]))
    calls = count_calls(nlp)
    texts = [TEXT, TEXT.upper(), "acme corp lost.", "Nothing here."]
    docs = list(nlp.pipe(texts, batch_size=10))
    assert [d._.case_free for d in docs] == [None, "upper", "lower", None]
    assert [len(d.ents) for d in docs] == [4, 4, 1, 0]
    # the pipeline once over all four, the restorer's copies together in one more call
    assert calls == [texts, [TEXT, "Acme Corp LOST."]]  # "lost" is not in the forms: 4 letters, capitals
    assert restorer(nlp.make_doc("Acme Corp sued the SEC")).ents == ()  # ordinary text: left as it is


def test_restorer_truecases_passages_in_capitals_of_ordinary_text(nlp):
    forms = mine_case_forms([nlp.make_doc(TEXT)])
    text = "The court agreed. ACME CORP SUED THE SEC IN DELAWARE. Acme Corp won."
    assert [e.text for e in nlp(text).ents] == ["SEC", "Acme Corp"]
    restorer = add_case_restorer(nlp, forms=forms, passage_words=3)
    calls = count_calls(nlp)
    docs = list(nlp.pipe([text, TEXT, "ACME CORP sued."]))
    doc = docs[0]
    assert doc.text == text and doc._.case_free is None and doc._.case_free_passages == [(4, 11)]
    assert [(e.text, e.label_) for e in doc.ents] == [
        ("ACME CORP", "BUSINESS"), ("SEC", "GOVERNMENT"), ("DELAWARE", "LOCATION"), ("Acme Corp", "BUSINESS")]
    # only the passage changes in the copy; an ordinary Doc without one and a two-word run are not copied
    assert calls[-1] == ["The court agreed. Acme Corp sued the SEC in Delaware. Acme Corp won."]
    assert [d._.case_free_passages for d in docs[1:]] == [[], []]
    restorer.passage_words = 0  # off: the passage stays as it is
    assert [e.text for e in nlp(text).ents] == ["SEC", "Acme Corp"] and nlp(text)._.case_free_passages == []


def test_restorer_kinds_choose_what_is_restored(nlp):
    add_case_restorer(nlp, forms=mine_case_forms([nlp.make_doc(TEXT)]), kinds=["lower", "title"], passage_words=3)
    upper = nlp(TEXT.upper())  # written in capitals: left to the model, also not read as one long passage
    assert upper._.case_free is None and upper._.case_free_passages == [] and [e.text for e in upper.ents] == ["SEC"]
    lower = nlp(TEXT.lower())
    assert lower._.case_free == "lower" and len(lower.ents) == 4
    # a text capitalized word by word, with hyphenated words the tokenizer splits, is title case
    title = nlp("Acme Corp Sued The Non-profit Sec In Delaware. The Court Agreed With Acme Corp Today.")
    assert title._.case_free == "title" and [e.text for e in title.ents] == ["Acme Corp", "Sec", "Delaware", "Acme Corp"]


def test_entity_pass_annotates_the_copy_again_with_entity_words_written_as_entities():
    nlp = spacy.blank("en")
    # a case-insensitive rule finds a part of the name in the first copy, a cased rule the whole name
    nlp.add_pipe("entity_ruler").add_patterns([
        {"label": "MISC", "pattern": [{"LOWER": "advisor"}]},
        {"label": "BUSINESS", "pattern": [{"ORTH": "Fidelity"}, {"ORTH": "Advisor"}]}])
    forms = {"words": {"fidelity": "Fidelity", "advisor": "advisor", "sued": "sued"}, "after": {}, "before": {},
             "entities": {"advisor": "Advisor"}}
    restorer = add_case_restorer(nlp, forms=forms, passage_words=2)
    text = "FIDELITY ADVISOR SUED."
    assert [(e.text, e.label_) for e in nlp(text).ents] == [("ADVISOR", "MISC")]
    restorer.entity_pass = True
    calls = count_calls(nlp)
    docs = list(nlp.pipe([text, "the fidelity fund sued."]))
    assert [(e.text, e.label_) for e in docs[0].ents] == [("FIDELITY ADVISOR", "BUSINESS")]
    assert docs[1].ents == ()
    # the first copies together ("the", "fund": unknown, short: capitals), then only the copy whose entity words changed
    assert calls == [[text, "the fidelity fund sued."], ["Fidelity advisor sued.", "THE Fidelity FUND sued."],
                     ["Fidelity Advisor sued."]]
    # in an ordinary Doc only the words of the passage in capitals are rewritten
    doc = nlp("The advisor met FIDELITY ADVISOR.")
    assert doc._.case_free_passages == [(3, 5)] and [(e.text, e.label_) for e in doc.ents] == [
        ("advisor", "MISC"), ("FIDELITY ADVISOR", "BUSINESS")]
    assert calls[-1] == ["The advisor met Fidelity Advisor."]


def test_transfer_copies_entities_kb_ids_span_groups_and_confidences(nlp):
    source = nlp.make_doc("Acme Corp sued")
    source.ents = [Span(source, 0, 2, label="BUSINESS", kb_id="acme")]
    source.spans["general"] = [Span(source, 0, 2, label="ORG")]
    source._.ent_confidences = [[0, 2, "BUSINESS", 0.8]]
    target = nlp.make_doc("ACME CORP SUED")
    target.ents = [Span(target, 2, 3, label="PERSON")]
    transfer_annotations(source, target)
    assert [(e.text, e.label_, e.kb_id_) for e in target.ents] == [("ACME CORP", "BUSINESS", "acme")]
    assert [(s.text, s.label_) for s in target.spans["general"]] == [("ACME CORP", "ORG")]
    assert target._.ent_confidences == [[0, 2, "BUSINESS", 0.8]]
    with pytest.raises(ValueError, match="2 and 3 tokens"):
        transfer_annotations(nlp.make_doc("a b"), target)


def test_settings_and_forms_are_checked(nlp):
    for config, message in [({"min_share": 0.4}, "min_share"), ({"unknown": "upper"}, "unknown must be"),
                            ({"kinds": ["upper", "shout"]}, "kinds must be some of"), ({"kinds": []}, "kinds must be"),
                            ({"passage_words": 1}, "passage_words must be"), ({"passage_words": -2}, "passage_words")]:
        with pytest.raises(ValueError, match=message):
            spacy.blank("en").add_pipe("case_restorer", config=config)
    restorer = nlp.add_pipe("case_restorer")
    with pytest.raises(ValueError, match="lower-case to its word"):
        restorer.set_forms({"words": {"acme": "Apex"}, "after": {}, "before": {}})
    with pytest.raises(ValueError, match="lower-case to its word"):
        restorer.set_forms({"words": {}, "after": {"the acme": ["Apex", 2]}, "before": {}})
    with pytest.raises(ValueError, match="lower-case to its word"):
        restorer.set_forms({"words": {}, "after": {}, "before": {"acme": ["Acme", 2]}})
    with pytest.raises(ValueError, match="keys 'words', 'after' and 'before'"):
        restorer.set_forms({"acme": "Acme"})
    with pytest.raises(ValueError, match="keys 'words', 'after' and 'before'"):
        restorer.set_forms({"words": {}, "after": {}, "before": {}, "names": {}})
    with pytest.raises(ValueError, match="lower-case to its word"):
        restorer.set_forms({"words": {}, "after": {}, "before": {}, "entities": {"acme": "Apex"}})
    with pytest.raises(ValueError, match="initialize needs"):
        restorer.initialize()
    other = spacy.blank("en").add_pipe("case_restorer", name="elsewhere")
    other.nlp = nlp  # a restorer of another pipeline cannot find its place
    with pytest.raises(ValueError, match="elsewhere is not in the pipeline"):
        other(nlp.make_doc("ACME CORP"))


def test_initialize_from_a_file_a_dict_or_the_training_examples(nlp, tmp_path):
    restorer = nlp.add_pipe("case_restorer")
    srsly.write_json(tmp_path / "forms.json", {"words": {"acme": "Acme"}, "after": {}, "before": {}})
    restorer.initialize(forms=tmp_path / "forms.json")
    assert restorer.forms["words"] == {"acme": "Acme"}
    restorer.initialize(forms={"words": {"sec": "SEC"}, "after": {}, "before": {}})
    assert restorer.forms["words"] == {"sec": "SEC"}
    reference = nlp.make_doc(TEXT)
    nlp.initialize(lambda: [Example(nlp.make_doc(TEXT), reference)])
    assert restorer.forms["words"]["acme"] == "Acme" and restorer.forms["words"]["delaware"] == "Delaware"


def test_round_trips_keep_the_forms_and_settings(nlp, tmp_path):
    add_case_restorer(nlp, forms=mine_case_forms([nlp.make_doc(TEXT)]), unknown="lower", min_share=0.95,
                      kinds=["title", "upper"], passage_words=4, entity_pass=True)
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    restorer = loaded.get_pipe("case_restorer")
    assert restorer.forms == nlp.get_pipe("case_restorer").forms and "entities" in restorer.forms
    assert restorer.settings == {"min_share": 0.95, "unknown": "lower", "kinds": ["upper", "title"], "passage_words": 4,
                                 "entity_pass": True}
    assert [e.label_ for e in loaded(TEXT.upper()).ents] == ["BUSINESS", "GOVERNMENT", "LOCATION", "BUSINESS"]
    copy = spacy.blank("en").add_pipe("case_restorer").from_bytes(restorer.to_bytes())
    assert copy.forms == restorer.forms
    # adding it again replaces the old one, still last
    add_case_restorer(loaded, forms={"words": {"acme": "Acme"}, "after": {}, "before": {}})
    assert loaded.pipe_names[-1] == "case_restorer" and loaded.pipe_names.count("case_restorer") == 1


# --- CLI ---------------------------------------------------------------------------------------

def test_mine_case_forms_and_add_knowledge_with_case_forms_cli(nlp, tmp_path):
    from spacy.tokens import DocBin
    from typer.testing import CliRunner

    from spacy_domain_ner.cli import app

    DocBin(docs=[nlp.make_doc(TEXT)]).to_disk(tmp_path / "train.spacy")
    forms_path = tmp_path / "forms.json"
    result = CliRunner().invoke(app, ["mine-case-forms", str(tmp_path / "train.spacy"), "-o", str(forms_path)])
    assert result.exit_code == 0, result.output
    assert srsly.read_json(forms_path)["words"]["acme"] == "Acme" and "from 1 docs" in result.output
    result = CliRunner().invoke(app, ["mine-case-forms", str(tmp_path / "none.spacy"), "-o", str(tmp_path / "f2.json")])
    assert result.exit_code == 1 and "none.spacy: no such file" in result.output and not (tmp_path / "f2.json").exists()

    nlp.to_disk(tmp_path / "model")
    srsly.write_jsonl(tmp_path / "kb.jsonl", [{"label": "BUSINESS", "text": "Apex Ltd"}])
    args = ["add-knowledge", str(tmp_path / "model"), str(tmp_path / "kb.jsonl"), str(tmp_path / "out"), "--no-strict-labels"]
    result = CliRunner().invoke(app, args + ["--consistency", "--case-forms", str(forms_path)])
    assert result.exit_code == 0, result.output
    loaded = spacy.load(tmp_path / "out")
    assert loaded.pipe_names == ["entity_ruler", "legal_knowledge", "entity_consistency", "case_restorer"]
    assert [e.text for e in loaded(TEXT.lower()).ents] == ["acme corp", "sec", "delaware", "acme corp"]
    # a pipeline that has the restorer keeps it last, with its forms and settings, when components are added
    loaded.remove_pipe("entity_consistency")
    add_case_restorer(loaded, forms=loaded.get_pipe("case_restorer").forms, unknown="lower")
    loaded.to_disk(tmp_path / "with_restorer")
    again = ["add-knowledge", str(tmp_path / "with_restorer"), str(tmp_path / "kb.jsonl"), str(tmp_path / "out2"),
             "--no-strict-labels", "--name", "more_knowledge", "--consistency=true"]
    result = CliRunner().invoke(app, again)
    assert result.exit_code == 0, result.output
    reloaded = spacy.load(tmp_path / "out2")
    assert reloaded.pipe_names[-2:] == ["entity_consistency", "case_restorer"]
    restorer = reloaded.get_pipe("case_restorer")
    assert restorer.forms == loaded.get_pipe("case_restorer").forms and restorer.unknown == "lower"
    # its settings can be changed on the way; new ones go to a restorer added from a forms file
    result = CliRunner().invoke(app, again[:3] + [str(tmp_path / "out3"), "--no-strict-labels", "--name", "more_knowledge",
                                               "--passage-words", "3"])
    assert result.exit_code == 0, result.output
    restorer = spacy.load(tmp_path / "out3").get_pipe("case_restorer")
    assert (restorer.unknown, restorer.passage_words, restorer.kinds) == ("lower", 3, ["upper", "lower", "title"])
    result = CliRunner().invoke(app, args + ["--case-forms", str(forms_path), "--restore-kinds", "lower, title",
                                             "--entity-pass"])
    assert result.exit_code == 0, result.output
    settings = spacy.load(tmp_path / "out").get_pipe("case_restorer").settings
    assert settings["kinds"] == ["lower", "title"] and settings["entity_pass"] is True
    for extra in (["--passage-words", "3"], ["--entity-pass"], ["--no-entity-pass"]):
        result = CliRunner().invoke(app, args + extra)
        assert result.exit_code == 1 and "need --case-forms" in result.output
    result = CliRunner().invoke(app, args + ["--case-forms", str(forms_path), "--entity-pass=maybe"])
    assert result.exit_code == 2 and "--entity-pass takes true or false" in result.output
    result = CliRunner().invoke(app, args + ["--case-forms", str(tmp_path / "missing.json")])
    assert result.exit_code == 1 and "missing.json: no such file" in result.output
    (tmp_path / "bad.json").write_text('{"acme": "Acme"}', encoding="utf8")
    result = CliRunner().invoke(app, args + ["--case-forms", str(tmp_path / "bad.json")])
    assert result.exit_code == 1 and "keys 'words', 'after' and 'before'" in result.output


# --- a transformer that ignores case --------------------------------------------------------------

def test_copies_take_the_output_of_a_transformer_that_ignores_case(tiny_bert, one_torch_thread, monkeypatch):
    import spacy_domain_ner.casing.restorer as restorer_module
    from conftest import TRF_TEXT, trf_pipeline

    nlp = trf_pipeline(tiny_bert)
    trf = nlp.get_pipe("transformer")
    assert restorer_module.ignores_case(trf) and not restorer_module.ignores_case(nlp.get_pipe("ner"))
    # the premise: the uncased encoder's output for the truecased copy is the original's
    original, recased = nlp(TRF_TEXT.upper()), nlp(TRF_TEXT)
    a, b = original._.trf_data.tensors[0], recased._.trf_data.tensors[0]
    assert a.shape == b.shape and abs(a - b).max() < 1e-5
    add_case_restorer(nlp, forms=mine_case_forms([nlp.make_doc(TRF_TEXT)]))
    calls = []
    predict = trf.predict
    monkeypatch.setattr(trf, "predict", lambda docs: calls.append(len(list(docs))) or predict(docs), raising=False)
    doc = nlp(TRF_TEXT.upper())
    assert doc._.case_free == "upper" and calls == [1]  # the original only; the copy took its output
    reused = [(e.start, e.end, e.label_) for e in doc.ents]
    monkeypatch.setattr(restorer_module, "ignores_case", lambda proc: False)
    again = nlp(TRF_TEXT.upper())
    assert calls == [1, 1, 1] and [(e.start, e.end, e.label_) for e in again.ents] == reused
    # a tokenizer that keeps case is run on the copy
    monkeypatch.undo()
    monkeypatch.setattr(trf.model.tokenizer, "tokenize", lambda text: text.split(), raising=False)
    assert not restorer_module.ignores_case(trf)
