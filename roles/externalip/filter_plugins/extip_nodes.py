"""Target hosts and Kubernetes nodes: node names, label changes, and the addresses the agent brought up.

The node-name lookup is the CLI doctor's too (cli/nodes.ts); both run test/fixtures/node-name-cases.json.
"""

import json


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


def _own_label(iface):
    """The label on the agent's IPv4 addresses, as ownLabel() in agent/addresses.ts gives it."""
    room = 15 - len(iface) - 1
    return "%s:%s" % (iface, "extip"[:room]) if room >= 1 else None


def _record_addresses(text):
    """The addresses of an owner record's text, as parseOwnerRecord() in agent/addresses.ts
    reads it (both run test/fixtures/owner-cases.json): an object with a list of addresses and
    a numeric time it was written; anything else is no record (None)."""
    import json

    try:
        data = json.loads(text)
    except (ValueError, TypeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("addresses"), list):
        return None
    if not isinstance(data.get("updated"), (int, float)) or isinstance(data.get("updated"), bool):
        return None
    return [str(a) for a in data["addresses"]]


def extip_owned_addr_batch(present, records, iface, protected=None):
    """`ip -batch` lines that delete, from iface, the addresses the controller added:
    those with its IPv4 label (<iface>:extip) or listed in its owner records (records:
    the base64 contents of <state_dir>/owners/<iface>/*.json). An address in `protected`
    (the nodes' own addresses) is never listed, whatever marks it carries."""
    import base64

    own = set()
    for content in records or []:
        try:
            text = base64.b64decode(content).decode("utf-8")
        except (ValueError, TypeError):
            continue
        own.update(_record_addresses(text) or [])
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


class FilterModule:
    """Target hosts and Kubernetes nodes."""

    def filters(self):
        return {
            "extip_node_names": extip_node_names,
            "extip_owned_addr_batch": extip_owned_addr_batch,
            "extip_label_changes": extip_label_changes,
            "extip_nodes_labelled": extip_nodes_labelled,
            "extip_label_restores": extip_label_restores,
        }
