"""The acceptance layer: the daemon as a child process (``workspace.start()``) against the
simulator and the receiver on 127.0.0.1, as an operator runs it."""

from tests.kit.fixtures import receiver_fixture, simulator_fixture, workspace_fixture

__all__ = ["receiver_fixture", "simulator_fixture", "workspace_fixture"]
