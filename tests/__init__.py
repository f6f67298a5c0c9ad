"""The test suite. The kit's helpers assert like test code does: pytest rewrites their
asserts too, so a failing one says what it compared."""

import pytest

pytest.register_assert_rewrite("tests.kit")
