"""Issue 18: a 269-byte YAML alias bomb in the config or the watch file expanded to 258 MB.
The file is refused at once, with a message; ordinary anchors and aliases still work."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from notifier.config import ConfigError, read_yaml_file
from notifier.intake.watchfile import WatchFileError

LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]"
            for p, n in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)


@pytest.mark.parametrize("error", [ConfigError, WatchFileError])
def test_an_alias_bomb_is_refused_at_once(tmp_path: Path, error: type[Exception]) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(LAUGHS + "\n")
    assert len(path.read_bytes()) < 400
    started = time.process_time()
    with pytest.raises(error) as info:
        read_yaml_file(path, error)  # type: ignore[arg-type]
    assert time.process_time() - started < 5  # CPU, not wall: it was minutes and gigabytes
    assert "expands to over 200,000 values" in str(info.value)


def test_ordinary_anchors_still_work(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("base: &base {timeout: 5s}\nfirst: {<<: *base, name: a}\nsecond: *base\n")
    data = read_yaml_file(path)
    assert data == {
        "base": {"timeout": "5s"},
        "first": {"timeout": "5s", "name": "a"},
        "second": {"timeout": "5s"},
    }
