"""Markdown pieces shared by the evaluation and ablation reports: scores in %, gaps in points, tables."""
import re
from typing import Any, List, Optional, Sequence


def pct(value: Optional[float]) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def points(value: Optional[float]) -> str:
    return "–" if value is None else f"{100 * value:+.2f}"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines + [""]


def cell(text: Any) -> str:
    """A table cell: pipes escaped, line breaks made spaces."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)
