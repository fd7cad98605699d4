"""`chain`: run several of this package's commands in one process.

Every `python -m spacy_domain_ner` process spends about 10 s on 2 CPU cores importing torch,
transformers and spacy-transformers before it does any work. A project step that scores four
pipelines pays that once when its commands are chained instead of four times.
"""
import shlex
from typing import Any, Iterable, List, Sequence

import typer

from ._app import app, fail, flag_values


def parse_chain(lines: Iterable[str], *, known: Iterable[str]) -> List[List[str]]:
    """Split each command line (shell quoting) and check its command, before any of them runs.

    lines (Iterable[str]): One command line of this package per item, without the program name,
        e.g. "evaluate training/legal/model-best corpus/legal/dev.spacy -o metrics/legal.json".
    known (Iterable[str]): The command names that may appear.
    RETURNS (List[List[str]]): The argument lists, in order.
    """
    known = set(known)
    argvs = []
    for i, line in enumerate(lines, 1):
        try:
            argv = shlex.split(line)
        except ValueError as err:
            raise ValueError(f"command {i} ({line!r}): {err}") from None
        if not argv:
            raise ValueError(f"command {i} is empty")
        if argv[0] == "chain":
            raise ValueError(f"command {i}: a chain cannot run another chain")
        if argv[0] not in known:
            raise ValueError(f"command {i}: no command {argv[0]!r} (commands: {', '.join(sorted(known - {'chain'}))})")
        argvs.append(argv)
    if not argvs:
        raise ValueError("no commands to run")
    return argvs


def run_command(root: Any, argv: Sequence[str]) -> int:
    """Run one command line through the CLI without leaving the process.

    root (Any): The CLI as a click command, e.g. `typer.main.get_command(app)`.
    argv (Sequence[str]): The command's arguments, the command name first.
    RETURNS (int): Its exit status: 0 on success, else what the command exited with (2 for a usage
        error, shown as the command line would show it).
    """
    # standalone mode ends every run in sys.exit, as on the command line, so errors are shown and
    # mapped to a status the same way whatever click the installed typer uses (typer 0.29 vendors its own)
    # The root command also turns `--x=true|false` of a flag pair into `--x`/`--no-x` here (_app.flag_values).
    try:
        root.main(args=list(argv), prog_name="spacy-domain-ner", standalone_mode=True)
    except SystemExit as exit_:
        if exit_.code is None:
            return 0
        return exit_.code if isinstance(exit_.code, int) else 1
    return 0


@app.command("chain")
def chain_cli(
    commands: List[str] = typer.Argument(..., help='Command lines of this package, one per argument, quoted, e.g. "evaluate training/legal/model-best corpus/legal/dev.spacy -o metrics/legal.json"'),
) -> None:
    """Run commands of this package one after another in one process; stop at the first that fails and exit with its status."""
    root = typer.main.get_command(app)
    try:
        argvs = parse_chain(commands, known=list(root.commands))
        for i, argv in enumerate(argvs, 1):  # a bad `--x=VALUE` stops the chain before anything runs
            try:
                flag_values(argv[1:], root.commands[argv[0]])
            except ValueError as err:
                raise ValueError(f"command {i} ({argv[0]}): {err}") from None
    except ValueError as err:
        fail(err)
    for i, argv in enumerate(argvs, 1):
        typer.secho(f"chain {i}/{len(argvs)}: {shlex.join(argv)}", bold=True, err=True)
        status = run_command(root, argv)
        if status:
            typer.secho(f"error: chain stopped at command {i} of {len(argvs)} ({argv[0]}): status {status}",
                        fg=typer.colors.RED, err=True)
            raise typer.Exit(code=status)
