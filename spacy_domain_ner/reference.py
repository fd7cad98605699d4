"""Reference pages generated from the code, so that they cannot drift from it: docs/cli.md (every
command, read from the typer app), docs/api.md (every registered function and component, from setup.cfg's
entry points and the docstrings) and README.md's project block (what `spacy project document` writes
for project.yml, between weasel's markers; the rest of README.md is never touched).

    python -m spacy_domain_ner.reference docs            # write docs/cli.md, docs/api.md and README.md's block
    python -m spacy_domain_ner.reference docs --check    # exit 1 naming each stale file
    python -m spacy_domain_ner.reference readme --check  # README.md's block only
"""
import argparse
import configparser
import contextlib
import inspect
import io
import json
import re
import sys
import tempfile
import typing
from pathlib import Path
from importlib.metadata import EntryPoint, distribution
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from .io.generated import run_generator

DISTRIBUTION = "spacy-domain-ner"
PROG = "python -m spacy_domain_ner"
REGENERATE = "python -m spacy_domain_ner.reference docs"
ROOT = Path(__file__).resolve().parent.parent
NONE = "–"  # an empty table cell

# entry point group -> (heading in api.md, the config key that refers to an entry), in the page's order
GROUPS: Dict[str, Tuple[str, str]] = {
    "spacy_factories": ("Pipeline components", "factory"), "spacy_architectures": ("Architectures", "@architectures"),
    "spacy_readers": ("Readers", "@readers"), "spacy_augmenters": ("Augmenters", "@augmenters"),
    "spacy_callbacks": ("Callbacks", "@callbacks"), "thinc_optimizers": ("Optimizers", "@optimizers"),
    "spacy_loggers": ("Loggers", "@loggers"), "spacy_scorers": ("Scorers", "@scorers"),
    "spacy_misc": ("Miscellaneous", "@misc"),
}
# `name (type): description`, or several names sharing one (`L2, beta1: As in Adam.v1.`)
ARG_LINE = re.compile(r"^(?P<names>[A-Za-z_]\w*(?:, [A-Za-z_]\w*)*)(?: \((?P<type>[^()]*)\))?: (?P<desc>.*)$")
GENERIC_NAMES = {list: "List", dict: "Dict", tuple: "Tuple", set: "Set", frozenset: "FrozenSet", type: "Type"}
CLI_TYPES = {str: "text", int: "integer", float: "float", Path: "path"}


class Docstring(NamedTuple):
    summary: str  # the first paragraph, "" when the docstring starts with its arguments
    args: Dict[str, str]
    returns: str


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    # a cell is one line, and a pipe would end it
    cells = [[" ".join(str(value).split()).replace("|", "\\|") or NONE for value in row] for row in rows]
    return ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)] + ["| " + " | ".join(c) + " |" for c in cells]


def _paragraphs(doc: Optional[str]) -> List[str]:
    # click's "\b" (keep my line breaks) is a terminal instruction, not text
    lines = [line for line in inspect.cleandoc(doc or "").splitlines() if line.strip() != "\b"]
    return [p.strip() for p in "\n".join(lines).split("\n\n") if p.strip()]


def _without_none(annotation: Any) -> Any:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Union and type(None) in args:
        rest = tuple(arg for arg in args if arg is not type(None))
        return rest[0] if len(rest) == 1 else typing.Union[rest]  # type: ignore[return-value]
    return annotation


# docs/cli.md

def _cli_type(annotation: Any, param: Any) -> str:
    """A parameter's type for readers of a command line: text, integer, path, flag, ..."""
    annotation = _without_none(annotation)
    repeated = typing.get_origin(annotation) in (list, tuple, set)
    if repeated:
        annotation = _without_none(typing.get_args(annotation)[0])
    if annotation is bool:
        label = "flag" if getattr(param, "is_flag", False) else "boolean"
    else:
        label = CLI_TYPES.get(annotation) or getattr(annotation, "__name__", "text").lower()
    if repeated or getattr(param, "multiple", False) or getattr(param, "nargs", 1) == -1:
        label += " (repeatable)" if param.param_type_name == "option" else " (one or more)"
    return label


def _cli_default(param: Any) -> str:
    value = param.default
    if param.required:
        return "required"
    if getattr(param, "is_flag", False) and isinstance(value, bool):
        if param.secondary_opts:  # --x/--no-x: the default is the switch that is on
            return f"`{param.opts[0] if value else param.secondary_opts[0]}`"
        return "on" if value else "off"
    if isinstance(value, (list, tuple)) and value:
        return ", ".join(f"`{item}`" for item in value)
    if isinstance(value, (str, int, float, Path)) and value != "":
        return f"`{value}`"
    return NONE  # None, empty, or a sentinel of the CLI library: nothing the reader could type


