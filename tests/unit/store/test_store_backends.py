"""One :class:`Store` class on either backend: the location picks a backend the store holds,
never a subclass of the store."""

from __future__ import annotations

from notifier.models import WatchSpec
from notifier.store import Store
from notifier.store.postgres import PostgresBackend
from notifier.store.sqlite import SqliteBackend


def test_the_store_holds_the_backend_its_location_names(state_location: str, backend: str) -> None:
    expected = SqliteBackend if backend == "sqlite" else PostgresBackend
    with Store(state_location) as store:
        assert type(store) is Store
        assert type(store.backend) is expected
        assert store.where == store.backend.where
        store.add_watches([WatchSpec("job-1")], "queue")
        other = store.reopen()
        try:
            assert type(other) is Store and type(other.backend) is expected
            assert other.get_watch("job-1") is not None
        finally:
            other.close()
