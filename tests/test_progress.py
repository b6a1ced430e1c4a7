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


def test_the_helper_writes_plain_lines_when_output_is_not_a_terminal(capsys):
    from storetune.progress import progress

    with progress("embed", 3) as bar:  # pytest captures stdout: not a terminal
        for _ in range(3):
            bar.advance(1, loss="0.500")
    assert capsys.readouterr().out.splitlines() == [
        "embed 3/3 loss 0.500 elapsed 0:00:00 eta 0:00:00"
    ]
    with progress("check", 2, stderr=True) as bar:
        bar.advance(2)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("check 2/2 elapsed")


def test_disabled_progress_prints_nothing(capsys, monkeypatch):
    from storetune import progress as p

    monkeypatch.setattr(p, "output_is_terminal", lambda stderr=False: True)
    with p.progress("train", 5, enabled=False) as bar:
        bar.advance(5, loss="1.0")
    with p.progress_group(False) as track:
        track("reading", 10).advance(10)
    assert capsys.readouterr() == ("", "")


def test_on_a_terminal_a_rich_bar_shows_count_fields_and_eta(capsys, monkeypatch):
    from storetune import progress as p

    monkeypatch.setattr(p, "output_is_terminal", lambda stderr=False: True)
    with p.progress_group() as track:
        first, second = track("embed products", 4), track("embed tickets", 2, done=1)
        first.advance(4, speed="9 tok/s")
        second.advance(1)
    out = capsys.readouterr().out
    assert "embed products" in out and "4/4" in out and "speed 9 tok/s" in out
    assert "embed tickets" in out and "2/2" in out and "eta" in out
