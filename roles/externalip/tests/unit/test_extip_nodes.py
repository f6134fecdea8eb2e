import json
import pathlib

import pytest

from extip_nodes import (
    extip_label_changes,
    extip_label_restores,
    extip_node_names,
    extip_nodes_labelled,
)

TABLE = json.loads((pathlib.Path(__file__).resolve().parents[4] / "test/fixtures/node-name-cases.json").read_text())


@pytest.mark.parametrize("case", TABLE["cases"], ids=[c["label"] for c in TABLE["cases"]])
def test_node_names_follow_the_shared_table(case):
    hosts = list(case["hostvars"])
    assert extip_node_names(hosts, case["hostvars"], TABLE["nodes"], case["lookup"]) == case["want"]


def node(name, labels=None):
    return {"metadata": {"name": name, "labels": labels or {}}}


def test_label_changes_record_only_the_nodes_whose_label_changes():
    nodes = [node("a", {"externalip": "true"}), node("b", {"externalip": "false"}), node("c")]
    changes = extip_label_changes(nodes, ["a", "b", "c"], "externalip", "true")
    assert changes == {"b": "false", "c": None}


def test_nodes_labelled_lists_the_nodes_with_the_label():
    nodes = [node("a", {"externalip": "true"}), node("b")]
    assert extip_nodes_labelled(nodes, "externalip") == ["a"]


def test_label_restores_put_back_the_previous_value_or_remove_the_label():
    nodes = [node("b", {"externalip": "true"}), node("c", {"externalip": "true"})]
    restores = extip_label_restores({"externalip": {"b": "false", "c": None, "gone": None}}, nodes)
    args = {r["arg"]: r["nodes"] for r in restores}
    assert args == {"externalip=false": ["b"], "externalip-": ["c"]}


def test_the_agents_label_and_records_read_as_the_agent_reads_them(table):
    from extip_nodes import _own_label, _record_addresses

    cases = table("owner-cases.json")
    for case in cases["labels"]:
        assert (case["iface"], _own_label(case["iface"])) == (case["iface"], case["label"])
    for case in cases["records"]:
        assert (case["text"], _record_addresses(case["text"])) == (case["text"], case["addresses"])
