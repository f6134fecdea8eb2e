"""Filters the externalip role uses to check IP pools and CIDRs.

These mirror poolErrors() and the CIDR rules in the extip CLI (cli/rules.ts),
message for message; test/rules-parity.test.ts runs the same cases through both.
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


_DURATION_UNITS = {"ns": 1e-6, "us": 1e-3, "\u00b5s": 1e-3, "\u03bcs": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def _duration_ms(text):
    """A Go duration (500ms, 1.5s, 1h30m) in milliseconds; None when it is not one."""
    text = str(text)
    if text == "0":
        return 0.0
    parts = re.findall(r"([0-9]*\.?[0-9]+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


def extip_timing_errors(hb, monitor, lease):
    """What is wrong with claims mode's timings, as messages that say what to change."""
    hb_ms, monitor_ms, lease_ms = _duration_ms(hb), _duration_ms(monitor), _duration_ms(lease)
    errors = []
    if None in (hb_ms, monitor_ms, lease_ms):
        return errors  # each variable's own rule reports it
    if hb_ms <= 0 or monitor_ms <= hb_ms:
        errors.append(
            "extip_sched_monitor (%s) must be longer than extip_ctrl_hb (%s), and should allow at least three "
            "heartbeats: a node is given up when no heartbeat came for extip_sched_monitor" % (monitor, hb))
    if lease_ms < 1000:
        errors.append(
            "extip_sched_lease_duration (%s) must be at least 1s: the Lease records whole seconds" % lease)
    return errors


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
    """Problems with extip_ip_pools, in the words of poolErrors() in cli/rules.ts."""
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


def _json(value):
    import json

    return json.dumps(value, separators=(",", ":"))


def extip_node_names(hosts, hostvars, nodes, lookup="inventory"):
    """Maps each inventory host to its Kubernetes node name.

    inventory: kube_override_hostname, else inventory_hostname (kubespray's rule).
    internal_ip: the node whose InternalIP is the host's ip, access_ip or
    ansible_host (the original role's rule). A host without a match maps to "".
    """
    by_ip = {}
    for node in nodes:
        for address in node.get("status", {}).get("addresses", []):
            if address.get("type") == "InternalIP":
                by_ip[address.get("address")] = node["metadata"]["name"]
    names = {}
    for host in hosts:
        hv = hostvars[host]
        if lookup == "internal_ip":
            ip = hv.get("ip") or hv.get("access_ip") or hv.get("ansible_host") or ""
            names[host] = by_ip.get(str(ip), "")
        else:
            names[host] = str(hv.get("kube_override_hostname") or host)
    return names


_RESERVED_LABEL_DOMAINS = ("kubernetes.io", "k8s.io")
_SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def extip_ledger_parse(text):
    """The install ledger from its ConfigMap text: {ledger, problems}. The ledger steers what
    uninstall deletes, so its shape is checked before anything trusts it: node label keys
    must not be Kubernetes' own (kubernetes.io, k8s.io), namespaces must not be the
    system ones, every part must have the type install writes."""
    import json

    if text is None or str(text).strip() == "":
        return {"ledger": {}, "problems": []}
    try:
        ledger = json.loads(text)
    except ValueError as err:
        return {"ledger": {}, "problems": ["ledger.json is not JSON (%s)" % err]}
    problems = []
    if not isinstance(ledger, dict):
        return {"ledger": {}, "problems": ["ledger.json is not a JSON object"]}
    labels = ledger.get("labels", {})
    if not isinstance(labels, dict):
        problems.append("labels is not an object")
    else:
        for key, nodes in labels.items():
            domain = key.split("/", 1)[0] if "/" in key else ""
            if any(domain == d or domain.endswith("." + d) for d in _RESERVED_LABEL_DOMAINS):
                problems.append("labels names %s, a Kubernetes label extip never sets" % key)
            if not isinstance(nodes, dict) or not all(v is None or isinstance(v, str) for v in nodes.values()):
                problems.append("labels.%s is not an object of node -> previous value (a string or null)" % key)
    namespaces = ledger.get("namespaces_created", [])
    if not isinstance(namespaces, list) or not all(isinstance(n, str) for n in namespaces):
        problems.append("namespaces_created is not a list of names")
    else:
        for name in namespaces:
            if name in _SYSTEM_NAMESPACES:
                problems.append("namespaces_created names %s, which extip never creates" % name)
    objects = ledger.get("objects", [])
    if not isinstance(objects, list) or not all(isinstance(o, str) and o.count("/") == 2 for o in objects):
        problems.append("objects is not a list of namespace/kind/name")
    for part in ("calico", "agent"):
        if not isinstance(ledger.get(part, {}), dict):
            problems.append("%s is not an object" % part)
    agent = ledger.get("agent", {})
    if isinstance(agent, dict):
        for field in ("iface", "state_dir"):
            if field in agent and not isinstance(agent[field], str):
                problems.append("agent.%s is not a string" % field)
    return {"ledger": ledger if not problems else {}, "problems": problems}


