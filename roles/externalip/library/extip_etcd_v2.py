#!/usr/bin/python
# -*- coding: utf-8 -*-
"""extip_etcd_v2: read and write keys in etcd through etcdctl's v2 API, for the
Calico v2 custom export filter. etcdctl runs with an argv list (no shell) and
the TLS material is passed as file paths, never as contents."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: extip_etcd_v2
short_description: Read, check and write etcd v2 keys with etcdctl (Calico v2's custom filters)
description:
  - C(action=read) returns in C(current) the value of each key (null when missing) and, for each key,
    the highest ancestor directory that does not exist yet.
  - C(action=detect) decides what C(extip_calico_export=auto) does when no BGPConfiguration CRD
    was found. It looks for Calico's keys under /calico and never fails; it returns the mode
    (etcd-v2-filter or none) and a warning saying why it found nothing.
  - C(action=apply) writes values with compare-and-swap against what C(read) saw (C(expect)), so
    a change made meanwhile is never overwritten. If one write fails, the ones made before it are
    undone. Supports check mode and diff.
options:
  etcdctl: {description: Path of etcdctl., type: path, required: true}
  endpoints: {description: Comma-separated etcd client URLs., type: str, required: true}
  ca_file: {description: CA certificate file., type: path, required: true}
  cert_file: {description: Client certificate file., type: path, required: true}
  key_file: {description: Client key file., type: path, required: true}
  action: {description: What to do., type: str, choices: [read, detect, apply], default: read}
  keys: {description: Keys to read (read)., type: list, elements: str, default: []}
  writes: {description: Key to new value; null deletes the key (apply)., type: dict, default: {}}
  expect: {description: Key to the value read before (null when missing) (apply)., type: dict, default: {}}
  soft: {description: Keys whose compare-and-swap conflict is a warning, not a failure (apply)., type: list, elements: str, default: []}
  prune_dirs: {description: Key to the highest directory to remove, once empty, after deleting it (apply)., type: dict, default: {}}
  etcd_host: {description: The inventory host this runs on, for messages (detect)., type: str, default: ""}
author: extip
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

NOT_FOUND = 100
COMPARE_FAILED = 101
ALREADY_EXISTS = 105


class EtcdError(Exception):
    pass


class Etcdctl(object):
    def __init__(self, module):
        self.module = module
        p = module.params
        self.endpoints = p["endpoints"]
        self.base = [
            p["etcdctl"],
            "--endpoints", p["endpoints"],
            "--ca-file", p["ca_file"],
            "--cert-file", p["cert_file"],
            "--key-file", p["key_file"],
        ]

    def run(self, args, data=None):
        rc, out, err = self.module.run_command(
            self.base + args,
            data=data,
            binary_data=True,
            environ_update={"ETCDCTL_API": "2"},
        )
        return rc, out, err

    @staticmethod
    def error_code(err):
        # "Error:  100: Key not found (/x) [5]"
        text = (err or "").strip()
        if text.startswith("Error:"):
            try:
                return int(text.split(":")[1].strip())
            except (IndexError, ValueError):
                return None
        return None

    def fail(self, what, rc, err):
        tail = " ".join((err or "").strip().splitlines()[-3:]) or "exit code %d" % rc
        raise EtcdError("%s: etcd at %s: %s" % (what, self.endpoints, tail))

    def get(self, key):
        rc, out, err = self.run(["-o", "json", "get", key])
        if rc == 0:
            return json.loads(out)["node"].get("value")
        if self.error_code(err) == NOT_FOUND:
            return None
        self.fail("cannot read %s" % key, rc, err)

    def exists(self, path):
        rc, out, err = self.run(["ls", path])
        if rc == 0:
            return True
        if self.error_code(err) == NOT_FOUND:
            return False
        self.fail("cannot list %s" % path, rc, err)

    def put(self, key, value, expect):
        """Writes value if the key still holds expect; returns False on a conflict."""
        if value is None:
            args = ["rm", "--with-value", expect, key]
            data = None
        elif expect is None:
            args, data = ["mk", key], value
        else:
            args, data = ["set", "--swap-with-value", expect, key], value
        rc, out, err = self.run(args, data=data)
        if rc == 0:
            return True
        if self.error_code(err) in (NOT_FOUND, COMPARE_FAILED, ALREADY_EXISTS):
            return False
        self.fail("cannot write %s" % key, rc, err)

    def rmdir(self, path):
        rc, out, err = self.run(["rmdir", path])
        return rc == 0


def check_files(module):
    p = module.params
    for name in ("etcdctl", "ca_file", "cert_file", "key_file"):
        path = p[name]
        var = "extip_etcdctl" if name == "etcdctl" else "extip_etcd_" + name
        if not os.path.exists(path):
            return "%s %s does not exist on this host (set %s)" % (name.replace("_", " "), path, var)
        if not os.access(path, os.R_OK):
            return "%s %s is not readable (check its permissions or %s)" % (name.replace("_", " "), path, var)
    return None


def missing_dir(etcd, key):
    """The highest ancestor of key that does not exist (None when the parent exists)."""
    parts = key.strip("/").split("/")[:-1]
    highest = None
    for depth in range(len(parts), 0, -1):
        path = "/" + "/".join(parts[:depth])
        if etcd.exists(path):
            break
        highest = path
    return highest


def show(value):
    return "" if value is None else value


def main():
    module = AnsibleModule(
        argument_spec=dict(
            etcdctl=dict(type="path", required=True),
            endpoints=dict(type="str", required=True),
            ca_file=dict(type="path", required=True),
            cert_file=dict(type="path", required=True),
            key_file=dict(type="path", required=True),
            action=dict(type="str", choices=["read", "detect", "apply"], default="read"),
            keys=dict(type="list", elements="str", default=[], no_log=False),
            writes=dict(type="dict", default={}),
            expect=dict(type="dict", default={}),
            soft=dict(type="list", elements="str", default=[]),
            prune_dirs=dict(type="dict", default={}),
            etcd_host=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    p = module.params
    etcd = Etcdctl(module)
    problem = check_files(module)

    if p["action"] == "detect":
        if not p["etcd_host"]:
            module.exit_json(changed=False, mode="none", warnings=[
                "extip_calico_export is auto and extip_iface is lo, but Calico could not be detected: "
                "no BGPConfiguration CRD in the cluster, and no etcd host to look in (the inventory has no "
                "etcd group; set extip_etcd_host). Routers will not learn the external IPs; set "
                "extip_calico_export (etcd-v2-filter, bgpconfiguration or none)."])
        if problem:
            module.exit_json(changed=False, mode="none", warnings=[
                "extip_calico_export is auto and extip_iface is lo, but Calico could not be detected: "
                "no BGPConfiguration CRD in the cluster, and on %s the %s. Routers will not learn the "
                "external IPs; set extip_calico_export (etcd-v2-filter, bgpconfiguration or none)." % (p["etcd_host"], problem)])
        try:
            found = etcd.exists("/calico")
        except EtcdError as e:
            module.exit_json(changed=False, mode="none", warnings=[
                "extip_calico_export is auto and extip_iface is lo, but Calico could not be detected: "
                "no BGPConfiguration CRD in the cluster, and %s. Routers will not learn the external IPs; "
                "set extip_calico_export (etcd-v2-filter, bgpconfiguration or none)." % e])
        if found:
            module.exit_json(changed=False, mode="etcd-v2-filter")
        module.exit_json(changed=False, mode="none", warnings=[
            "extip_calico_export is auto and extip_iface is lo, but Calico could not be detected: no "
            "BGPConfiguration CRD in the cluster and no /calico keys in etcd at %s. Routers will not learn "
            "the external IPs; set extip_calico_export (etcd-v2-filter, bgpconfiguration or none)." % p["endpoints"]])

    if problem:
        module.fail_json(msg="Cannot use etcd at %s: %s." % (p["endpoints"], problem))

    try:
        if p["action"] == "read":
            current = {}
            dirs = {}
            for key in p["keys"]:
                current[key] = etcd.get(key)
                dirs[key] = missing_dir(etcd, key) if current[key] is None else None
            module.exit_json(changed=False, current=current, missing_dirs=dirs)

        # apply
        # Writes before deletions: a deletion may prune directories a write still needs.
        plan = [(k, v, p["expect"].get(k)) for k, v in sorted(p["writes"].items(), key=lambda kv: (kv[1] is None, kv[0]))
                if v != p["expect"].get(k)]
        diff = [{"before_header": k, "after_header": k, "before": show(old), "after": show(new)} for k, new, old in plan]
        if not plan or module.check_mode:
            module.exit_json(changed=bool(plan), diff=diff, written=[], conflicts=[])
        done, conflicts, warnings = [], [], []
        try:
            for key, new, old in plan:
                if etcd.put(key, new, old):
                    done.append((key, new, old))
                    if new is None and p["prune_dirs"].get(key):
                        top = p["prune_dirs"][key].rstrip("/")
                        path = key.rsplit("/", 1)[0]
                        while path.startswith(top) and etcd.rmdir(path) and path != top:
                            path = path.rsplit("/", 1)[0]
                elif key in p["soft"]:
                    conflicts.append(key)
                    warnings.append("%s changed in etcd since extip wrote it; left as it is." % key)
                else:
                    raise EtcdError(
                        "%s changed in etcd at %s between reading and writing it (someone else writes it); "
                        "nothing was kept, run again" % (key, p["endpoints"]))
        except EtcdError as e:
            undone = []
            for key, new, old in reversed(done):
                try:
                    if etcd.put(key, old, new):
                        undone.append(key)
                except EtcdError:
                    pass
            module.fail_json(msg="%s. Writes undone: %s." % (e, ", ".join(undone) or "none were made"))
        module.exit_json(changed=bool(done), diff=diff, written=[k for k, _, _ in done], conflicts=conflicts,
                         warnings=warnings)
    except EtcdError as e:
        module.fail_json(msg="%s." % e)


if __name__ == "__main__":
    main()
