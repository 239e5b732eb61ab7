"""The README's Python snippets run as written, in order, on a machine with only a CPU (issue 12, item 15)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def snippets() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.MULTILINE | re.DOTALL)


def test_the_readme_has_snippets_to_run():
    assert len(snippets()) >= 3


@pytest.mark.slow
def test_every_readme_snippet_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the snippets save files where they run
    namespace: dict = {}
    for code in snippets():  # one session, as a reader pastes them one after the other
        exec(compile(code, str(README), "exec"), namespace)
    printed = capsys.readouterr().out
    assert "sop1" in printed and "grad_W1" in printed  # the trace
    assert (tmp_path / "digits.npz").exists()
