"""The installed package is what setup.cfg declares: its entry points resolve in a fresh process (no
test may have imported the module already), and the `test` extra matches requirements-test.txt."""
import configparser
import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set, Tuple

ROOT = Path(__file__).parent.parent


def setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg", encoding="utf8")
    return parser


def declared_entry_points() -> Set[Tuple[str, str, str]]:
    """(group, name, module:attr) of every registry entry point in setup.cfg."""
    found = set()
    for group, value in setup_cfg()["options.entry_points"].items():
        if group == "console_scripts":
            continue
        for line in filter(None, (line.strip() for line in value.splitlines())):
            name, _, target = line.partition("=")
            found.add((group, name.strip(), target.strip()))
    return found


def requirement_lines(path: Path) -> List[str]:
    """The requirements of a pip file, following `-r`, without comments."""
    lines = []
    for line in path.read_text(encoding="utf8").splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r"):
            lines += requirement_lines(path.parent / line[2:].strip())
        elif line:
            lines.append(line)
    return lines


def name_of(requirement: str) -> str:
    return re.split(r"[<>=!~\[;]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def test_installed_entry_points_are_the_declared_ones():
    installed = {(ep.group, ep.name, ep.value) for ep in importlib.metadata.distribution("spacy-domain-ner").entry_points
                 if ep.group != "console_scripts"}
    assert installed == declared_entry_points(), "the installed metadata is stale: pip install -e ."


def test_every_entry_point_resolves_in_a_fresh_process():
    # A fresh interpreter: the registry must find each name through its entry point alone.
    code = r'''
import json, sys
import spacy
from spacy.util import registry
from thinc.api import registry as thinc_registry
assert not [m for m in sys.modules if m.startswith("spacy_domain_ner")], "imported before any lookup"
tables = {"spacy_factories": registry.factories, "spacy_architectures": registry.architectures,
          "spacy_readers": registry.readers, "spacy_scorers": registry.scorers, "spacy_callbacks": registry.callbacks,
          "spacy_loggers": registry.loggers, "spacy_augmenters": registry.augmenters, "spacy_misc": registry.misc, "thinc_optimizers": thinc_registry.optimizers}
found = {}
for group, name in json.loads(sys.argv[1]):
    if group == "spacy_factories":  # a Language loads the factories' entry points (they come last)
        spacy.blank("en")
    func = tables[group].get(name)
    found[name] = f"{func.__module__}:{func.__name__}"
print(json.dumps(found))
'''
    declared = declared_entry_points()
    names = sorted(((group, name) for group, name, _ in declared), key=lambda pair: (pair[0] == "spacy_factories", pair))
    result = subprocess.run([sys.executable, "-c", code, json.dumps(names)], capture_output=True, text=True, cwd=ROOT / "tests")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout) == {name: target for _, name, target in declared}


def test_the_test_extra_matches_requirements_test():
    options = setup_cfg()["options"]
    install = {name_of(r) for r in options["install_requires"].split("\n") if r.strip()}
    extra = sorted(r.strip() for r in setup_cfg()["options.extras_require"]["test"].split("\n") if r.strip())
    pinned_here = [r for r in requirement_lines(ROOT / "requirements-test.txt") if name_of(r) not in install]
    assert extra == sorted(pinned_here)
    # the libraries the package imports itself are declared, not left to spacy-transformers
    assert {"transformers", "safetensors", "torch"} <= install