def _own_label(iface):
    room = 15 - len(iface) - 1
    return "%s:%s" % (iface, "extip"[:room]) if room >= 1 else None


def extip_owned_addr_batch(present, records, iface, protected=None):
    """`ip -batch` lines that delete, from iface, the addresses the controller added:
    those with its IPv4 label (<iface>:extip) or listed in its owner records (records:
    the base64 contents of <state_dir>/owners/<iface>/*.json). An address in `protected`
    (the nodes' own addresses) is never listed, whatever marks it carries."""
    import base64
    import json

    own = set()
    for content in records or []:
        try:
            data = json.loads(base64.b64decode(content).decode("utf-8"))
            own.update(str(a) for a in data.get("addresses", []))
        except (ValueError, TypeError, AttributeError):
            continue
    keep = set(str(p) for p in (protected or []) if p)
    label = _own_label(iface)
    lines = []
    for link in present or []:
        for info in link.get("addr_info", []):
            local = info.get("local")
            cidr = "%s/%s" % (local, info.get("prefixlen"))
            if local in keep:
                continue
            if (label and info.get("label") == label) or cidr in own:
                lines.append("address del %s dev %s" % (cidr, iface))
    return lines


def extip_label_changes(nodes, names, key, value):
    """Nodes among `names` whose label `key` is not `value`, mapped to the value
    they have now (None when they have no such label): what install changes and
    what uninstall restores."""
    changes = {}
    wanted = set(names)
    for node in nodes:
        name = node["metadata"]["name"]
        if name not in wanted:
            continue
        labels = node["metadata"].get("labels") or {}
        if labels.get(key) != value:
            changes[name] = labels.get(key)
    return changes


def extip_nodes_labelled(nodes, key):
    """Names of the nodes that carry label `key`, whatever its value."""
    return sorted(n["metadata"]["name"] for n in nodes or [] if key in (n["metadata"].get("labels") or {}))


def extip_label_restores(ledger_labels, nodes):
    """From the ledger's {key: {node: previous}}, the kubectl label arguments
    that put back what was there before, for nodes that still exist and still
    carry what extip set: a list of {nodes: [...], arg: "key-" or "key=previous"}."""
    present = {n["metadata"]["name"]: (n["metadata"].get("labels") or {}) for n in nodes}
    groups = {}
    for key, entries in sorted((ledger_labels or {}).items()):
        for node, previous in sorted(entries.items()):
            if node not in present:
                continue
            if previous is None:
                if key not in present[node]:
                    continue
                arg = "%s-" % key
            else:
                if present[node].get(key) == previous:
                    continue
                arg = "%s=%s" % (key, previous)
            groups.setdefault(arg, []).append(node)
    return [{"arg": arg, "nodes": nodes_} for arg, nodes_ in sorted(groups.items())]


CALICO_FILTERS = "/calico/bgp/v1/global/custom_filters"


