from __future__ import annotations

import pytest

from ocirt.errors import InvalidArgument
from ocirt.spec.capabilities import (
    CAPABILITIES,
    from_mask,
    merge,
    normalize,
    parse_mask,
)


def test_bit_numbers_match_linux_capability_h() -> None:
    assert CAPABILITIES.index("CAP_NET_ADMIN") == 12
    assert CAPABILITIES.index("CAP_SYS_RESOURCE") == 24
    assert CAPABILITIES.index("CAP_MAC_OVERRIDE") == 32
    assert CAPABILITIES.index("CAP_CHECKPOINT_RESTORE") == 40


def test_mask_of_our_machines_lacks_sys_resource() -> None:
    names = from_mask(parse_mask("000001fffeffffff\n"))
    assert set(CAPABILITIES) - set(names) == {"CAP_SYS_RESOURCE"}


def test_bits_beyond_known_capabilities_are_ignored() -> None:
    assert from_mask(1 << 63 | 1) == ("CAP_CHOWN",)


@pytest.mark.parametrize("text", ["net_admin", "NET_ADMIN", "cap_net_admin", " Cap_Net_Admin "])
def test_normalize_accepts_any_case_with_or_without_prefix(text: str) -> None:
    assert normalize(text) == "CAP_NET_ADMIN"


@pytest.mark.parametrize("text", ["", "CAP_", "NET ADMIN", "CAP_WINGS"])
def test_normalize_refuses_unknown(text: str) -> None:
    with pytest.raises(InvalidArgument):
        normalize(text)


def test_parse_mask_refuses_garbage() -> None:
    with pytest.raises(InvalidArgument):
        parse_mask("zz")


def test_merge_keeps_order_and_drops_duplicates() -> None:
    assert merge(["A", "B"], ["B", "C", "C"]) == ("A", "B", "C")
