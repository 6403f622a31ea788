"""How the harness judges a timed row: absolute target first, the machine's speed beside it."""

from __future__ import annotations

from benchmarks.run import Measurement, Result, judge


def _row(*walls: float, factor: float | None = None) -> Result:
    result = Result("check-100k", "100,000 artifacts", target="≤ 3 s")
    result.runs = [Measurement(wall, 150.0, wall, 0.1, 0) for wall in walls]
    if factor is not None:
        result.extra["machine_factor"] = factor
    return result


def test_a_met_target_is_met_whatever_the_machine() -> None:
    result = judge(_row(2.0, 2.5, 2.9), wall=3, rss_mb=400, machine_factor=3.0)
    assert result.ok is True
    assert result.note == ""


def test_a_miss_is_a_miss_and_says_what_it_is_on_this_machine() -> None:
    result = judge(_row(4.0, 4.5, 5.0), wall=3, rss_mb=400, machine_factor=2.0)
    assert result.ok is False
    assert result.note == (
        "wall 4.50 s > 3 s (x1.50); this machine is x2.00 the reference's time, "
        "so ≤ 6.0 s here: ✓"
    )


def test_the_factor_measured_around_the_row_wins_over_the_first_one() -> None:
    # The machine row said x2.0; measured around this workload the machine was x1.2.
    result = judge(_row(4.0, 4.5, 5.0, factor=1.2), wall=3, rss_mb=400, machine_factor=2.0)
    assert result.ok is False
    assert result.note.endswith("this machine is x1.20 the reference's time, so ≤ 3.6 s here: ✗")


def test_memory_over_the_target_is_a_miss_too() -> None:
    result = _row(1.0)
    result.runs[0].max_rss_mb = 500.0
    judged = judge(result, wall=3, rss_mb=400)
    assert judged.ok is False
    assert judged.note == "RSS 500 MB > 400 MB"
