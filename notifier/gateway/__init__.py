"""The gateway: the account's one door for the user's own applications (``gateway.listen``)."""
