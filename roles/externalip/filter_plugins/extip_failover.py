"""Whether a setup leaves claims mode a node to fail over to.

The role's side of lib/failover.ts, message for message: both run
test/fixtures/failover-cases.json (tests/unit/test_extip_failover.py and
test/unit/failover.test.ts).
"""


def _plural(n, one, many):
    return "%d %s" % (n, one if n == 1 else many)


def extip_controller_count(kind, replicas, labelled):
    """The controllers that can run: one a labelled node at most."""
    return int(labelled) if kind == "DaemonSet" else min(int(replicas), int(labelled))


def extip_labelled_nodes(nodes, targets, key, value):
    """How many nodes carry the node label once the install has labelled its target nodes:
    those that carry it now, and the target nodes that exist."""
    names = set()
    targets = set(targets or [])
    for node in nodes or []:
        meta = node.get("metadata") or {}
        if meta.get("name") in targets or (meta.get("labels") or {}).get(key) == value:
            names.add(meta.get("name"))
    return len(names)


def extip_failover_errors(kind, replicas, labelled, claims, allow_no_failover):
    """What preflight refuses: more Deployment replicas than labelled nodes, and in claims
    mode fewer than two controllers unless extip_allow_no_failover is true."""
    replicas, labelled = int(replicas), int(labelled)
    errors = []
    if kind == "Deployment" and replicas > labelled:
        errors.append(
            "extip_ctrl_replicas is %d, but %s the node label: each controller runs on a node of its own "
            "(they share its network), so the others would stay Pending. Lower extip_ctrl_replicas, or label "
            "more nodes (add them to the kube_node group)." % (replicas, _plural(labelled, "node carries", "nodes carry"))
        )
    count = extip_controller_count(kind, replicas, labelled)
    if claims and count < 2 and not allow_no_failover:
        if kind == "Deployment":
            why = "extip_ctrl_app_kind: Deployment with extip_ctrl_replicas: %d" % replicas
        else:
            why = "extip_ctrl_app_kind: DaemonSet over %s" % _plural(labelled, "labelled node", "labelled nodes")
        errors.append(
            "Claims mode moves a lost node's addresses to another node's controller, but this setup runs %s (%s): "
            "a lost node's addresses would stay down until it returns. Set extip_ctrl_app_kind: DaemonSet over two "
            "or more labelled nodes, or extip_ctrl_replicas: 2 or more, or extip_allow_no_failover: true to accept "
            "that." % (_plural(count, "controller", "controllers"), why)
        )
    return errors


class FilterModule:
    """How many controllers a setup runs, and whether claims mode can fail over."""

    def filters(self):
        return {
            "extip_controller_count": extip_controller_count,
            "extip_failover_errors": extip_failover_errors,
            "extip_labelled_nodes": extip_labelled_nodes,
        }
