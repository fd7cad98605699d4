"""The typer app that every command module adds itself to, and the conventions all commands share.

- A boolean option is a flag pair, `--x/--no-x`. So that a project variable can fill one, the CLI also
  takes `--x=true` / `--x=false` (`flag_values`).
- A short flag means the same long option in every command that has it: -o --output, -b --batch-size,
  -g --gpu-id, -f --format, -m --label-map, -n --n-sents, -c --code, -v --version (package).
- `--help` lists the commands in the order of the workflow (`WORKFLOW_ORDER`).
"""
from typing import Any, List, Sequence

import typer
from typer.core import TyperGroup

# The order of `--help`: the product workflow, then the study's and the helpers.
WORKFLOW_ORDER = ("convert", "corpus", "train", "evaluate", "compare", "mine-kb", "mine-case-forms", "mine-name-designators",
                  "add-knowledge", "add-confidence", "report", "package", "annotate", "export-review", "import-corrections", "silver", "pretrain", "vectors", "chain")
BOOLEAN_VALUES = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def flag_values(args: Sequence[str], command: Any) -> List[str]:
    """Rewrite `--x=VALUE` into `--x` or `--no-x` for the flag pairs (`--x/--no-x`) of one command.

    A flag pair takes no value, but a project variable (`--x=${vars.x}`) gives one. VALUE is true or
    false (any case; also yes/no, 1/0); `--no-x=true` means `--no-x`. Other arguments, and all after
    `--`, are left as they are.

    args (Sequence[str]): The command's arguments, without its name.
    command (Any): The command (click), whose options say which names are flag pairs.
    RETURNS (List[str]): The arguments with the values of flag pairs turned into flags.
    """
    pairs = {}  # each name of a pair -> (on, off)
    for param in command.params:
        if getattr(param, "is_flag", False) and getattr(param, "secondary_opts", None):
            pairs.update({name: (name, param.secondary_opts[0]) for name in param.opts})
            pairs.update({name: (param.opts[0], name) for name in param.secondary_opts})
    rewritten = []
    for i, arg in enumerate(args):
        if arg == "--":
            return rewritten + list(args[i:])
        name, equals, value = arg.partition("=")
        if not equals or name not in pairs:
            rewritten.append(arg)
            continue
        if value.strip().lower() not in BOOLEAN_VALUES:
            raise ValueError(f"{name} takes true or false (or yes/no, 1/0), not {value!r}")
        on, off = pairs[name]
        rewritten.append(on if BOOLEAN_VALUES[value.strip().lower()] == (name == on) else off)
    return rewritten


class CommandGroup(TyperGroup):
    """The root command: lists its commands in workflow order and gives `--x=true|false` to flag pairs."""

    def list_commands(self, ctx: Any) -> List[str]:
        order = {name: i for i, name in enumerate(WORKFLOW_ORDER)}
        return sorted(self.commands, key=lambda name: order.get(name, len(order)))  # stable: others as registered

    def parse_args(self, ctx: Any, args: List[str]) -> List[str]:
        # every way in passes here: `python -m spacy_domain_ner`, the console script, `chain` and CliRunner
        command = self.commands.get(args[0]) if args else None
        if command is not None:
            try:
                args = [args[0], *flag_values(args[1:], command)]
            except ValueError as err:
                raise typer.BadParameter(str(err), ctx=type(ctx)(command, info_name=args[0], parent=ctx)) from None
        return super().parse_args(ctx, args)


app = typer.Typer(name="spacy-domain-ner", cls=CommandGroup, add_completion=False, no_args_is_help=True)


@app.callback()
def main() -> None:
    """Corpus conversion, pretraining, training helpers, evaluation and annotation for legal-domain spaCy NER."""


def fail(err: Exception) -> None:
    """Print an error in red and exit with status 1 (no traceback for bad input)."""
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)
