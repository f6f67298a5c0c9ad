"""From a terminal status to a received callback: the event, its deliveries, the retry
schedule and the senders."""
