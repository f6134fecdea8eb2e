"""The install ledger: parsing and checking what earlier runs recorded.
"""

import json


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


class FilterModule:
    """The install ledger."""

    def filters(self):
        return {
            "extip_ledger_parse": extip_ledger_parse,
        }