def extip_scoped_filter(text, seed, cidrs, version):
    """The seed's filter exports every route on lo (but loopback's own); once the ranges
    external IPs may come from are declared, the same filter exported only within them
    (`net ~ [ CIDR+ ]`: the range and every route inside it), so that an address on lo from
    anywhere else never reaches the routers. A filter the operator wrote is theirs, as is."""
    if not isinstance(text, str) or not isinstance(seed, str) or text.strip() != seed.strip():
        return text
    mine = []
    for c in cidrs or []:
        network, error = _cidr(c) if isinstance(c, str) else (None, "not a string")
        if error is None and network.version == version:
            mine.append("%s+" % network)
    if not mine:
        return text
    return 'if ( ifname = "lo" ) then {\n  if net ~ [ %s ] then accept;\n}\n' % ", ".join(mine)


def extip_etcd_want(mode, name, v4, v6_enabled, v6):
    """The Calico v2 filter keys this install wants, key -> text (none unless mode is etcd-v2-filter)."""
    if mode != "etcd-v2-filter":
        return {}
    want = {"%s/v4/%s" % (CALICO_FILTERS, name): v4}
    if v6_enabled:
        want["%s/v6/%s" % (CALICO_FILTERS, name)] = v6
    return want


def extip_etcd_plan(ledger, want, current, missing_dirs=None):
    """Reconciles the etcd keys extip wrote before (ledger: key -> {previous, written, made_dir})
    with the keys wanted now (want: key -> text), given what etcd holds (current: key -> text|None).

    Returns the ledger to record before writing (ahead, so an interrupted run can still be
    undone), the writes (writes/expect for extip_etcd_v2), which of them are restores (soft:
    a conflict there is a warning), the directories to prune, and the ledger after.
    """
    ledger = ledger or {}
    missing_dirs = missing_dirs or {}
    ahead, after, writes, expect, soft, prune = {}, {}, {}, {}, [], {}
    # Directories extip made for keys it no longer wants: a wanted key under one of them
    # takes it over, so that the directory still goes when that key goes.
    dropped_dirs = sorted({e.get("made_dir") for k, e in ledger.items() if k not in want and e.get("made_dir")}, key=len)
    for key, text in sorted(want.items()):
        entry = ledger.get(key)
        if entry is None:
            made = missing_dirs.get(key) or next((d for d in dropped_dirs if key.startswith(d.rstrip("/") + "/")), None)
            entry = {"previous": current.get(key), "written": text, "made_dir": made}
        else:
            entry = dict(entry, written=text)
        ahead[key] = after[key] = entry
        if current.get(key) != text:
            writes[key], expect[key] = text, current.get(key)
    for key, entry in sorted(ledger.items()):
        if key in want:
            continue
        ahead[key] = entry
        now = current.get(key)
        if now == entry.get("previous"):
            continue
        # Compare-and-swap against what extip wrote: a value someone else changed since is
        # left alone (extip_etcd_v2 warns about it instead of failing).
        writes[key], expect[key] = entry.get("previous"), entry.get("written")
        soft.append(key)
        if entry.get("previous") is None and entry.get("made_dir"):
            prune[key] = entry["made_dir"]
    return {"ahead": ahead, "after": after, "writes": writes, "expect": expect, "soft": soft, "prune": prune}


BIRD_BODY_MAX_BYTES = 16384


def extip_bird_body_errors(value):
    """Problems with a text calico/node pastes into BIRD's function custom_filters(), in the
    words of birdBodyErrors() in cli/rules.ts: non-empty, at most BIRD_BODY_MAX_BYTES, braces
    balanced outside strings and comments (so it cannot close the function)."""
    if not isinstance(value, str):
        return ["not a string"]
    if not value.strip():
        return ["empty"]
    size = len(value.encode("utf-8"))
    if size > BIRD_BODY_MAX_BYTES:
        return ["%d bytes; at most %d" % (size, BIRD_BODY_MAX_BYTES)]
    depth, line, i, n = 0, 1, 0, len(value)
    while i < n:
        c = value[i]
        if c == "\n":
            line += 1
        elif c == "#":
            while i + 1 < n and value[i + 1] != "\n":
                i += 1
        elif c == "/" and value[i + 1 : i + 2] == "*":
            end = value.find("*/", i + 2)
            if end < 0:
                return ["a comment opened on line %d is not closed" % line]
            line += value[i:end].count("\n")
            i = end + 1
        elif c == '"':
            start = line
            i += 1
            while i < n and value[i] != '"':
                if value[i] == "\\":
                    i += 1
                elif value[i] == "\n":
                    line += 1
                i += 1
            if i >= n:
                return ["a string opened on line %d is not closed" % start]
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth < 0:
                return ['the "}" on line %d would close custom_filters() itself' % line]
        i += 1
    return ['%d "{" not closed' % depth] if depth > 0 else []


