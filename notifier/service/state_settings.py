"""Where the state is, from the config: the one translation the daemon (through
:mod:`notifier.service.settings`) and every CLI command open the state with. Apart from the
settings module, as :mod:`notifier.service.routing` is, so a CLI command loads no daemon
stack for it."""

from __future__ import annotations

from notifier.config import Config
from notifier.store import StateSettings


def state_settings(config: Config) -> StateSettings:
    """``state.url`` or ``state.path``: what :func:`notifier.store.open_store` opens."""
    return StateSettings(config.state.path, config.state.url)
