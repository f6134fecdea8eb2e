import json

from extip_ledger import extip_ledger_parse


def test_no_ledger_is_an_empty_one():
    assert extip_ledger_parse("") == {"ledger": {}, "problems": []}


def test_a_ledger_that_is_not_json_is_damaged():
    parsed = extip_ledger_parse("{oops")
    assert parsed["ledger"] == {} and parsed["problems"][0].startswith("ledger.json is not JSON")


def test_a_sound_ledger_is_kept():
    ledger = {"version": 1, "labels": {"externalip": {"n1": None}}, "namespaces_created": ["extip"], "objects": []}
    assert extip_ledger_parse(json.dumps(ledger)) == {"ledger": ledger, "problems": []}


def test_a_ledger_that_would_delete_a_system_namespace_is_refused():
    parsed = extip_ledger_parse(json.dumps({"version": 1, "namespaces_created": ["kube-system"]}))
    assert parsed["ledger"] == {} and parsed["problems"]
