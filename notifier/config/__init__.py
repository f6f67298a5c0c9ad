"""The configuration file: YAML, ``${VAR}`` expansion, validation into typed models.

Everything a user can get wrong ends up as a :class:`ConfigError` whose lines read
``<file>: <dotted.key>: <problem>``; no traceback, no pydantic jargon, and no secret values.
``reader`` reads the YAML and expands variables, ``sections`` holds the models, ``fields`` their
validators, ``problems`` and ``loader`` turn what goes wrong into those lines.
"""

from notifier.config.accounts import DEFAULT_ACCOUNT, AccountConfig, ChanjingConfig
from notifier.config.fields import MAX_DURATION, format_duration, is_loopback_host, parse_duration
from notifier.config.loader import load_config, parse_config
from notifier.config.problems import ConfigError, ProblemsError, dotted, kind, show
from notifier.config.reader import read_yaml_file
from notifier.config.sections import (
    DEFAULT_RETRY_SCHEDULE,
    ENDPOINT_TYPES,
    AlertsConfig,
    Config,
    DeliveryConfig,
    Endpoint,
    GatewayClient,
    GatewayConfig,
    IntakeConfig,
    LogConfig,
    MetricsConfig,
    PollingConfig,
    SlackEndpoint,
    StateConfig,
    WatchConfig,
    WebhookEndpoint,
)

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_RETRY_SCHEDULE",
    "ENDPOINT_TYPES",
    "MAX_DURATION",
    "AccountConfig",
    "AlertsConfig",
    "ChanjingConfig",
    "Config",
    "ConfigError",
    "DeliveryConfig",
    "Endpoint",
    "GatewayClient",
    "GatewayConfig",
    "IntakeConfig",
    "LogConfig",
    "MetricsConfig",
    "PollingConfig",
    "ProblemsError",
    "SlackEndpoint",
    "StateConfig",
    "WatchConfig",
    "WebhookEndpoint",
    "dotted",
    "format_duration",
    "is_loopback_host",
    "kind",
    "load_config",
    "parse_config",
    "parse_duration",
    "read_yaml_file",
    "show",
]
