import json

import pytest
import spacy
import typer
from spacy.tokens import Doc, DocBin
from typer.testing import CliRunner

from conftest import save_ruler_pipeline
from spacy_domain_ner.cli import app
from spacy_domain_ner.cli.chain import parse_chain, run_command

KNOWN = ["evaluate", "mine-kb"]


@pytest.fixture()
def setup(tmp_path):
    vocab = spacy.blank("en").vocab
    docs = [Doc(vocab, words=["Acme", "Inc.", "sued", "SunGard", "."], ents=["B-BUSINESS", "I-BUSINESS", "O", "B-BUSINESS", "O"]),
            Doc(vocab, words=["The", "SEC", "filed", "."], ents=["O", "B-GOVERNMENT", "O", "O"])]
    DocBin(docs=docs).to_disk(tmp_path / "gold.spacy")
    save_ruler_pipeline(tmp_path / "all", [{"label": "BUSINESS", "pattern": "Acme Inc."}, {"label": "BUSINESS", "pattern": "SunGard"},
                                           {"label": "GOVERNMENT", "pattern": "SEC"}])
    save_ruler_pipeline(tmp_path / "half", [{"label": "BUSINESS", "pattern": "SunGard"}, {"label": "BUSINESS", "pattern": "SEC"}])
    return tmp_path


def test_parse_chain_splits_checks_and_keeps_order():
    assert parse_chain(['evaluate m "gold dir/g.spacy" -o x.json', "mine-kb a.spacy -o kb.jsonl"], known=KNOWN) == [
        ["evaluate", "m", "gold dir/g.spacy", "-o", "x.json"], ["mine-kb", "a.spacy", "-o", "kb.jsonl"]]
    for lines, message in ((["evaluate m g", "  "], "command 2 is empty"),
                           (["train x"], "command 1: no command 'train' .commands: evaluate, mine-kb"),
                           (["chain 'evaluate m g'"], "command 1: a chain cannot run another chain"),
                           (['evaluate "m g'], r"command 1 \('evaluate \"m g'\): No closing quotation"),
                           ([], "no commands to run")):
        with pytest.raises(ValueError, match=message):
            parse_chain(lines, known=KNOWN + ["chain"])


def test_run_command_returns_the_exit_status(setup):
    root = typer.main.get_command(app)
    out = setup / "m.json"
    assert run_command(root, ["evaluate", str(setup / "all"), str(setup / "gold.spacy"), "-o", str(out), "--no-progress"]) == 0
    assert json.loads(out.read_text())["ents_f"] == 1.0
    # the command's own error (typer.Exit 1), and a usage error (click's status 2)
    assert run_command(root, ["evaluate", str(setup / "all"), str(setup / "missing.spacy"), "-o", str(out)]) == 1
    assert run_command(root, ["evaluate", str(setup / "all"), str(setup / "gold.spacy"), "--no-such-option"]) == 2


class FakeRoot:
    """A CLI whose main exits as told: SystemExit(code), or returns (no exit at all)."""

    def __init__(self, exit_with):
        self.exit_with = exit_with

    def main(self, *, args, prog_name, standalone_mode):
        assert standalone_mode  # errors shown and mapped to a status as on the command line
        if self.exit_with != "return":
            raise SystemExit(self.exit_with)


def test_run_command_maps_every_kind_of_exit_to_a_status():
    # None and 0 are success; a message (sys.exit("...")) is status 1, as Python's own exit gives it
    assert [run_command(FakeRoot(code), ["x"]) for code in (None, 0, 3, "failed", "return")] == [0, 0, 3, 1, 0]


def test_chain_gives_what_separate_runs_give(setup):
    runner = CliRunner()
    gold = str(setup / "gold.spacy")
    lines = [f"evaluate {setup / model} {gold} -o {setup / 'chained' / model}.json --no-progress --robustness --perturbations upper,lower"
             for model in ("all", "half")]
    res = runner.invoke(app, ["chain", *lines])
    assert res.exit_code == 0, res.output
    assert "chain 1/2: evaluate" in res.output and "chain 2/2: evaluate" in res.output
    for line, model in zip(lines, ("all", "half")):
        alone = runner.invoke(app, line.replace("chained", "alone").split())
        assert alone.exit_code == 0, alone.output
        chained, single = (json.loads((setup / kind / f"{model}.json").read_text()) for kind in ("chained", "alone"))
        for key in ("ents_f", "ents_per_type", "confusion", "robustness"):
            assert chained[key] == single[key], key
    scores = {model: json.loads((setup / "chained" / f"{model}.json").read_text())["ents_f"] for model in ("all", "half")}
    assert scores["all"] == 1.0 and scores["half"] == pytest.approx(2 * 0.5 * 1 / 3 / (0.5 + 1 / 3))


def test_chain_stops_at_the_first_failure(setup):
    runner = CliRunner()
    gold = str(setup / "gold.spacy")
    first, third = setup / "first.json", setup / "third.json"
    res = runner.invoke(app, ["chain", f"evaluate {setup / 'all'} {gold} -o {first} --no-progress",
                              f"evaluate {setup / 'all'} {setup / 'missing.spacy'} -o {setup / 'second.json'}",
                              f"evaluate {setup / 'all'} {gold} -o {third} --no-progress"])
    assert res.exit_code == 1
    assert "missing.spacy: no such file" in res.output and "chain stopped at command 2 of 3 (evaluate): status 1" in res.output
    assert first.exists() and not (setup / "second.json").exists() and not third.exists()
    # a usage error stops it with click's status
    res = runner.invoke(app, ["chain", f"evaluate {setup / 'all'} {gold} --no-such-option"])
    assert res.exit_code == 2 and "No such option" in res.output
    # a line that is not a command: nothing runs
    first.unlink()
    res = runner.invoke(app, ["chain", f"evaluate {setup / 'all'} {gold} -o {first} --no-progress", "evalute x y"])
    assert res.exit_code == 1 and "command 2: no command 'evalute'" in res.output
    assert not first.exists()
