"""Where external IPs may come from: the CIDR, pool and address-policy checks.

extip_cidr_errors and extip_pool_errors are the role's side of the CLI's rules
(lib/rules.ts on lib/ipnet.ts), message for message: test/role/role-validation.test.ts
runs every case of the shared rule table (test/fixtures/rule-cases.ts) through
both. extip_policy_errors is the role's preflight alone; its tests are in
tests/unit/test_extip_addresses.py.
"""

import ipaddress
import json
import re


NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")


DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _cidr(text):
    """Returns (network, None) or (None, error) like parseCidr() in cli/ipnet.ts."""
    if "/" not in text:
        return None, "has no /prefix length"
    address, prefix = text.split("/", 1)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None, '"%s" is not an IP address' % address
    if not re.match(r"^[0-9]{1,3}$", prefix):
        return None, 'prefix length "%s" is not a number' % prefix
    width = 32 if ip.version == 4 else 128
    if int(prefix) > width:
        return None, "prefix length %s is more than %d" % (prefix, width)
    network = ipaddress.ip_network("%s/%s" % (address, prefix), strict=False)
    if network.network_address != ip:
        return None, "host bits are set; the network address is %s" % network
    return network, None


def _ip(text):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _overlap(a_first, a_last, b_first, b_last):
    return a_first <= b_last and b_first <= a_last


def extip_cidr_errors(value):
    """Problems with a list of CIDRs: each valid with host bits zero, none overlapping."""
    if not isinstance(value, (list, tuple)):
        return ["not a list"]
    errors = []
    seen = []
    for item in value:
        if not isinstance(item, str):
            errors.append("%s is not a string" % item)
            continue
        network, error = _cidr(item)
        if error:
            errors.append('"%s": %s' % (item, error))
            continue
        for other in seen:
            if other.version == network.version and network.overlaps(other):
                errors.append('"%s" overlaps "%s"' % (item, other))
                break
        seen.append(network)
    return errors


def extip_policy_errors(external_cidrs, pools, service_cidr, pod_cidr, nodes):
    """Where external IPs may come from, against what they must never be: the ranges of
    extip_external_cidrs and of the pools must not overlap the Service or pod CIDR, nor
    hold a node's address (nodes: Node objects as kubectl lists them). Each problem names
    the variable to change."""
    # (where, CIDR, the address ranges in it that are given out): a pool gives out its
    # ranges only, so its CIDR may be the nodes' own segment, as claims mode on eth0 wants.
    ranges = [("extip_external_cidrs", c, None) for c in external_cidrs or [] if isinstance(c, str)]
    ranges += [('extip_ip_pools (pool "%s")' % p.get("name"), p.get("cidr"), p.get("ranges") or None) for p in pools or []
               if isinstance(p, dict) and isinstance(p.get("cidr"), str)]
    never = [("extip_service_cidr", service_cidr, "the Service CIDR"), ("extip_pod_cidr", pod_cidr, "the pod CIDR")]
    addresses = []
    for n in nodes or []:
        for a in (n.get("status") or {}).get("addresses") or []:
            if a.get("type") in ("InternalIP", "ExternalIP"):
                ip = _ip(a.get("address") or "")
                if ip is not None:
                    addresses.append((ip, (n.get("metadata") or {}).get("name")))
    errors = []
    for where, text, given in ranges:
        network, error = _cidr(text)
        if error:
            continue  # validate.yml reports it
        for var, other_text, what in never:
            other, other_error = _cidr(other_text) if isinstance(other_text, str) else (None, "none")
            if other_error is None and other.version == network.version and network.overlaps(other):
                errors.append("%s: %s overlaps %s %s (%s)" % (where, text, what, other_text, var))
        spans = []
        for pair in given or [[str(network.network_address), str(network.broadcast_address)]]:
            first, last = (_ip(str(x)) for x in (list(pair) + [None, None])[:2])
            if first is not None and last is not None:
                spans.append(("%s-%s" % (first, last) if given else text, first, last))
        for ip, node in addresses:
            for label, first, last in spans:
                if ip.version == first.version and first <= ip <= last:
                    errors.append("%s: %s holds %s, the address of node %s" % (where, label, ip, node))
    return errors