def _cli_name(param: Any) -> str:
    if param.param_type_name == "argument":
        name = (param.metavar or param.name).upper()
        return f"`{name if param.required else f'[{name}]'}{'...' if param.nargs == -1 else ''}`"
    return ", ".join(f"`{opt}`" for opt in param.opts) + "".join(f" / `{opt}`" for opt in param.secondary_opts)


def cli_markdown() -> str:
    """docs/cli.md: every command with its usage, help text, arguments and options.

    RETURNS (str): The page, Markdown.
    """
    import typer

    from .cli import app

    group = typer.main.get_command(app)
    # the order of `--help`: the app's group lists the commands in workflow order
    names = group.list_commands(typer.Context(group))
    commands = [(name, group.commands[name]) for name in names if not getattr(group.commands[name], "hidden", False)]
    lines = ["# Command-line reference", "",
             f"Look up how to call each command of `{PROG}` (installed as `spacy-domain-ner` too): its arguments, "
             f"options and defaults. Generated from the code by `{REGENERATE}`; do not edit.", ""]
    lines += [line for paragraph in _paragraphs(group.help) for line in (paragraph, "")]
    overview = [(f"[`{name}`](#{name})", (_paragraphs(command.help) or [NONE])[0]) for name, command in commands]
    lines += _table(["Command", "What it does"], overview) + [""]
    for name, command in commands:
        # the annotations say what a value is (path, integer, ...) whatever the CLI library's version
        hints = typing.get_type_hints(inspect.unwrap(command.callback)) if command.callback else {}
        params = [param for param in command.params if not getattr(param, "hidden", False)]
        arguments = [_cli_name(param).strip("`") for param in params if param.param_type_name == "argument"]
        lines += [f"## `{name}`", "", "```", " ".join([PROG, name, "[OPTIONS]"] + arguments), "```", ""]
        lines += [line for paragraph in _paragraphs(command.help) for line in (paragraph, "")]
        rows = [(_cli_name(param), _cli_type(hints.get(param.name, str), param), _cli_default(param),
                 getattr(param, "help", None) or NONE) for param in params]
        lines += _table(["Argument or option", "Type", "Default", "Description"], rows) + [""] if rows else []
    return "\n".join(lines).rstrip() + "\n"


# docs/api.md

def entry_points() -> List[EntryPoint]:
    """The registry entry points (console scripts left out) of the checkout's setup.cfg, else of the
    installed distribution's metadata.

    RETURNS (List[EntryPoint]): In their declared order.
    """
    parser = configparser.ConfigParser()
    # the source first: an editable install's metadata lags behind setup.cfg until reinstalled
    if parser.read(ROOT / "setup.cfg", encoding="utf8") and parser.get("metadata", "name", fallback="") == DISTRIBUTION:
        lines = [(group, line.strip()) for group, value in parser["options.entry_points"].items()
                 for line in value.splitlines() if line.strip() and not line.strip().startswith("#")]
        found = [EntryPoint(*(part.strip() for part in line.split("=", 1)), group) for group, line in lines]
    else:
        found = list(distribution(DISTRIBUTION).entry_points)
    return [ep for ep in found if ep.group != "console_scripts"]


def type_name(annotation: Any) -> str:
    """An annotation as the source writes it, without module paths: `Optional[Path]`, `Model[List[Doc], ...]`
    (built from typing's parts: repr() differs between Python versions).

    annotation (Any): A type annotation.
    RETURNS (str): Its readable form.
    """
    if annotation is None or annotation is type(None) or annotation is Ellipsis:
        return "..." if annotation is Ellipsis else "None"
    if isinstance(annotation, (str, typing.ForwardRef)):
        return getattr(annotation, "__forward_arg__", annotation)
    if isinstance(annotation, list):  # Callable's argument list
        return "[" + ", ".join(type_name(arg) for arg in annotation) + "]"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union:
        if type(None) in args:
            return f"Optional[{type_name(_without_none(annotation))}]"
        return "Union[" + ", ".join(type_name(arg) for arg in args) + "]"
    if origin is typing.Literal:
        return "Literal[" + ", ".join(json.dumps(arg) for arg in args) + "]"
    if origin is not None:
        name = GENERIC_NAMES.get(origin) or getattr(origin, "__name__", None) or str(origin)
        return f"{name}[{', '.join(type_name(arg) for arg in args)}]" if args else name
    if isinstance(annotation, (type, typing.TypeVar)):
        return GENERIC_NAMES.get(annotation) or annotation.__name__  # type: ignore[call-overload]
    return re.sub(r"\b(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_])", "", str(annotation).replace("typing.", ""))


