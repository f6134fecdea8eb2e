"""extip's BGP speaker: the checks of extip_bgp_peers, extip_bgp_route_reflectors and
of the BGP variables together.

The role's side of bgpPeerErrors(), bgpReflectorErrors() and bgpSetupErrors() in
lib/bgp.ts, message for message: both run test/fixtures/bgp-cases.json.
"""

import ipaddress
import json
import re

_ASN_MAX = 4294967295
_NODE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_KEYS = ["address", "asn", "nodes", "bfd", "port"]


def _whole(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _ipv4(value):
    if not isinstance(value, str):
        return False
    try:
        return isinstance(ipaddress.ip_address(value), ipaddress.IPv4Address)
    except ValueError:
        return False


def extip_bgp_peer_errors(value):
    """Problems with extip_bgp_peers, in the words of bgpPeerErrors() in lib/bgp.ts."""
    if not isinstance(value, list):
        return ["not a list"]
    errors = []
    seen = set()
    for index, item in enumerate(value):
        where = "peer %d" % (index + 1)
        if not isinstance(item, dict):
            errors.append("%s is not a mapping" % where)
            continue
        unknown = [k for k in item if k not in _KEYS]
        if unknown:
            errors.append("%s has unknown keys %s (allowed: %s)" % (where, ", ".join(unknown), ", ".join(_KEYS)))
        address = item.get("address")
        if not _ipv4(address):
            errors.append("%s: address %s is not an IPv4 address" % (where, json.dumps(address)))
        elif address in seen:
            errors.append("%s: address %s is listed twice" % (where, address))
        else:
            seen.add(address)
        asn = item.get("asn")
        if not _whole(asn) or asn < 1 or asn > _ASN_MAX:
            errors.append("%s: asn %s is not an AS number from 1 to %d" % (where, json.dumps(asn), _ASN_MAX))
        if "nodes" in item:
            nodes = item["nodes"]
            if not isinstance(nodes, list) or not nodes or any(not isinstance(n, str) or not _NODE_NAME.match(n) for n in nodes):
                errors.append("%s: nodes is not a non-empty list of node names" % where)
        if "bfd" in item and not isinstance(item["bfd"], bool):
            errors.append("%s: bfd is not true or false" % where)
        if "port" in item and (not _whole(item["port"]) or item["port"] < 1 or item["port"] > 65535):
            errors.append("%s: port %s is not a port from 1 to 65535" % (where, json.dumps(item["port"])))
    return errors


def extip_bgp_reflector_errors(value):
    """Problems with extip_bgp_route_reflectors, in the words of bgpReflectorErrors() in lib/bgp.ts."""
    if not isinstance(value, list):
        return ["not a list"]
    errors = []
    addresses = set()
    placed = {}
    for index, item in enumerate(value):
        where = "reflector %d" % (index + 1)
        if not isinstance(item, dict):
            errors.append("%s is not a mapping" % where)
            continue
        unknown = [k for k in item if k not in ("address", "nodes", "peers")]
        if unknown:
            errors.append("%s has unknown keys %s (allowed: address, nodes, peers)" % (where, ", ".join(unknown)))
        address = item.get("address")
        if not _ipv4(address):
            errors.append("%s: address %s is not an IPv4 address" % (where, json.dumps(address)))
        elif address in addresses:
            errors.append("%s: address %s is listed twice" % (where, address))
        else:
            addresses.add(address)
        nodes = item.get("nodes")
        if not isinstance(nodes, list) or not nodes or any(not isinstance(n, str) or not _NODE_NAME.match(n) for n in nodes):
            errors.append("%s: nodes is not a non-empty list of node names (the rack's nodes)" % where)
        else:
            for node in nodes:
                other = placed.get(node)
                if other is not None and other != index:
                    errors.append("%s: node %s is in reflector %d too; a node peers with one reflector" % (where, node, other + 1))
                else:
                    placed[node] = index
        peers = item.get("peers")
        if not isinstance(peers, list) or not peers:
            errors.append(
                "%s: peers is not a non-empty list of routers (the rack's ToR, such as [{address: 10.210.1.1, asn: 64512}])" % where)
        else:
            errors.extend("%s: %s" % (where, e) for e in extip_bgp_peer_errors(peers))
            if any(isinstance(p, dict) and "nodes" in p for p in peers):
                errors.append("%s: its peers take no nodes (the reflector peers with them from whichever node holds it)" % where)
            if any(isinstance(p, dict) and p.get("address") == address for p in peers):
                errors.append("%s: a peer has the reflector's own address %s" % (where, address))
    return errors


def extip_bgp_errors(speaker, peers, distribution, external_cidrs, calico_export, mask, reflectors=None):
    """What the BGP variables ask that cannot work together, in the words of bgpSetupErrors()."""
    if speaker != "extip":
        return []
    errors = []
    if distribution != "all":
        errors.append(
            "extip_bgp_speaker is extip, which announces every address from every labelled node (ECMP), but "
            "extip_distribution is %s; set extip_distribution: all, or extip_bgp_speaker: none" % distribution)
    if (not isinstance(peers, list) or not peers) and not (isinstance(reflectors, list) and reflectors):
        errors.append(
            "extip_bgp_speaker is extip but extip_bgp_peers is empty; name the routers the nodes peer with, "
            "such as [{address: 10.210.1.1, asn: 64512}]")
    if not any(isinstance(c, str) and ":" not in c for c in external_cidrs or []):
        errors.append(
            "extip_bgp_speaker is extip, which announces only addresses inside extip_external_cidrs, and they hold "
            "no IPv4 range; declare where external IPs come from, such as [192.0.2.0/24]")
    if str(mask) != "32":
        errors.append(
            "extip_bgp_speaker is extip, which announces each address as a /32, but extip_mask is %s, so the addresses "
            "come up as /%s (on lo a whole subnet would be local); set extip_mask: 32" % (mask, mask))
    if calico_export in ("etcd-v2-filter", "bgpconfiguration"):
        errors.append(
            "extip_calico_export is %s but extip_bgp_speaker is extip, whose speaker takes Calico's place; "
            "set extip_calico_export: none (or auto), or extip_bgp_speaker: calico" % calico_export)
    return errors


class FilterModule:
    """extip's BGP speaker."""

    def filters(self):
        return {
            "extip_bgp_peer_errors": extip_bgp_peer_errors,
            "extip_bgp_reflector_errors": extip_bgp_reflector_errors,
            "extip_bgp_errors": extip_bgp_errors,
        }
