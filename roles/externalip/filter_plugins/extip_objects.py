"""The objects an install applies: their references, and what to prune.
"""


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
    """The objects an install applies."""

    def filters(self):
        return {
            "extip_object_refs": extip_object_refs,
            "extip_prune_refs": extip_prune_refs,
            "extip_ref_kinds": extip_ref_kinds,
            "extip_foreign_objects": extip_foreign_objects,
        }
