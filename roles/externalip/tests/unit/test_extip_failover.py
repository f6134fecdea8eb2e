from extip_failover import extip_controller_count, extip_failover_errors, extip_labelled_nodes


def test_every_case_of_the_shared_table(table):
    for case in table("failover-cases.json"):
        got = extip_failover_errors(case["kind"], case["replicas"], case["labelled"], case["claims"], case["allowNoFailover"])
        assert (case, got) == (case, case["errors"])


def test_a_deployment_runs_one_controller_a_labelled_node_at_most():
    assert extip_controller_count("Deployment", 5, 3) == 3
    assert extip_controller_count("Deployment", "2", "3") == 2
    assert extip_controller_count("DaemonSet", 1, 4) == 4


def test_labelled_nodes_are_those_labelled_now_and_the_targets_that_exist():
    nodes = [
        {"metadata": {"name": "n1", "labels": {"externalip": "true"}}},
        {"metadata": {"name": "n2", "labels": {"externalip": "false"}}},
        {"metadata": {"name": "n3"}},
    ]
    assert extip_labelled_nodes(nodes, ["n3", "gone"], "externalip", "true") == 2
    assert extip_labelled_nodes(nodes, [], "externalip", "true") == 1
