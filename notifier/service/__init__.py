"""The daemon on top of the stages: wiring and schedule, sd_notify, metrics, the HTTP server."""