def _norm_cidr(text):
    try:
        return str(ipaddress.ip_network(str(text), strict=False))
    except ValueError:
        return str(text)


def extip_bgp_plan(ledger, want, current, labels=None, kept=None):
    """Reconciles Calico v3's default BGPConfiguration (current: the object or None) with the
    CIDRs wanted in spec.serviceExternalIPs, given what extip did before (ledger: {created,
    added}). Adds only what is missing, removes only what extip added and no longer wants, and
    deletes the object only if extip created it and nothing else is left in its spec.
    kept: CIDRs another tool keeps in the list (kubespray's calico_advertise_service_external_ips,
    which its Calico role writes on every run): extip may add them early but never owns them,
    so it never removes them.
    """
    ledger = ledger or {}
    kept = [_norm_cidr(c) for c in kept or []]
    added = [c for c in (_norm_cidr(c) for c in ledger.get("added", [])) if c not in kept]
    created = bool(ledger.get("created"))
    wanted = []
    for c in want or []:
        if _norm_cidr(c) not in wanted:
            wanted.append(_norm_cidr(c))
    plan = {"create": None, "patch": [], "delete": False, "before": [], "after": []}
    if current is None:
        if wanted:
            plan["create"] = {
                "apiVersion": "crd.projectcalico.org/v1",
                "kind": "BGPConfiguration",
                "metadata": dict({"name": "default"}, **({"labels": labels} if labels else {})),
                "spec": {"serviceExternalIPs": [{"cidr": c} for c in wanted]},
            }
            plan["after"] = wanted
            ledger_ahead = {"created": True, "added": [c for c in wanted if c not in kept]}
            plan["ahead"], plan["after_ledger"] = ledger_ahead, ledger_ahead
        else:
            plan["ahead"], plan["after_ledger"] = ledger or {}, {}
        plan["changed"] = plan["create"] is not None
        return plan
    spec = current.get("spec") or {}
    entries = spec.get("serviceExternalIPs") or []
    present = [_norm_cidr(e.get("cidr")) for e in entries]
    add = [c for c in wanted if c not in present]
    drop = [c for c in added if c not in wanted]
    remaining = [e for e, c in zip(entries, present) if c not in drop]
    others = [k for k in spec if k != "serviceExternalIPs"]
    plan["before"] = present
    plan["after"] = [_norm_cidr(e.get("cidr")) for e in remaining] + add
    if created and not wanted and not others and not remaining:
        plan["delete"] = True
    else:
        ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": current["metadata"].get("resourceVersion")}]
        if "spec" not in current:
            ops.append({"op": "add", "path": "/spec", "value": {}})
        if "serviceExternalIPs" not in spec and add:
            ops.append({"op": "add", "path": "/spec/serviceExternalIPs", "value": []})
        for i in range(len(entries) - 1, -1, -1):
            if present[i] in drop:
                ops.append({"op": "test", "path": "/spec/serviceExternalIPs/%d" % i, "value": entries[i]})
                ops.append({"op": "remove", "path": "/spec/serviceExternalIPs/%d" % i})
        ops.extend({"op": "add", "path": "/spec/serviceExternalIPs/-", "value": {"cidr": c}} for c in add)
        plan["patch"] = ops if len(ops) > 1 else []
    ahead_added = added + [c for c in add if c not in added and c not in kept]
    # Nothing created and nothing added is the empty record, the same as after_ledger writes:
    # two spellings of it would make every run rewrite the ledger twice.
    plan["ahead"] = {"created": created, "added": ahead_added} if created or ahead_added else {}
    after_added = [c for c in ahead_added if c not in drop]
    plan["after_ledger"] = {} if plan["delete"] or (not created and not after_added) else {"created": created, "added": after_added}
    plan["changed"] = plan["delete"] or bool(plan["patch"])
    return plan


