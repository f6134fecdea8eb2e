import json

from extip_ledger import configmap, parse


def test_no_ledger_is_an_empty_one():
    assert parse("") == {"ledger": {}, "problems": []}


def test_a_ledger_that_is_not_json_is_damaged():
    parsed = parse("{oops")
    assert parsed["ledger"] == {} and parsed["problems"][0].startswith("ledger.json is not JSON")


def test_a_sound_ledger_is_kept():
    ledger = {"version": 1, "labels": {"externalip": {"n1": None}}, "namespaces_created": ["extip"], "objects": []}
    assert parse(json.dumps(ledger)) == {"ledger": ledger, "problems": []}


def test_a_ledger_that_would_delete_a_system_namespace_is_refused():
    parsed = parse(json.dumps({"version": 1, "namespaces_created": ["kube-system"]}))
    assert parsed["ledger"] == {} and parsed["problems"]


def test_a_write_is_conditional_on_the_version_read_and_a_first_one_is_a_create():
    ledger = {"version": 1, "objects": ["kube-system/DaemonSet/x"]}
    replace = configmap("extip-ledger", "kube-system", {"a": "b"}, ledger, "42")
    assert replace["metadata"]["resourceVersion"] == "42"
    assert json.loads(replace["data"]["ledger.json"]) == ledger and parse(replace["data"]["ledger.json"])["problems"] == []
    assert "resourceVersion" not in configmap("extip-ledger", "kube-system", {}, ledger, "")["metadata"]


def test_every_case_of_the_shared_ledger_table(table):
    from extip_ledger import ledger_schema, schema_problems

    schema = ledger_schema()
    for case in table("ledger-cases.json"):
        assert (case["ledger"], schema_problems(case["ledger"], schema)) == (case["ledger"], case["problems"])
        parsed = parse(json.dumps(case["ledger"]))
        assert parsed["problems"] == case["problems"]
        assert (parsed["ledger"] == {}) == (case["problems"] != [] or case["ledger"] == {})
