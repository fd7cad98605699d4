"""The training's progress between evaluations: steps of the total, words/s and the time left."""
import io

import pytest

from spacy_domain_ner.training.progress import TrainingProgress, format_seconds, progress_line


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_format_seconds():
    assert [format_seconds(s) for s in (0, 45.4, 65, 3725, -3)] == ["0s", "45s", "1m05s", "1h02m", "0s"]


def test_progress_line_has_steps_words_and_time_left():
    line = progress_line(step=500, total=2000, elapsed=600, words_per_second=1234.4)
    assert line == "step 500/2000 (25%), 1,234 words/s, 10m00s elapsed, about 30m00s left"
    # unknown total (epoch-bounded) and before the first evaluation: no percentage, words or estimate
    assert progress_line(step=3, total=0, elapsed=5, words_per_second=None) == "step 3, 5s elapsed"


def test_lines_off_a_terminal_at_most_every_interval():
    clock, out = Clock(), io.StringIO()
    progress = TrainingProgress(total=100, stream=out, interval=60, clock=clock)
    progress.update({"step": 0, "words": 0, "seconds": 0.0})  # the evaluation at step 0
    for _ in range(10):  # 10 steps, 10 s apart: a line at 60 s
        clock.now += 10
        progress.update(None)
    progress.update({"step": 11, "words": 22_000, "seconds": 110.0})  # an evaluation prints no line (22,000 words in 110 s)
    for _ in range(9):  # lines at 120 s and 180 s
        clock.now += 10
        progress.update(None)
    lines = out.getvalue().splitlines()
    assert lines == ["step 6/100 (6%), 1m00s elapsed, about 15m40s left",
                     "step 13/100 (13%), 200 words/s, 2m00s elapsed, about 13m23s left",
                     "step 19/100 (19%), 200 words/s, 3m00s elapsed, about 12m47s left"]
    progress.close()


def test_interval_zero_prints_nothing_and_a_bar_draws_on_its_stream():
    clock, out = Clock(), io.StringIO()
    progress = TrainingProgress(total=10, stream=out, interval=0, clock=clock)
    for _ in range(5):
        clock.now += 100
        progress.update(None)
    assert out.getvalue() == ""
    bar_out = io.StringIO()
    bar = TrainingProgress(total=10, stream=bar_out, bar=True, clock=clock)
    bar.update({"step": 0, "words": 0, "seconds": 5.0})
    bar.update({"step": 1, "words": 100, "seconds": 6.0})
    bar.close()
    assert "1/10" in bar_out.getvalue() and "100 words/s" in bar_out.getvalue()


def test_bad_settings():
    with pytest.raises(ValueError, match="interval"):
        TrainingProgress(total=10, stream=io.StringIO(), interval=-1)
    with pytest.raises(ValueError, match="total"):
        TrainingProgress(total=-1, stream=io.StringIO())


def test_the_logger_prints_progress_lines_during_training(monkeypatch):
    import spacy
    from spacy.util import registry

    nlp = spacy.blank("en")
    nlp.config["training"]["max_steps"] = 4
    nlp.config["training"]["score_weights"] = {}
    monkeypatch.setattr("spacy_domain_ner.training.progress.time.monotonic", iter(range(0, 1000, 100)).__next__)
    out = io.StringIO()
    create = registry.get("loggers", "spacy_domain_ner.ConsoleLogger.v1")
    log_step, finalize = create(progress_interval=50)(nlp, out, io.StringIO())
    for _ in range(3):
        log_step(None)
    finalize()
    assert "step 1/4 (25%)" in out.getvalue() and "left" in out.getvalue()
    with pytest.raises(ValueError, match="progress_interval"):
        create(progress_interval=-5)
