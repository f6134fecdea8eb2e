from extip_objects import extip_foreign_objects, extip_object_refs, extip_prune_refs, extip_ref_kinds

DS = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "c", "namespace": "extip"}}
CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "ipclaims.ipcontroller.ext"}}
NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "extip"}}


def test_object_refs_leave_namespaces_out():
    assert extip_object_refs([[NS, DS], [CRD, None]]) == [
        "/customresourcedefinition.apiextensions.k8s.io/ipclaims.ipcontroller.ext",
        "extip/daemonset.apps/c",
    ]


def test_prune_refs_delete_what_is_no_longer_wanted_crds_last():
    old = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "old", "namespace": "extip"}}
    plan = extip_prune_refs(["extip/daemonset.apps/c"], [CRD, DS, old])
    assert [p["target"] for p in plan] == ["deployment.apps/old", "customresourcedefinition.apiextensions.k8s.io/ipclaims.ipcontroller.ext"]
    assert plan[0]["namespace"] == "extip" and plan[1]["namespace"] == ""


def test_ref_kinds():
    assert extip_ref_kinds(["a/daemonset.apps/x", "b/daemonset.apps/y", "/clusterrole.rbac.authorization.k8s.io/z", "bad"]) == [
        "clusterrole.rbac.authorization.k8s.io", "daemonset.apps"]


def test_foreign_objects_skip_extip_s_own_and_what_kubernetes_makes():
    labels = {"app.kubernetes.io/managed-by": "extip"}
    items = [
        {"kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt"}},
        {"kind": "ConfigMap", "metadata": {"name": "mine", "labels": labels}},
        {"kind": "Pod", "metadata": {"name": "p", "ownerReferences": [{"kind": "ReplicaSet"}]}},
        {"kind": "Secret", "metadata": {"name": "theirs"}},
    ]
    assert extip_foreign_objects(items, labels) == ["secret/theirs"]
