"""The generated reference pages are current and complete: docs/cli.md covers every command of the
typer app, docs/api.md every entry point of setup.cfg, and README.md's project block is what
`spacy project document` writes for project.yml. Also the generator's parts on small inputs:
docstring parsing, type names, the README splice and `--check`."""
import configparser
import difflib
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Union

import pytest
import typer
from weasel.cli.document import MARKER_END, MARKER_START, project_document

from spacy_domain_ner import reference
from spacy_domain_ner.cli import app

ROOT = Path(__file__).parent.parent
REGENERATE = "python -m spacy_domain_ner.reference docs"


@pytest.fixture(scope="module")
def cli_page() -> str:
    return reference.cli_markdown()


@pytest.fixture(scope="module")
def api_page() -> str:
    return reference.api_markdown()


def stale_message(path: Path, expected: str) -> str:
    """Which file is stale, the command that regenerates it, and the first lines that differ."""
    actual = path.read_text(encoding="utf8").splitlines() if path.is_file() else []
    diff = list(difflib.unified_diff(actual, expected.splitlines(), "in the repository", "generated", lineterm=""))
    return f"{path.relative_to(ROOT)} is stale: regenerate it with `{REGENERATE}`\n" + "\n".join(diff[:30])


def declared_entry_points() -> List[str]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg", encoding="utf8")
    names = []
    for group, value in parser["options.entry_points"].items():
        if group != "console_scripts":
            names += [line.partition("=")[0].strip() for line in value.splitlines() if line.strip()]
    return names


# The pages in the repository


@pytest.mark.parametrize("name", ["cli.md", "api.md"])
def test_the_pages_are_current(name, cli_page, api_page):
    path = ROOT / "docs" / name
    expected = cli_page if name == "cli.md" else api_page
    assert path.is_file() and path.read_text(encoding="utf8") == expected, stale_message(path, expected)


def test_every_entry_point_has_a_section(api_page):
    names = declared_entry_points()
    assert len(names) >= 10
    missing = [name for name in names if f"### `{name}`" not in api_page or f"| `{name}` |" not in api_page]
    assert missing == [], f"not in docs/api.md: {missing}"


def test_every_command_and_option_is_on_the_cli_page(cli_page):
    group = typer.main.get_command(app)
    assert len(group.commands) >= 10
    for name, command in group.commands.items():
        assert f"## `{name}`" in cli_page and f"(#{name})" in cli_page, name
        section = cli_page.split(f"## `{name}`", 1)[1].split("\n## ", 1)[0]
        options = [param for param in command.params if param.param_type_name == "option"]
        for opt in [opt for param in options for opt in param.opts + param.secondary_opts]:
            assert f"`{opt}`" in section, f"{name} {opt}"


def test_commands_are_in_workflow_order(cli_page):
    from spacy_domain_ner.cli._app import WORKFLOW_ORDER

    positions = [cli_page.index(f"## `{name}`") for name in WORKFLOW_ORDER]
    assert positions == sorted(positions)


