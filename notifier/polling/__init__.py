"""Asking the vendor: its client (the only code that knows its wire format), the shared
rate limiter, the polling policy and the poller that drives them."""
