"""project.yml declares what each command reads (deps) and writes (outputs), so that `spacy project
run` reruns a command exactly when something it reads changed. Checked statically: the file
arguments of every script, the package modules the script or its training config imports (the
import closure, lazy imports included), and the files the config itself names."""
import configparser
import re
import shlex
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Set

import pytest
from weasel.util import load_project_config

from conftest import imported_names

ROOT = Path(__file__).parent.parent
# An argument under one of these is a file the script reads or writes.
DATA_ROOTS = ("assets", "configs", "corpus", "training", "metrics", "reports", "annotated", "packages")
# The CLI's dispatch: every `python -m spacy_domain_ner` command loads these, and their content
# shapes no result (cli/__init__ imports every command module only to register it).
DISPATCH = {"spacy_domain_ner/__init__.py", "spacy_domain_ner/__main__.py", "spacy_domain_ner/cli/__init__.py",
            "spacy_domain_ner/cli/_app.py"}
# "." (package --source): the whole checkout, built into the plugin wheel; its deps name what counts.
WHOLE_PROJECT = "."


def module_file(name: str) -> Optional[Path]:
    """The source file of a package module or package, if it exists."""
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(name: str) -> Set[str]:
    """The package modules a module imports anywhere (top level or inside functions)."""
    path = module_file(name)
    found = imported_names(name, path)
    return {m for m in found if m.split(".")[0] == "spacy_domain_ner" and module_file(m) is not None}


def module_closure(roots: Iterable[str]) -> Set[str]:
    """The files of the modules `roots` import, transitively, with their parent packages, without DISPATCH."""
    todo, seen = list(roots), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if rel(module_file(name)) in DISPATCH:
            continue
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # a package's __init__ runs first
        todo += sorted(imported_modules(name))
    return {rel(module_file(name)) for name in seen} - DISPATCH


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def cli_modules() -> Dict[str, str]:
    """Subcommand name -> the CLI module that defines it."""
    found = {}
    for path in sorted((ROOT / "spacy_domain_ner" / "cli").glob("*.py")):
        for command in re.findall(r'@app\.command\("([^"]+)"[,)]', path.read_text(encoding="utf8")):
            found[command] = f"spacy_domain_ner.cli.{path.stem}"
    return found


def entry_point_modules() -> Dict[str, str]:
    """Registered name (or factory name) -> module, from setup.cfg's entry points."""
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg", encoding="utf8")
    found = {}
    for group, value in parser["options.entry_points"].items():
        if group == "console_scripts":
            continue
        for line in filter(None, (line.strip() for line in value.splitlines())):
            name, _, target = line.partition("=")
            found[name.strip()] = target.strip().split(":")[0]
    return found


def config_needs(config_path: Path, overridden: Set[str]) -> Set[str]:
    """The package modules a training config uses (registered names, factories) and the files its
    [paths] name that the script does not override."""
    from spacy.util import load_config

    text = config_path.read_text(encoding="utf8")
    registered = entry_point_modules()
    names = set(re.findall(r'"(spacy_domain_ner\.[\w.]+)"', text)) | set(re.findall(r'^factory\s*=\s*"(\w+)"', text, re.M))
    needs = module_closure(registered[name] for name in names if name in registered)
    for key, value in load_config(config_path, interpolate=False).get("paths", {}).items():
        if f"paths.{key}" not in overridden and isinstance(value, str) and value and (ROOT / value).exists():
            needs.add(value)
    return needs


def is_file_argument(token: str) -> bool:
    if not token or token.startswith("-") or token == WHOLE_PROJECT or "://" in token:
        return False
    return token.split("/")[0] in DATA_ROOTS or (ROOT / token).exists()


def script_needs(line: str) -> Set[str]:
    """The files one script line reads or writes: its file arguments and the modules/config it runs."""
    tokens = shlex.split(line)
    overridden = {t[2:] for t in tokens if t.startswith("--paths.")}
    needs = {t for t in tokens[3:] if is_file_argument(t)}  # after `python -m MODULE`
    if tokens[:4] == ["python", "-m", "spacy_domain_ner", "chain"]:
        # each argument is one command line of the package, run in this process
        return set().union(*(script_needs(f"python -m spacy_domain_ner {sub}") for sub in tokens[4:]))
    if tokens[:3] == ["python", "-m", "spacy_domain_ner"]:
        commands = cli_modules()
        assert tokens[3] in commands, f"{tokens[3]}: no such spacy_domain_ner command"
        needs |= module_closure([commands[tokens[3]]])
        if tokens[3] == "train":  # spaCy's train: the config's registered functions run too
            needs |= config_needs(ROOT / tokens[4], overridden)
    elif tokens[:4] == ["python", "-m", "spacy", "train"]:
        needs |= config_needs(ROOT / tokens[4], overridden)
    return needs


def covered(path: str, deps: List[str], outputs: List[str]) -> bool:
    """A path is covered by a dep or output that is it or a folder above it, or by outputs below it (a written folder)."""
    def inside(child: str, parent: str) -> bool:
        return child == parent or child.startswith(parent.rstrip("/") + "/")

    return any(inside(path, p) for p in deps + outputs) or any(inside(o, path) for o in outputs)


