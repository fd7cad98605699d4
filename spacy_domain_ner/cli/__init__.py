"""Command-line interface: `python -m spacy_domain_ner COMMAND` (or `spacy-domain-ner COMMAND`).

Each command lives in its own module and adds itself to the typer app on import.
"""
from . import annotate, casing, chain, compare, confidence, convert, corrections, evaluate, knowledge, names, package, pretrain, report, review, silver, train, vectors  # noqa: F401
from ._app import app

__all__ = ["app"]
