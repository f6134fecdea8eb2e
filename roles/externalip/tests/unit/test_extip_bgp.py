from extip_bgp import extip_bgp_errors, extip_bgp_peer_errors, extip_bgp_reflector_errors


def test_the_bgp_cases_give_the_cli_s_errors(table):
    cases = table("bgp-cases.json")
    for case in cases["setups"]:
        got = extip_bgp_errors(case["speaker"], case["peers"], case["distribution"], case["externalCidrs"], case["calicoExport"], case["mask"],
                               case.get("reflectors"))
        assert got == case["errors"], case
    for case in cases["peers"]:
        assert extip_bgp_peer_errors(case["value"]) == case["errors"], case
    for case in cases["reflectors"]:
        assert extip_bgp_reflector_errors(case["value"]) == case["errors"], case