def _config_value(value: Any) -> str:
    # a default as a config writes it: "fgm", null, true, [5000, 1000]
    value = str(value) if isinstance(value, Path) else sorted(value) if isinstance(value, (set, frozenset)) else value
    try:
        return json.dumps(value, ensure_ascii=False)
    except TypeError:  # a function or an object: its name, never a repr with a memory address
        return getattr(value, "__qualname__", type(value).__qualname__)


def parse_docstring(doc: Optional[str], *, names: Sequence[str]) -> Docstring:
    """The parts of a spaCy-style docstring: the summary (first paragraph), one description per
    argument (`name (type): description`, continued on indented lines) and the RETURNS line.

    doc (Optional[str]): The docstring.
    names (Sequence[str]): The function's argument names; other `word: text` lines are prose.
    RETURNS (Docstring): The parts.
    """
    summary: List[str] = []
    returns: List[str] = []
    described: List[Tuple[List[str], List[str]]] = []
    current: Optional[List[str]] = summary  # the text being continued; the summary ends at a blank line
    for line in inspect.cleandoc(doc or "").splitlines():
        match = ARG_LINE.match(line)
        if match and all(name in names for name in match.group("names").split(", ")):
            current = [match.group("desc").strip()]
            described.append((match.group("names").split(", "), current))
        elif line.startswith("RETURNS"):
            current = returns
            returns[:] = [line.partition(":")[2].strip()]
        elif current is not None and line.strip() and (current is summary or line[:1].isspace()):
            current.append(line.strip())
        else:
            current = None
    args = {name: " ".join(text) for group_names, text in described for name in group_names}
    return Docstring(" ".join(summary), args, " ".join(returns))


def _docstring(ep: EntryPoint) -> Docstring:
    func = ep.load()
    return parse_docstring(inspect.getdoc(func), names=list(inspect.signature(func).parameters))


def _settings(ep: EntryPoint) -> Tuple[List[Tuple[str, Any, Any]], Optional[Dict[str, Any]]]:
    # what a config can set: (name, annotation, default or Parameter.empty), and a factory's default config
    params = [param for param in inspect.signature(ep.load()).parameters.values()
              if param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD)]
    if ep.group != "spacy_factories":
        return [(param.name, param.annotation, param.default) for param in params], None
    from spacy.language import Language

    # a factory's settings are its config: spaCy passes nlp and name, and default_config holds the defaults
    default_config = dict(Language.get_factory_meta(ep.name).default_config or {})
    return [(param.name, param.annotation, default_config.get(param.name, param.default))
            for param in params if param.name not in ("nlp", "name")], default_config


def _config_key(group: str) -> str:
    return GROUPS[group][1] if group in GROUPS else "@" + group.partition("_")[2]


def _entry_markdown(ep: EntryPoint) -> List[str]:
    signature = inspect.signature(ep.load())
    settings, default_config = _settings(ep)
    doc = _docstring(ep)
    lines = [f"### `{ep.name}`", "", f'`{_config_key(ep.group)} = "{ep.name}"` · `{ep.module}.{ep.attr}`', ""]
    lines += [doc.summary, ""] if doc.summary else []
    rows = []
    for name, annotation, default in settings:
        written = "required" if default is inspect.Parameter.empty else f"`{_config_value(default)}`"
        if isinstance(default, dict) and any(str(key).startswith("@") for key in default):
            written = "a block, see the default config"
        annotation = NONE if annotation is inspect.Parameter.empty else f"`{type_name(annotation)}`"
        rows.append((f"`{name}`", annotation, written, doc.args.get(name, NONE)))
    if rows:
        header = "Setting" if default_config is not None else "Argument"
        lines += _table([header, "Type", "Default", "Description"], rows) + [""]
    returns = "" if signature.return_annotation is inspect.Signature.empty else f" `{type_name(signature.return_annotation)}`"
    if returns or doc.returns:
        lines += [f"**Returns**{returns}" + (f": {doc.returns}" if doc.returns else ""), ""]
    if default_config is not None:
        from confection import Config

        text = Config({"components": {ep.name: {"factory": ep.name, **default_config}}}).to_str()
        # from the component's own section on: the empty [components] above it says nothing
        lines += ["Default config:", "", "```ini", text[text.index(f"[components.{ep.name}]"):].strip(), "```", ""]
    return lines


