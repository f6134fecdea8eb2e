"""The Calico BGP export: Calico v2 filter keys in etcd and Calico v3's BGPConfiguration.
"""

import ipaddress


CALICO_FILTERS = "/calico/bgp/v1/global/custom_filters"


def extip_scoped_filter(text, default, cidrs, version):
    """The default filter (the original install guide's) exports every route on lo (but loopback's own); once the ranges
    external IPs may come from are declared, the same filter exported only within them
    (`net ~ [ CIDR+ ]`: the range and every route inside it), so that an address on lo from
    anywhere else never reaches the routers. A filter the operator wrote is theirs, as is."""
    if not isinstance(text, str) or not isinstance(default, str) or text.strip() != default.strip():
        return text
    mine = []
    for c in cidrs or []:
        try:
            network = ipaddress.ip_network(c) if isinstance(c, str) else None
        except ValueError:
            network = None
        if network is not None and network.version == version:
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
    words of birdBodyErrors() in lib/rules.ts: non-empty, at most BIRD_BODY_MAX_BYTES, braces
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


class FilterModule:
    """The Calico BGP export."""

    def filters(self):
        return {
            "extip_scoped_filter": extip_scoped_filter,
            "extip_etcd_want": extip_etcd_want,
            "extip_etcd_plan": extip_etcd_plan,
            "extip_bird_body_errors": extip_bird_body_errors,
            "extip_bgp_plan": extip_bgp_plan,
        }
