"""``watch add --reopen`` on a job that succeeded: nothing is watched again (one event per
job), and the command says why and fails, instead of a quiet exit 0 (issue 20, item 8)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from notifier.delivery.transition import build_event
from notifier.models import JobDetail, WatchSpec
from notifier.store import Store

if TYPE_CHECKING:
    from tests.kit import Workspace

FINISHED_AT = 1_700_000_000.0  # 2023-11-14 22:13:20Z


def _succeeded(ws: Workspace, job_id: str) -> None:
    """A watch that ended with status 20 in a real state file, as the daemon leaves it."""
    detail = JobDetail(job_id, 20, 100, "ok", "https://v/1.mp4", "", 10, 1)
    with Store(ws.state_path, clock=lambda: FINISHED_AT) as store:
        store.add_watches([WatchSpec(job_id)], "queue")
        store.record_terminal(detail, build_event(detail, {}, FINISHED_AT, None), ["ops"])


def test_reopen_of_a_succeeded_job_says_why_nothing_happened_and_exits_1(
    workspace: Workspace,
) -> None:
    _succeeded(workspace, "job-done")
    result = workspace.cli("watch", "add", "--reopen", "job-done", check=False)
    assert result.returncode == 1, result
    assert result.stderr.strip() == (
        "job-done: not reopened: it succeeded at 2023-11-14 22:13:20Z; --reopen watches "
        "again only expired, failed or rejected jobs (one event per job)"
    )
    assert "watching 0 job(s): 0 new, 0 already known; 1 finished" in result.stdout
    with Store(workspace.state_path) as store:
        summary = store.watch_summary("job-done")
        assert summary is not None and summary["state"] == "succeeded"


def test_reopen_of_several_still_reopens_the_others_and_exits_1(workspace: Workspace) -> None:
    _succeeded(workspace, "job-done")
    result = workspace.cli("watch", "add", "--reopen", "job-done", "job-new", check=False)
    assert result.returncode == 1
    assert "watching 1 job(s): 1 new" in result.stdout
    assert "job-done: not reopened: it succeeded at" in result.stderr
    assert "job-new" not in result.stderr


def test_without_reopen_a_succeeded_job_is_still_a_note_and_exit_0(workspace: Workspace) -> None:
    _succeeded(workspace, "job-done")
    result = workspace.cli("watch", "add", "job-done")
    assert result.returncode == 0
    assert "job-done: not watched: succeeded since 2023-11-14 22:13:20Z (one event per job)" in (
        result.stdout
    )