@pytest.fixture(scope="module", params=["ner_trf", "ner_hybrid"])
def project(request) -> Dict:
    # the commands that train `configs/${vars.config}.cfg` read what the README's real-corpus
    # command's config (ner_hybrid) uses, too
    return load_project_config(ROOT, overrides={"vars.config": request.param})


def outputs_of(command: Dict) -> List[str]:
    return command.get("outputs", []) + command.get("outputs_no_cache", [])


def test_every_file_a_script_uses_is_a_dep_or_an_output(project):
    missing = {}
    for command in project["commands"]:
        deps, outputs = command.get("deps", []), outputs_of(command)
        needs = set().union(*(script_needs(line) for line in command["script"]))
        gaps = sorted(path for path in needs if not covered(path, deps, outputs))
        if gaps:
            missing[command["name"]] = gaps
    assert missing == {}, "add these to the commands' deps (read) or outputs (written)"


def test_deps_exist_or_are_made_by_a_command(project):
    made = [path for command in project["commands"] for path in outputs_of(command)]
    for command in project["commands"]:
        for dep in command.get("deps", []):
            assert (ROOT / dep).exists() or covered(dep, [], made), f"{command['name']}: {dep} is neither a file nor an output"
            assert not any(o == dep for o in outputs_of(command)), f"{command['name']}: {dep} is its own dep and output"


def test_the_checks_see_lazy_imports_and_config_modules():
    # evaluate imports robustness and quantize inside its function; the transformer config uses bucketing
    # and offline through the architecture, and the loggers through its [training.logger] entry.
    assert {"spacy_domain_ner/evaluation/robustness.py", "spacy_domain_ner/models/quantize.py", "spacy_domain_ner/corpus/labels.py"} <= script_needs(
        "python -m spacy_domain_ner evaluate training/legal/model-best corpus/legal/dev.spacy --output metrics/legal.json")
    # a chain needs what each of its command lines needs
    chained = script_needs("python -m spacy_domain_ner chain 'mine-case-forms corpus/legal/train.spacy -o corpus/kb/case_forms.json' "
                           "'evaluate training/fusion/model-best corpus/news/test.spacy -o metrics/fusion_on_news.json'")
    assert {"corpus/legal/train.spacy", "corpus/kb/case_forms.json", "spacy_domain_ner/casing/forms.py", "training/fusion/model-best",
            "corpus/news/test.spacy", "metrics/fusion_on_news.json", "spacy_domain_ner/evaluation/robustness.py"} <= chained
    trf = script_needs("python -m spacy_domain_ner train configs/ner_trf.cfg --paths.train corpus/legal/train.spacy")
    assert {"configs/ner_trf.cfg", "corpus/legal/train.spacy", "spacy_domain_ner/models/bucketing.py", "spacy_domain_ner/models/offline.py",
            "spacy_domain_ner/training/loggers.py", "spacy_domain_ner/models/architectures.py"} <= trf
    assert [path for path in trf if path.startswith("spacy_domain_ner/cli/")] == ["spacy_domain_ner/cli/train.py"]
    assert covered("corpus/legal/train.spacy", ["corpus/legal"], []) and covered("reports/x", [], ["reports/x/report.md"])
    assert not covered("corpus/legal/train.spacy", ["corpus/legal/dev.spacy"], ["corpus/legal-x/train.spacy"])


def test_every_transformer_training_gets_the_same_settings(project):
    # The settings are written once (vars.train_overrides); the study's trainings of the recipe and its
    # variants all pass them, so a cure is the only difference from the recipe.
    commands = {c["name"]: c for c in project["commands"]}
    settings = project["vars"]["train_overrides"]
    assert "--training.batcher.size" in settings and "--training.max_steps" in settings
    for name in ("train", "train-news", "train-adversarial", "train-dapt", "train-multitask", "train-mixed"):
        assert settings in commands[name]["script"][0], name
        assert commands[name]["script"][0].startswith("python -m spacy_domain_ner train "), name


def test_the_product_workflow_holds_no_study_step(project):
    # `all` is the product: nothing in it reads the news corpus or a news label map.
    commands = {c["name"]: c for c in project["commands"]}
    for name in project["workflows"]["all"]:
        text = " ".join(commands[name]["script"] + commands[name].get("deps", []))
        assert "news" not in text and "legal_to_news" not in text, name
    assert project["workflows"]["all"][-1] == "package" and "study" in project["workflows"]


def test_package_commands_write_no_bytecode_into_the_subpackages(tmp_path):
    # Deps name whole subpackages, whose checksums cover every file: a step that wrote .pyc files
    # there would make the steps before it look stale.
    import os
    import shutil
    import subprocess
    import sys

    shutil.copytree(ROOT / "spacy_domain_ner", tmp_path / "spacy_domain_ner", ignore=shutil.ignore_patterns("__pycache__"))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}  # the default
    result = subprocess.run([sys.executable, "-m", "spacy_domain_ner", "--help"], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert result.returncode == 0 and "train" in result.stdout, result.stderr
    written = [p.relative_to(tmp_path).as_posix() for p in (tmp_path / "spacy_domain_ner").rglob("*.pyc")]
    assert all(p.startswith("spacy_domain_ner/__pycache__/") for p in written), written
    assert not any("/cli/" in p or "/knowledge/" in p for p in written)
