from extip_addresses import extip_cidr_errors, extip_policy_errors, extip_pool_errors, extip_range_cidrs, extip_renumbered


def test_cidr_errors_name_each_bad_item():
    assert extip_cidr_errors(["10.0.0.0/24", "2001:db8::/64"]) == []
    errors = extip_cidr_errors(["10.0.0.1/24", "10.0.0.0", "x/8"])
    assert len(errors) == 3
    assert "host bits are set; the network address is 10.0.0.0/24" in errors[0]
    assert "has no /prefix length" in errors[1]


def test_cidr_errors_refuse_overlapping_ranges():
    assert any("overlap" in e for e in extip_cidr_errors(["10.0.0.0/16", "10.0.1.0/24"]))


NODES = [{"metadata": {"name": "n1"}, "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.5"}]}}]


def test_policy_errors_refuse_the_cluster_ranges_and_node_addresses():
    errors = extip_policy_errors(["10.233.0.0/24", "192.0.2.0/24"], [], "10.233.0.0/18", "10.233.64.0/18", NODES)
    assert any("10.233.0.0/24 overlaps" in e and "extip_service_cidr" in e for e in errors)
    assert any("192.0.2.5, the address of node n1" in e for e in errors)


def test_policy_errors_accept_ranges_outside_them():
    assert extip_policy_errors(["198.51.100.0/24"], [], "10.233.0.0/18", "10.233.64.0/18", NODES) == []


def test_a_pool_range_that_holds_a_node_address_is_refused_but_not_the_rest_of_its_cidr():
    pools = [{"name": "a", "cidr": "192.0.2.0/24", "ranges": [["192.0.2.100", "192.0.2.120"]]}]
    assert extip_policy_errors([], pools, "10.233.0.0/18", "10.233.64.0/18", NODES) == []
    pools[0]["ranges"] = [["192.0.2.1", "192.0.2.10"]]
    assert extip_policy_errors([], pools, "10.233.0.0/18", "10.233.64.0/18", NODES) != []


def test_pool_errors_read_like_the_cli():
    assert extip_pool_errors([{"name": "a", "cidr": "10.0.0.0/24"}]) == []
    errors = extip_pool_errors([{"name": "a", "cidr": "10.0.0.0/24", "ranges": [["10.0.0.50", "10.0.0.10"]]}])
    assert errors == ["pool 1: range 10.0.0.50-10.0.0.10 ends before it starts"]
    assert "not a list" in extip_pool_errors("a")


def test_range_cidrs_cover_the_pools_ranges_and_nothing_else_of_their_cidrs():
    pools = [
        {"name": "a", "cidr": "10.210.1.0/25", "ranges": [["10.210.1.100", "10.210.1.110"]]},
        {"name": "b", "cidr": "10.210.1.128/30"},
        {"name": "c", "cidr": "2001:db8::/126"},
    ]
    assert extip_range_cidrs(pools) == [
        "10.210.1.100/30", "10.210.1.104/30", "10.210.1.108/31", "10.210.1.110/32",
        # No ranges: the CIDR but its network and broadcast addresses.
        "10.210.1.129/32", "10.210.1.130/32",
        "2001:db8::/126",
    ]
    # A range reaching outside its CIDR is cut to it.
    assert extip_range_cidrs([{"cidr": "10.0.0.0/30", "ranges": [["10.0.0.2", "10.0.0.9"]]}]) == ["10.0.0.2/31"]
    assert extip_range_cidrs(None) == []


def test_renumbered_names_each_service_whose_allocated_address_leaves_the_pools():
    items = [
        {"kind": "IpClaimPool", "metadata": {"name": "a"}, "spec": {"cidr": "10.210.1.0/25", "allocated": {"10.210.1.101": "x", "10.210.1.103": "y"}}},
        {"kind": "IpClaimPool", "metadata": {"name": "gone"}, "spec": {"cidr": "10.9.0.0/24", "allocated": {"10.9.0.5": "z"}}},
        {"kind": "Service", "metadata": {"namespace": "team-a", "name": "lb"}, "spec": {}, "status": {"loadBalancer": {"ingress": [{"ip": "10.210.1.101"}]}}},
        {"kind": "Service", "metadata": {"namespace": "team-a", "name": "kept"}, "spec": {}, "status": {"loadBalancer": {"ingress": [{"ip": "10.210.1.103"}]}}},
        {"kind": "Service", "metadata": {"namespace": "team-c", "name": "auto"}, "spec": {"externalIPs": ["10.9.0.5"]}},
    ]
    pools = [{"name": "a", "cidr": "10.210.1.0/25", "ranges": [["10.210.1.102", "10.210.1.110"]]}]
    assert extip_renumbered(items, pools) == [
        "Service team-a/lb: 10.210.1.101 (IpClaimPool a: no longer in its ranges)",
        "Service team-c/auto: 10.9.0.5 (IpClaimPool gone: the pool is removed)",
    ]
    # The same ranges: nothing moves.
    pools[0]["ranges"] = [["10.210.1.100", "10.210.1.110"]]
    pools.append({"name": "gone", "cidr": "10.9.0.0/24"})
    assert extip_renumbered(items, pools) == []


def test_every_case_of_the_shared_range_table(table):
    for case in table("range-cases.json"):
        got = extip_policy_errors(case["externalCidrs"], case["pools"], case["serviceCidr"], case["podCidr"], case["nodes"])
        assert (case["externalCidrs"], case["pools"], got) == (case["externalCidrs"], case["pools"], case["errors"])
