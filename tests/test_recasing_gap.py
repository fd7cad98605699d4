"""benchmarks/recasing_gap.py: the causes of the F1 that text without case signal loses."""
import json
import subprocess
import sys
from pathlib import Path

import spacy
import srsly
from spacy.tokens import DocBin, Span

from conftest import load_benchmark
from spacy_domain_ner.casing.forms import mine_case_forms

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "recasing_gap.py"
gap = load_benchmark("recasing_gap")

PATTERNS = [{"label": "BUSINESS", "pattern": "Acme Advisor Fund"}, {"label": "GOVERNMENT", "pattern": "SEC"},
            {"label": "GOVERNMENT", "pattern": [{"LOWER": "sec"}]}]


def gold_and_forms(nlp):
    corpus = nlp.make_doc("The advisor met the SEC. The fund and the advisor met Acme.")
    doc = nlp.make_doc("Then Acme Advisor Fund sued the SEC today.")
    doc.ents = [Span(doc, 1, 4, label="BUSINESS"), Span(doc, 6, 7, label="GOVERNMENT")]
    return [doc], mine_case_forms([corpus])


def test_errors_and_scores_separate_entity_words_from_the_rest():
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(PATTERNS)  # cased name, and a rule that reads "sec" in any case
    gold, forms = gold_and_forms(nlp)
    # "advisor", "fund": lower case in the forms, capitalized in the name; "then", "sued", "today": unknown
    # ("auto": up to four letters in capitals, longer ones capitalized)
    assert gap.truecasing_errors(gold, forms) == {
        "entity/known": [2, 4], "other/known": [0, 1], "other/unknown": [3, 3]}
    assert [d.text for d in gap.copies(gold, forms, kind="upper", mode="truecase")] == ["THEN Acme advisor fund SUED the SEC Today."]
    assert [d.text for d in gap.copies(gold, forms, kind="lower", mode="gold_entities")] == ["THEN Acme Advisor Fund SUED the SEC Today."]
    assert [d.text for d in gap.copies(gold, forms, kind="lower", mode="gold_other")] == ["Then Acme advisor fund sued the SEC today."]
    assert gap.score(nlp, gold, forms) == {"truecase": 66.67, "gold_entities": 100.0, "gold_other": 66.67,
                                           "union": 66.67, "clean": 100.0}
    # the union adds what the re-cased text itself yields where the copy has nothing ("then" only in lower case)
    nlp.get_pipe("entity_ruler").add_patterns([{"label": "MISC", "pattern": [{"ORTH": "then"}]}])
    assert gap.score(nlp, gold, forms, kind="lower")["union"] == 50.0
    assert gap.score(nlp, gold, forms, kind="upper")["union"] == 66.67


def test_command_line(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(PATTERNS)
    gold, forms = gold_and_forms(nlp)
    nlp.to_disk(tmp_path / "nlp")
    srsly.write_json(tmp_path / "forms.json", forms)
    DocBin(docs=gold).to_disk(tmp_path / "dev.spacy")
    out = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "nlp"), str(tmp_path / "forms.json"),
                          str(tmp_path / "dev.spacy"), "--kind", "upper"], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["f1"]["clean"] == 100.0 and result["truecasing_errors"]["entity/known"] == [2, 4]
