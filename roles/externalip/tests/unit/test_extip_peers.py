"""The claim controllers' membership keys: kept, made, rotated without a gap."""

import base64
import json

from extip_peers import ROTATION_DELAY_S, extip_peer_keys


def keys(b64):
    return json.loads(base64.b64decode(b64))


def secret(b64):
    return json.dumps({"data": {"keys.json": b64}})


def test_first_install_makes_one_key_that_signs_at_once():
    made = keys(extip_peer_keys("", False, 1000, "k" * 48))
    assert made == [{"key": base64.b64encode(b"k" * 48).decode(), "from": "1970-01-01T00:16:40Z"}]


def test_a_reinstall_keeps_the_keys_as_they_are():
    first = extip_peer_keys("", False, 1000, "k" * 48)
    assert extip_peer_keys(secret(first), False, 5000, "x" * 48) == first


def test_a_rotation_adds_a_key_that_signs_later_beside_the_one_that_signs_now():
    first = extip_peer_keys("", False, 1000, "k" * 48)
    rotated = keys(extip_peer_keys(secret(first), True, 2000, "n" * 48))
    # 2000 s + 180 s = 00:36:20; the first key's 1000 s = 00:16:40.
    assert ROTATION_DELAY_S == 180
    assert [k["from"] for k in rotated] == ["1970-01-01T00:36:20Z", "1970-01-01T00:16:40Z"]
    assert rotated[1] == keys(first)[0]


def test_a_second_rotation_before_the_first_signs_drops_the_unused_key_and_keeps_the_signing_one():
    first = extip_peer_keys("", False, 1000, "k" * 48)
    once = extip_peer_keys(secret(first), True, 2000, "n" * 48)
    twice = keys(extip_peer_keys(secret(once), True, 2100, "m" * 48))
    assert [k["key"] for k in twice] == [base64.b64encode(b"m" * 48).decode(), keys(first)[0]["key"]]


def test_after_the_rotation_signs_the_old_key_is_dropped_at_the_next_one():
    first = extip_peer_keys("", False, 1000, "k" * 48)
    once = extip_peer_keys(secret(first), True, 2000, "n" * 48)
    later = keys(extip_peer_keys(secret(once), True, 2000 + ROTATION_DELAY_S + 10, "m" * 48))
    assert [k["key"] for k in later] == [base64.b64encode(b"m" * 48).decode(), keys(once)[0]["key"]]
