"""The conventions every command of the CLI follows: boolean options are `--x/--no-x` flag pairs that
also take `--x=true|false` (for project variables), a short flag means one long option everywhere,
`--help` lists the commands in workflow order, and help texts say what a setting does."""
import re
import shlex
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner
from weasel.util import load_project_config

from spacy_domain_ner.cli import app
from spacy_domain_ner.cli._app import WORKFLOW_ORDER, flag_values
from spacy_domain_ner.cli.chain import parse_chain

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def root():
    return typer.main.get_command(app)


def options(command):
    return [p for p in command.params if type(p).__name__.endswith("Option")]


def test_flag_values_turn_values_of_flag_pairs_into_flags(root):
    knowledge = root.commands["add-knowledge"]
    args = ["m", "kb", "out", "--consistency=false", "--entity-pass=True", "--strict-labels=0", "--case-sensitive=YES",
            "--no-consistency=true", "--no-entity-pass=no", "--mode", "fill"]
    assert flag_values(args, knowledge) == ["m", "kb", "out", "--no-consistency", "--entity-pass", "--no-strict-labels",
                                            "--case-sensitive", "--no-consistency", "--entity-pass", "--mode", "fill"]
    # left alone: flags without a value, other options' values, and everything after `--`
    same = ["m", "--consistency", "--no-entity-pass", "--mode=fill", "--restore-kinds=true", "--", "--consistency=false"]
    assert flag_values(same, knowledge) == same
    assert flag_values(["x.jsonl", "-o", "out.spacy", "--natural-spacing=1"], root.commands["convert"]) == [
        "x.jsonl", "-o", "out.spacy", "--natural-spacing"]
    # spaCy's config overrides of `train` are not flag pairs of this CLI
    assert flag_values(["c.cfg", "--training.x=true"], root.commands["train"]) == ["c.cfg", "--training.x=true"]
    for bad in ("maybe", "", "2"):
        with pytest.raises(ValueError, match=f"--consistency takes true or false .* not '{bad}'"):
            flag_values([f"--consistency={bad}"], knowledge)


def test_the_cli_takes_values_of_flag_pairs(root):
    runner = CliRunner()
    # a usage error of the command (status 2), before the command runs
    result = runner.invoke(app, ["package", "m", "out", "--name", "x", "--version", "1", "--int8=perhaps"])
    assert result.exit_code == 2 and "--int8 takes true or false" in result.output and "package" in result.output
    # a valid value gets as far as the command's own checks
    result = runner.invoke(app, ["package", "/no/such/model", "out", "--name", "x", "--version", "1", "--int8=false"])
    assert result.exit_code == 1 and "not a pipeline directory" in result.output


def test_chain_checks_the_values_of_every_command_before_running_any(tmp_path):
    result = CliRunner().invoke(app, ["chain", f"mine-case-forms {tmp_path / 'none.spacy'} -o {tmp_path / 'f.json'}",
                                      "evaluate m g.spacy -o x.json --robustness=sometimes"])
    assert result.exit_code == 1 and "command 2 (evaluate): --robustness takes true or false" in result.output
    assert "chain 1/2" not in result.output  # nothing ran
    # a valid value runs: the first command's own error stops the chain
    result = CliRunner().invoke(app, ["chain", f"mine-case-forms {tmp_path / 'none.spacy'} -o {tmp_path / 'f.json'}",
                                      "evaluate m g.spacy -o x.json --robustness=true"])
    assert result.exit_code == 1 and "chain 1/2" in result.output and "none.spacy: no such file" in result.output


@pytest.mark.parametrize("value,flag", [(True, "--consistency"), (False, "--no-consistency")])
def test_project_variables_reach_the_flag_pairs(root, value, flag):
    # weasel writes a boolean variable as true/false: the `knowledge` step's chain and `package` take it
    project = load_project_config(ROOT, overrides={"vars.consistency": value, "vars.package_int8": value})
    commands = {c["name"]: c for c in project["commands"]}
    lines = shlex.split(commands["knowledge"]["script"][0])[4:]
    add = next(argv for argv in parse_chain(lines, known=root.commands) if argv[0] == "add-knowledge")
    assert f"--consistency={str(value).lower()}" in add and flag in flag_values(add[1:], root.commands["add-knowledge"])
    package = shlex.split(commands["package"]["script"][0])
    assert ("--int8" if value else "--no-int8") in flag_values(package[4:], root.commands["package"])


def test_every_boolean_option_is_a_flag_pair(root):
    for name, command in root.commands.items():
        for option in options(command):
            if option.is_flag and option.name != "help":
                long = option.opts[0]
                assert option.secondary_opts == ["--no-" + long[2:]], (name, option.opts, option.secondary_opts)
            assert option.metavar != "true|false", (name, option.opts)


def test_a_short_flag_means_one_long_option_everywhere(root):
    meaning = {}
    for name, command in root.commands.items():
        for option in options(command):
            longs = [o for o in option.opts if o.startswith("--")]
            for short in (o for o in option.opts if not o.startswith("--")):
                meaning.setdefault(short, set()).update(longs)
    assert {short: longs for short, longs in meaning.items() if len(longs) > 1} == {}
    assert meaning["-o"] == {"--output"} and meaning["-m"] == {"--label-map"}


def test_help_lists_the_commands_in_workflow_order(root):
    assert set(root.commands) - set(WORKFLOW_ORDER) == set(), "place new commands in _app.WORKFLOW_ORDER"
    assert root.list_commands(None) == [name for name in WORKFLOW_ORDER if name in root.commands]
    result = CliRunner().invoke(app, ["--help"])
    # a command's row starts with its name (rich draws a box edge before it, plain help indents it)
    listed = [m.group(1) for m in re.finditer(r"^\W? {1,2}([a-z][\w-]*) {2,}", result.output, re.M)]
    assert result.exit_code == 0 and [name for name in listed if name in root.commands] == root.list_commands(None)


def test_help_texts_name_settings_not_registered_functions(root):
    for name, command in root.commands.items():
        texts = [command.help or ""] + [p.help or "" for p in command.params if hasattr(p, "help")]
        for text in texts:
            assert ".v1" not in text and ".v2" not in text and "TransformerModel" not in text, (name, text)