def test_the_readme_block_is_what_spacy_project_document_writes(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf8")
    start, end = MARKER_START.format(tag="WEASEL"), MARKER_END.format(tag="WEASEL")
    assert start in readme and end in readme, f"README.md has no project block: add it with `{REGENERATE}`"
    block = start + readme.split(start, 1)[1].split(end, 1)[0] + end
    project_document(ROOT, tmp_path / "README.md")  # a new file: weasel writes the block alone
    expected = (tmp_path / "README.md").read_text(encoding="utf8").strip()
    assert block == expected, f"README.md's project block is stale: regenerate it with `{REGENERATE}`"
    assert reference.project_block(project_dir=ROOT) == expected


def test_the_pages_do_not_depend_on_the_terminal_or_the_checkout(monkeypatch, cli_page, api_page):
    monkeypatch.setenv("COLUMNS", "30")
    monkeypatch.setenv("TERM", "xterm-256color")
    assert reference.cli_markdown() == cli_page
    for page in (cli_page, api_page):
        assert "\x1b" not in page and str(ROOT) not in page and page.endswith("\n") and not page.endswith("\n\n")


# The generator's parts


def test_parse_docstring_reads_spacy_style_arguments():
    doc = """Do something useful
    over two lines.

    Note: prose that looks like an argument line.

    path (Path): The input,
        continued on an indented line.
    limit: Without a type.
    L2, beta1: Shared by two names.
    RETURNS (int): The count.
    """
    parsed = reference.parse_docstring(doc, names=["path", "limit", "L2", "beta1"])
    assert parsed.summary == "Do something useful over two lines."
    assert parsed.args == {"path": "The input, continued on an indented line.", "limit": "Without a type.",
                           "L2": "Shared by two names.", "beta1": "Shared by two names."}
    assert parsed.returns == "The count."


def test_parse_docstring_without_a_summary():
    parsed = reference.parse_docstring("RETURNS (Callable): The scorer.", names=[])
    assert parsed == reference.Docstring("", {}, "The scorer.")
    assert reference.parse_docstring(None, names=["x"]) == reference.Docstring("", {}, "")


@pytest.mark.parametrize("annotation,expected", [
    (Optional[Path], "Optional[Path]"),
    (Union[str, Path, None], "Optional[Union[str, Path]]"),
    (Callable[[List[int]], Iterator[str]], "Callable[[List[int]], Iterator[str]]"),
    (Callable[..., None], "Callable[..., None]"),
    (Dict[str, Any], "Dict[str, Any]"),
    (list, "List"),
    (int, "int"),
])
def test_type_name_writes_annotations_as_the_source_does(annotation, expected):
    assert reference.type_name(annotation) == expected


def test_readme_block_is_appended_then_replaced_in_place():
    start, end = MARKER_START.format(tag="WEASEL"), MARKER_END.format(tag="WEASEL")
    first, second = f"{start}\n\n# one\n\n{end}", f"{start}\n\n# two\n\n{end}"
    text = reference.readme_with_block("# Title\n\nProse.\n", first)
    assert text == f"# Title\n\nProse.\n\n{first}\n"
    edited = text.replace("# Title", "# New title") + "\nAfter the block.\n"
    assert reference.readme_with_block(edited, second) == edited.replace(first, second)
    old_tag = f"{MARKER_START.format(tag='SPACY PROJECT')}\nold\n{MARKER_END.format(tag='SPACY PROJECT')}"
    assert reference.readme_with_block(f"x\n{old_tag}\ny\n", second) == f"x\n{second}\ny\n"


def test_docs_command_writes_then_checks(tmp_path, capsys):
    shutil.copy(ROOT / "project.yml", tmp_path / "project.yml")
    readme = tmp_path / "README.md"
    readme.write_text("# A project\n", encoding="utf8")
    docs = tmp_path / "docs"
    args = ["docs", str(docs), "--readme", str(readme)]
    assert reference.main(args + ["--check"]) == 1
    out = capsys.readouterr().out
    assert all(f"stale: {path}" in out for path in (docs / "cli.md", docs / "api.md", readme)) and REGENERATE in out
    assert reference.main(args) == 0
    assert readme.read_text(encoding="utf8").startswith("# A project\n\n" + MARKER_START.format(tag="WEASEL"))
    assert reference.main(args + ["--check"]) == 0
    assert reference.main(["readme", str(readme), "--check"]) == 0
    (docs / "cli.md").write_text("edited\n", encoding="utf8")
    capsys.readouterr()
    assert reference.main(args + ["--check"]) == 1
    out = capsys.readouterr().out
    assert f"stale: {docs / 'cli.md'}" in out and "api.md" not in out and "README" not in out


def test_readme_command_needs_the_project_next_to_the_readme(tmp_path, capsys):
    (tmp_path / "README.md").write_text("# A project\n", encoding="utf8")
    assert reference.main(["readme", str(tmp_path / "README.md")]) == 2
    assert "project.yml: no such file" in capsys.readouterr().err
