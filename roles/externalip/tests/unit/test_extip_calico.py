from extip_calico import extip_bird_body_errors, extip_etcd_want, extip_scoped_filter

DEFAULT = 'if ( ifname = "lo" ) then {\n  if net != 127.0.0.0/8 then accept;\n}\n'


def test_the_seed_filter_is_scoped_to_the_declared_ranges_of_its_family():
    scoped = extip_scoped_filter(DEFAULT, DEFAULT, ["192.0.2.0/24", "2001:db8::/64"], 4)
    assert "net ~ [ 192.0.2.0/24+ ]" in scoped and "2001:db8" not in scoped


def test_a_filter_the_operator_wrote_is_kept_as_it_is():
    mine = 'if net ~ [ 10.0.0.0/8+ ] then accept;\n'
    assert extip_scoped_filter(mine, DEFAULT, ["192.0.2.0/24"], 4) == mine


def test_no_declared_range_keeps_the_default():
    assert extip_scoped_filter(DEFAULT, DEFAULT, [], 4) == DEFAULT


def test_etcd_keys_only_in_the_etcd_v2_mode():
    assert extip_etcd_want("bgpconfiguration", "lo_iface", "F4", True, "F6") == {}
    want = extip_etcd_want("etcd-v2-filter", "lo_iface", "F4", False, "F6")
    assert list(want) == ["/calico/bgp/v1/global/custom_filters/v4/lo_iface"]


def test_bird_body_errors_catch_unbalanced_braces():
    assert extip_bird_body_errors(DEFAULT) == []
    assert extip_bird_body_errors('if net ~ [ 10.0.0.0/8 ] then {\n accept;\n') == ['1 "{" not closed']