# --- extip_image_archive -----------------------------------------------------


def extip_archive_images(index_text):
    """The images an OCI layout's index.json names for containerd: {name: manifest digest}."""
    try:
        index = json.loads(index_text or "{}")
    except ValueError:
        return {}
    images = {}
    for m in index.get("manifests") or []:
        name = (m.get("annotations") or {}).get("io.containerd.image.name")
        if name:
            images[name] = m.get("digest")
    return images


def extip_image_missing(listings, digest):
    """The hosts whose `ctr images ls name==REF` output ({host: stdout}) does not show the
    image with this digest, sorted."""
    return sorted(h for h, out in (listings or {}).items() if not digest or digest not in (out or ""))


# --- The run lock (a Lease) --------------------------------------------------

LOCK_SECONDS = 900


def _micro_now():
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _process(pid):
    """The start time (clock ticks since boot) of a process, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % int(pid)) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[19]
    except (OSError, ValueError, IndexError):
        return None


def extip_lock_holder(_unused=None):
    """This run's name in the lock: user@host pid P start S, where P is the
    ansible-playbook process (the parent of the worker that templates this) and
    S its start time, so that a later run on the same host can tell it is gone."""
    import getpass
    import os
    import socket

    pid = os.getppid()
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return "%s@%s pid %d start %s" % (user, socket.gethostname(), pid, _process(pid) or "0")


def extip_lease(holder, name, namespace, labels, acquired=None, resource_version=None):
    """The Lease manifest of the run lock, renewed now."""
    now = _micro_now()
    meta = {"name": name, "namespace": namespace, "labels": labels}
    if resource_version:
        meta["resourceVersion"] = str(resource_version)
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta,
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": LOCK_SECONDS, "acquireTime": acquired or now, "renewTime": now},
    }


def _parse_time(text):
    import datetime

    text = str(text or "").replace("Z", "+00:00")
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        return None


def extip_lock_verdict(lease, holder, break_lock=False):
    """What to do about a lock someone holds: {state, holder, acquired, renewed,
    expires, why}. state is mine, stale (its lease ran out, or its holder ran on
    this host and is gone), broken (extip_break_lock) or held."""
    import datetime
    import re
    import socket

    spec = (lease or {}).get("spec") or {}
    other = str(spec.get("holderIdentity") or "")
    renewed = _parse_time(spec.get("renewTime") or spec.get("acquireTime"))
    duration = int(spec.get("leaseDurationSeconds") or LOCK_SECONDS)
    expires = renewed + datetime.timedelta(seconds=duration) if renewed else None
    now = datetime.datetime.now(datetime.timezone.utc)
    out = {
        "holder": other or "(nobody)",
        "acquired": str(spec.get("acquireTime") or "?"),
        "renewed": str(spec.get("renewTime") or "?"),
        "expires": expires.strftime("%Y-%m-%dT%H:%M:%SZ") if expires else "?",
    }
    if other == holder:
        return dict(out, state="mine", why="")
    if not other:
        return dict(out, state="stale", why="the lock names no holder")
    if expires is None or expires <= now:
        return dict(out, state="stale", why="its lease ran out at %s" % out["expires"])
    m = re.match(r"^[^@]*@(\S+) pid (\d+) start (\S+)$", other)
    if m and m.group(1) == socket.gethostname() and _process(m.group(2)) != m.group(3):
        return dict(out, state="stale", why="its process (pid %s on %s) is gone" % (m.group(2), m.group(1)))
    if break_lock:
        return dict(out, state="broken", why="extip_break_lock is set")
    return dict(out, state="held", why="")


# --- What extip applied, and what a re-install prunes ------------------------

def _ref(obj):
    api = str(obj.get("apiVersion") or "")
    group = api.split("/", 1)[0] if "/" in api else ""
    kind = str(obj.get("kind") or "").lower() + ("." + group if group else "")
    meta = obj.get("metadata") or {}
    return "%s/%s/%s" % (meta.get("namespace") or "", kind, meta.get("name") or "")


def extip_object_refs(docs):
    """namespace/kind.group/name of every object in the rendered manifests (a list
    of lists of documents), Namespaces left out: the ledger keeps these, and the
    namespaces extip created, separately."""
    refs = set()
    for group in docs or []:
        for doc in group if isinstance(group, list) else [group]:
            if isinstance(doc, dict) and doc.get("kind") and doc.get("kind") != "Namespace":
                refs.add(_ref(doc))
    return sorted(refs)


def extip_prune_refs(wanted, live_items):
    """What an earlier install applied that this one does not want: the objects
    that carry extip's labels now (listed by kind: extip's own kinds and those the
    ledger recorded), less the wanted ones. An object without the labels is never
    deleted, whatever the ledger says. Each as {ref, namespace, target} for
    `kubectl delete target [-n namespace]`."""
    keep = set(wanted or [])
    out = []
    # CRDs last: deleting one deletes its objects, which would then fail to delete.
    refs = set(_ref(item) for item in live_items or []) - keep
    for ref in sorted(refs, key=lambda r: (r.split("/")[1].startswith("customresourcedefinition."), r)):
        namespace, kind, name = ref.split("/")
        if not kind or not name or kind == "namespace":
            continue
        out.append({"ref": ref, "namespace": namespace, "target": "%s/%s" % (kind, name)})
    return out


def extip_ref_kinds(refs):
    """The kind.group of each namespace/kind.group/name, once each."""
    return sorted(set(r.split("/")[1] for r in refs or [] if isinstance(r, str) and r.count("/") == 2 and r.split("/")[1]))


_NAMESPACE_NOISE = {("configmap", "kube-root-ca.crt"), ("serviceaccount", "default")}


def extip_foreign_objects(items, selector_labels):
    """Objects in a namespace that are not extip's: without its labels, not made
    by Kubernetes for every namespace (kube-root-ca.crt, the default
    ServiceAccount), not events, not owned by another object (they go with it).
    A namespace extip created is deleted only when this is empty."""
    want = dict(selector_labels or {})
    out = []
    for item in items or []:
        meta = item.get("metadata") or {}
        kind = str(item.get("kind") or "").lower()
        labels = meta.get("labels") or {}
        if all(labels.get(k) == v for k, v in want.items()):
            continue
        if kind == "event" or (kind, meta.get("name")) in _NAMESPACE_NOISE or meta.get("ownerReferences"):
            continue
        out.append("%s/%s" % (kind, meta.get("name")))
    return sorted(out)


class FilterModule:
    """The externalip role's filters."""

    def filters(self):
        return {
            "extip_pool_errors": extip_pool_errors,
            "extip_cidr_errors": extip_cidr_errors,
            "extip_timing_errors": extip_timing_errors,
            "extip_policy_errors": extip_policy_errors,
            "extip_node_names": extip_node_names,
            "extip_owned_addr_batch": extip_owned_addr_batch,
            "extip_ledger_parse": extip_ledger_parse,
            "extip_label_changes": extip_label_changes,
            "extip_label_restores": extip_label_restores,
            "extip_nodes_labelled": extip_nodes_labelled,
            "extip_etcd_want": extip_etcd_want,
            "extip_scoped_filter": extip_scoped_filter,
            "extip_etcd_plan": extip_etcd_plan,
            "extip_bgp_plan": extip_bgp_plan,
            "extip_archive_images": extip_archive_images,
            "extip_image_missing": extip_image_missing,
            "extip_bird_body_errors": extip_bird_body_errors,
            "extip_lock_holder": extip_lock_holder,
            "extip_lease": extip_lease,
            "extip_lock_verdict": extip_lock_verdict,
            "extip_object_refs": extip_object_refs,
            "extip_prune_refs": extip_prune_refs,
            "extip_ref_kinds": extip_ref_kinds,
            "extip_foreign_objects": extip_foreign_objects,
        }
