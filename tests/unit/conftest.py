"""The unit layer: pure parts and the store on a real SQLite file or PostgreSQL database;
no servers, no daemon."""

from tests.kit.fixtures import make_store_fixture, state_location_fixture

__all__ = ["make_store_fixture", "state_location_fixture"]