def extip_pool_errors(value):
    """Problems with extip_ip_pools, in the words of poolErrors() in lib/rules.ts."""
    if not isinstance(value, (list, tuple)):
        return ["not a list"]
    errors = []
    seen = []
    for index, pool in enumerate(value):
        where = "pool %d" % (index + 1)
        if not isinstance(pool, dict):
            errors.append("%s is not a mapping" % where)
            continue
        unknown = [k for k in pool if k not in ("name", "cidr", "ranges", "namespaces")]
        if unknown:
            errors.append("%s has unknown keys %s (allowed: name, cidr, ranges, namespaces)" % (where, ", ".join(unknown)))
        if "namespaces" in pool:
            namespaces = pool.get("namespaces")
            if not isinstance(namespaces, (list, tuple)) or not namespaces:
                errors.append("%s: namespaces is not a non-empty list of namespace names" % where)
            else:
                for ns in namespaces:
                    if not isinstance(ns, str) or not NAMESPACE.match(ns):
                        errors.append("%s: namespace %s is not a namespace name" % (where, _json(ns)))
        name = pool.get("name")
        if not isinstance(name, str) or len(name) > 253 or not DNS_SUBDOMAIN.match(name):
            errors.append("%s: name %s is not a lowercase DNS name" % (where, _json(name)))
        elif any(s[0] == name for s in seen):
            errors.append('%s: name "%s" is used twice' % (where, name))
        cidr = pool.get("cidr")
        if not isinstance(cidr, str):
            errors.append("%s: cidr is missing" % where)
            continue
        network, error = _cidr(cidr)
        if error:
            errors.append('%s: cidr "%s" %s' % (where, cidr, error))
            continue
        for other_name, other in seen:
            if other.version == network.version and network.overlaps(other):
                errors.append('%s: cidr %s overlaps pool "%s" (%s)' % (where, cidr, other_name, other))
                break
        seen.append((str(name), network))
        ranges = pool.get("ranges")
        if ranges is None:
            continue
        if not isinstance(ranges, (list, tuple)):
            errors.append("%s: ranges is not a list of [first, last] pairs" % where)
            continue
        done = []
        for pair in ranges:
            if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(isinstance(p, str) for p in pair):
                errors.append("%s: range %s is not a [first, last] pair of addresses" % (where, _json(pair)))
                continue
            first, last = _ip(pair[0]), _ip(pair[1])
            if first is None or last is None:
                errors.append("%s: range %s has an entry that is not an IP address" % (where, _json(pair)))
                continue
            text = "%s-%s" % (pair[0], pair[1])
            if first.version != network.version or last.version != network.version:
                errors.append("%s: range %s is not in the address family of %s" % (where, text, cidr))
            elif first > last:
                errors.append("%s: range %s ends before it starts" % (where, text))
            elif first < network.network_address or last > network.broadcast_address:
                errors.append("%s: range %s is not inside %s" % (where, text, cidr))
            else:
                clash = next((d for d in done if _overlap(d[0], d[1], first, last)), None)
                if clash:
                    errors.append("%s: range %s overlaps range %s" % (where, text, clash[2]))
                done.append((first, last, text))
    return errors


def extip_range_cidrs(pools):
    """The CIDRs that cover exactly the addresses the pools give: each pool's
    ranges cut to its CIDR, or its whole CIDR but the network and broadcast
    addresses when it lists none (as the agent's poolAddresses() counts them).
    What the agent may bring up for the pools (ipmanager --allowed-cidrs): a
    pool's CIDR alone grants nothing outside its ranges."""
    out = []
    for pool in pools or []:
        try:
            net = ipaddress.ip_network(str(pool.get("cidr", "")), strict=False)
        except ValueError:
            continue
        spans = []
        for pair in pool.get("ranges") or []:
            first, last = (_ip(str(x)) for x in pair)
            if first is None or last is None or first.version != net.version:
                continue
            spans.append((max(first, net.network_address), min(last, net.broadcast_address)))
        if not pool.get("ranges"):
            if net.version == 4 and net.num_addresses > 2:
                spans.append((net.network_address + 1, net.broadcast_address - 1))
            else:
                spans.append((net.network_address, net.broadcast_address))
        for first, last in spans:
            if first <= last:
                out.extend(str(c) for c in ipaddress.summarize_address_range(first, last))
    return list(dict.fromkeys(out))


def _in_pool(ip, pool):
    """Whether a pool as extip_ip_pools declares it gives this address (its ranges, or its CIDR but
    the network and broadcast addresses)."""
    try:
        net = ipaddress.ip_network(str(pool.get("cidr", "")), strict=False)
    except ValueError:
        return False
    if ip.version != net.version or ip not in net:
        return False
    if not pool.get("ranges"):
        return net.version == 6 or net.num_addresses <= 2 or ip not in (net.network_address, net.broadcast_address)
    for pair in pool.get("ranges"):
        first, last = (_ip(str(x)) for x in pair)
        if first is not None and last is not None and first.version == ip.version and first <= ip <= last:
            return True
    return False


def extip_renumbered(items, pools):
    """The Services a re-install with these extip_ip_pools would renumber: each address an
    IpClaimPool in the cluster gave (spec.allocated) that the pool of that name no longer
    gives, with the Services using it (spec.externalIPs, status.loadBalancer.ingress). items:
    the IpClaimPools and Services as kubectl lists them. One line per Service and address."""
    wanted = {p.get("name"): p for p in pools or []}
    services = [i for i in items or [] if i.get("kind") == "Service"]
    out = []
    for pool in (i for i in items or [] if i.get("kind") == "IpClaimPool"):
        name = pool.get("metadata", {}).get("name")
        for text in sorted((pool.get("spec") or {}).get("allocated") or {}):
            ip = _ip(text)
            if ip is None or (name in wanted and _in_pool(ip, wanted[name])):
                continue
            why = "no longer in its ranges" if name in wanted else "the pool is removed"
            for s in services:
                spec, status = s.get("spec") or {}, s.get("status") or {}
                used = list(spec.get("externalIPs") or []) + [g.get("ip") for g in (status.get("loadBalancer") or {}).get("ingress") or []]
                if any(_ip(str(u)) == ip for u in used if u):
                    meta = s.get("metadata", {})
                    out.append("Service %s/%s: %s (IpClaimPool %s: %s)" % (meta.get("namespace"), meta.get("name"), ip, name, why))
    return out


def _json(value):
    import json

    return json.dumps(value, separators=(",", ":"))


class FilterModule:
    """Where external IPs may come from."""

    def filters(self):
        return {
            "extip_cidr_errors": extip_cidr_errors,
            "extip_policy_errors": extip_policy_errors,
            "extip_pool_errors": extip_pool_errors,
            "extip_range_cidrs": extip_range_cidrs,
            "extip_renumbered": extip_renumbered,
        }