def api_markdown() -> str:
    """docs/api.md: every registered function and factory with its arguments, defaults and docstring.

    RETURNS (str): The page, Markdown.
    """
    grouped: Dict[str, List[EntryPoint]] = {}
    for ep in entry_points():
        grouped.setdefault(ep.group, []).append(ep)
    # GROUPS' order, then groups it does not know; the entries of a group by name
    order = [group for group in GROUPS if group in grouped] + sorted(set(grouped) - set(GROUPS))
    grouped = {group: sorted(grouped[group], key=lambda ep: ep.name) for group in order}
    lines = ["# API reference: registered functions and components", "",
             "Look up what each function and pipeline component this package registers with spaCy is for and "
             "which settings a config can give it, with their defaults. Generated from setup.cfg's entry points "
             f"and the docstrings by `{REGENERATE}`; do not edit.", ""]
    overview = [(f"`{ep.name}`", f"`{_config_key(group)}`", _docstring(ep).summary or NONE)
                for group, eps in grouped.items() for ep in eps]
    lines += _table(["Name", "Config key", "What it is for"], overview) + [""]
    for group, eps in grouped.items():
        lines += [f"## {GROUPS.get(group, (group, ''))[0]}", ""]
        lines += [line for ep in eps for line in _entry_markdown(ep)]
    return "\n".join(lines).rstrip() + "\n"


# README.md's project block

def project_block(*, project_dir: Path) -> str:
    """What `spacy project document` writes for a project.yml: weasel's markers and the block between.

    project_dir (Path): The folder holding project.yml.
    RETURNS (str): The block, from its start marker to its end marker.
    """
    from weasel.cli.document import project_document

    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        output = Path(tmp) / "README.md"  # a new file: weasel writes the block alone
        project_document(Path(project_dir), output)
        return output.read_text(encoding="utf8").strip()


def readme_with_block(text: str, block: str) -> str:
    """A README's text with its project block replaced (as weasel replaces it), or appended at the end.

    text (str): The README.
    block (str): The block, markers included (`project_block`).
    RETURNS (str): The new text.
    """
    from weasel.cli.document import MARKER_END, MARKER_START, MARKER_TAGS

    for tag in MARKER_TAGS:
        start, end = MARKER_START.format(tag=tag), MARKER_END.format(tag=tag)
        if start in text and end in text:
            return text.split(start)[0] + block + text.split(end, 1)[1]
    return text.rstrip("\n") + "\n\n" + block + "\n"


def write_readme(path: Path, *, check: bool = False) -> List[Path]:
    """Update (or with check, compare) the project block of a README that sits next to its project.yml.

    path (Path): The README, e.g. README.md.
    check (bool): Write nothing; report the README if its block differs.
    RETURNS (List[Path]): The README if it was written, or with check if it is stale.
    """
    path = Path(path)
    for needed in (path, path.parent / "project.yml"):
        if not needed.is_file():
            raise ValueError(f"{needed}: no such file")
    text = path.read_text(encoding="utf8")
    new = readme_with_block(text, project_block(project_dir=path.parent))
    if new != text and not check:
        path.write_text(new, encoding="utf8")
    return [path] if new != text else []


def write_docs(directory: Path, *, readme: Optional[Path] = None, check: bool = False) -> List[Path]:
    """Write (or with check, compare) cli.md and api.md, and a README's project block.

    directory (Path): The docs folder.
    readme (Optional[Path]): The README to update too; None for none.
    check (bool): Write nothing; report the files that differ from what would be written.
    RETURNS (List[Path]): The files written, or with check the stale (or missing) ones.
    """
    done = []
    for path, text in ((Path(directory) / "cli.md", cli_markdown()), (Path(directory) / "api.md", api_markdown())):
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf8")
        if not check or not path.is_file() or path.read_text(encoding="utf8") != text:
            done.append(path)
    return done + (write_readme(readme, check=check) if readme is not None else [])


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spacy_domain_ner.reference",
                                     description="Write the reference pages generated from the code.")
    commands = parser.add_subparsers(dest="command", required=True)
    docs = commands.add_parser("docs", help="docs/cli.md, docs/api.md and README.md's project block")
    docs.add_argument("path", type=Path, nargs="?", default=Path("docs"), metavar="DIRECTORY",
                      help="the docs folder (default: docs)")
    docs.add_argument("--readme", type=Path, default=Path("README.md"), metavar="PATH",
                      help="the README whose project block to update, next to project.yml (default: README.md)")
    readme = commands.add_parser("readme", help="README.md's project block only")
    readme.add_argument("path", type=Path, nargs="?", default=Path("README.md"), help="the README (default: README.md)")
    for sub in (docs, readme):
        sub.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is stale")
    args = parser.parse_args(argv)
    if args.command == "docs":
        return run_generator(lambda: write_docs(args.path, readme=args.readme, check=args.check), check=args.check,
                             regenerate=REGENERATE)
    return run_generator(lambda: write_readme(args.path, check=args.check), check=args.check, regenerate=REGENERATE)


if __name__ == "__main__":
    sys.exit(main())
