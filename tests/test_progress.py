"""Plain progress lines for logs: rich draws nothing until the end when not on a terminal."""

from __future__ import annotations

from storetune.progress import LineProgress


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_line_a_minute_and_one_at_the_end():
    clock, lines = FakeClock(), []
    bar = LineProgress("train", 10, write=lines.append, clock=clock)
    for step in range(1, 11):
        clock.now = step * 25.0  # 25 s a step
        bar.advance(1, loss="1.234")
    # 60 s passed at step 3 (75 s), then at step 6 (150 s), 9 (225 s), and the end.
    assert [line.split()[1] for line in lines] == ["3/10", "6/10", "9/10", "10/10"]
    assert lines[0] == "train 3/10 loss 1.234 elapsed 0:01:15 eta 0:02:55"
    assert lines[-1].endswith("elapsed 0:04:10 eta 0:00:00")


def test_a_resumed_run_estimates_from_its_own_pace():
    clock, lines = FakeClock(), []
    bar = LineProgress("train", 100, done=50, every_s=0, write=lines.append, clock=clock)
    clock.now = 10.0
    bar.advance(1)
    # One step in 10 s, 49 left: the 50 steps done before the restart cost nothing here.
    assert lines == ["train 51/100 elapsed 0:00:10 eta 0:08:10"]
