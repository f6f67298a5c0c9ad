"""chanjing-notifier: push notifications for Chanjing lip-sync jobs."""

__version__ = "0.1.0"
