"""A lane's lease name: the default account keeps the lease name of before accounts, so a node
of an older version and one of this version never both hold the vendor lease."""

from __future__ import annotations

from notifier.polling.lease import LEASE_NAME
from notifier.service.lane import DEFAULT_LANE, lease_name


def test_the_default_account_keeps_the_old_lease_and_others_get_their_own() -> None:
    assert lease_name(DEFAULT_LANE) == LEASE_NAME == "vendor"
    assert lease_name("shop") == "vendor:shop"
    assert len({lease_name(n) for n in (DEFAULT_LANE, "shop", "media")}) == 3
