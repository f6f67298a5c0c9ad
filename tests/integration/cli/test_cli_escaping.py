"""Issue 18: a label or a vendor message printed raw could forge a row in `watch list` or
drive the terminal (ANSI colours, OSC 8 links). Every cell is one line of plain text."""

from __future__ import annotations

from notifier.models import JobDetail
from notifier.store import Store
from tests.kit import Workspace

FORGED = "v\nFAKE ROW active"
ANSI = "\x1b[31mred\x1b[0m \x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\"


def test_labels_and_vendor_messages_cannot_forge_rows_or_reach_the_terminal(
    workspace: Workspace,
) -> None:
    workspace.cli("watch", "add", "job-esc-1", "--label", f"k={FORGED}")
    with Store(workspace.state_path) as store:
        detail = JobDetail("job-esc-1", 10, 40, ANSI, "", "", 0, 0)
        store.record_poll(detail, 0.0, 0.0, store.get_watch("job-esc-1").memory())  # type: ignore[union-attr]
    out = workspace.cli("watch", "list").stdout
    lines = out.splitlines()
    assert len(lines) == 2, out  # the header and one row
    assert not any(line.startswith("FAKE") for line in lines)
    assert "\x1b" not in out
    assert "k=v\\nFAKE ROW active" in out
    # JSON keeps the values as they are: a program reading it gets the real text.
    (row,) = workspace.cli_json("watch", "list")
    assert row["labels"] == {"k": FORGED}
