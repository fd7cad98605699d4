"""PNG charts of the reports (matplotlib's Agg canvas, no display needed): heatmaps and grouped bars."""
import io
import math
from typing import Any, Mapping, Optional, Sequence


def new_figure(width: float, height: float) -> Any:
    # Agg canvas, no pyplot: no global backend state, works without a display.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def to_png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def heatmap_png(
    rows: Sequence[str], columns: Sequence[str], values: Sequence[Sequence[Optional[float]]], *,
    title: str, xlabel: str, ylabel: str,
) -> bytes:
    """A heatmap of fractions (shown in %), missing cells blank.

    rows, columns (Sequence[str]): The labels.
    values (Sequence[Sequence[Optional[float]]]): One row of fractions (or None) per row label.
    title, xlabel, ylabel (str): The texts.
    RETURNS (bytes): The PNG.
    """
    grid = [[math.nan if v is None else 100 * v for v in row] for row in values]
    fig = new_figure(1.6 + 1.1 * len(columns), 1.2 + 0.6 * len(rows))
    ax = fig.add_subplot()
    image = ax.imshow(grid, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            if not math.isnan(v):
                ax.text(j, i, f"{v:.1f}", ha="center", va="center", color="white" if v < 60 else "black")
    ax.set_xticks(range(len(columns)), labels=list(columns), rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), labels=list(rows))
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    fig.colorbar(image, ax=ax, label="F1 (%)")
    return to_png(fig)


def grouped_bars_png(
    categories: Sequence[str], series: Mapping[str, Sequence[Optional[float]]], *, title: str, ylabel: str,
    legend: Optional[str] = None, scale: float = 100.0,
) -> bytes:
    """Grouped bars: one group per category, one bar per series; missing values leave a gap.

    categories (Sequence[str]): The x-axis groups.
    series (Mapping[str, Sequence[Optional[float]]]): name -> one value per category.
    title, ylabel (str): The texts.
    legend (Optional[str]): The legend's title; None for no legend.
    scale (float): Multiplies the values (100 turns fractions into % on a 0-100 axis).
    RETURNS (bytes): The PNG.
    """
    fig = new_figure(max(4.0, 1.0 + 0.45 * len(categories) * max(1, len(series))), 3.6)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(series))
    for n, (name, values) in enumerate(series.items()):
        xs = [i - 0.4 + width * (n + 0.5) for i in range(len(categories))]
        ax.bar(xs, [math.nan if v is None else scale * v for v in values], width, label=name)
    ax.set_xticks(range(len(categories)), labels=list(categories), rotation=20, ha="right")
    ax.set(title=title, ylabel=ylabel)
    if scale == 100.0:
        ax.set_ylim(0, 100)
    if legend is not None:
        ax.legend(title=legend, fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return to_png(fig)
