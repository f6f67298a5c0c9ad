"""The integration layer: components against real servers on 127.0.0.1 (the simulator, the
receiver, HTTP apps, the store), and the CLI in a workspace; the daemon process is the
acceptance layer's."""

from tests.kit.fixtures import (
    make_store_fixture,
    receiver_fixture,
    simulator_fixture,
    state_location_fixture,
    workspace_fixture,
)

__all__ = [
    "make_store_fixture",
    "receiver_fixture",
    "simulator_fixture",
    "state_location_fixture",
    "workspace_fixture",
]
