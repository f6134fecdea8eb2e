"""extip_ledger: the install ledger and the run lock that guards it, one task a step.

The install ledger (ConfigMap kube-system/extip-ledger, key ledger.json)
records what extip changed that was there before it: node labels, the
namespace, Calico settings, and the objects it applied. It steers what
uninstall deletes, so what is read is checked before anything trusts it, and
a write never overwrites a ledger that changed since this run read or wrote
it (the write carries that resourceVersion; create when there was none).

The run lock is a Lease (kube-system/extip-lock) taken before the ledger is
read and released when the run ends, so that two runs never read and write the
ledger, labels and Calico at once. It names the ansible-playbook process that
holds it, and is renewed before every ledger write. A lock is stale when its
lease ran out or its holder ran on this host and is gone; a stale lock is
taken over, with a warning. break_lock takes it whoever holds it.

Arguments: state, one of
- locked: take the lock (break_lock); the result says held, holder, acquired;
- read: read the ledger; the result says ledger, resource_version and found;
- written: renew the lock (when holder is given) and write record as the
  ledger, on condition of resource_version; the result as for read;
- unlocked: release the lock if it still names holder;
and target: {kubectl (the program and --kubeconfig), namespace, ledger and
lock (the two objects' names), labels (extip's common labels)}.

Why an action plugin, not tasks: taking the lock was nine task slots on every
run for what is one kubectl create when nobody else runs; reading the ledger a
call, a parse, a check and a fact; a write a renewal, a call, a check and a
fact. kubectl runs through the task's connection like extip_exec's, every
argument quoted; in check mode a write is a server-side dry run.
"""

import datetime
import json
import os
import re
import shlex
import socket

from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase





_WORDS = {"object": "an object", "array": "a list", "string": "a string", "integer": "a whole number",
          "number": "a number", "boolean": "true or false", "null": "null"}


def _type_of(value):
    if value is None:
        return ["null"]
    if isinstance(value, bool):
        return ["boolean"]
    if isinstance(value, int):
        return ["integer", "number"]
    if isinstance(value, float):
        return ["integer", "number"] if value.is_integer() else ["number"]
    if isinstance(value, str):
        return ["string"]
    if isinstance(value, list):
        return ["array"]
    if isinstance(value, dict):
        return ["object"]
    return [type(value).__name__]


def schema_problems(value, schema, path="(the document)"):
    """Every way value breaks schema, each as "<path> is ...": the JSON Schema subset extip's
    schemas use, read as schemaProblems() in lib/schema.ts reads it (both run
    test/fixtures/ledger-cases.json, message for message)."""
    if "not" in schema and not schema_problems(value, schema["not"], path):
        return ["%s is %s" % (path, schema["not"].get("description", "not allowed"))]
    if "type" in schema:
        allowed = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(t in allowed for t in _type_of(value)):
            return ["%s is not %s" % (path, " or ".join(_WORDS.get(t, t) for t in allowed))]
    problems = []
    if "enum" in schema and not any(json.dumps(e, sort_keys=True) == json.dumps(value, sort_keys=True) for e in schema["enum"]):
        problems.append("%s is not one of %s" % (path, ", ".join(json.dumps(e) for e in schema["enum"])))
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        problems.append("%s does not match %s" % (path, schema["pattern"]))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append("%s is less than %s" % (path, schema["minimum"]))
        if "maximum" in schema and value > schema["maximum"]:
            problems.append("%s is more than %s" % (path, schema["maximum"]))
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            problems.extend(schema_problems(item, schema["items"], "%s[%d]" % (path, i)))
    if isinstance(value, dict):
        for key in sorted(value):
            at = key if path == "(the document)" else "%s.%s" % (path, key)
            if "propertyNames" in schema:
                problems.extend(schema_problems(key, schema["propertyNames"], "the key %s of %s" % (json.dumps(key), path)))
            sub = schema.get("properties", {}).get(key, schema.get("additionalProperties"))
            if sub is False:
                problems.append("%s is not a field extip writes" % at)
            elif isinstance(sub, dict):
                problems.extend(schema_problems(value[key], sub, at))
    return problems


_SCHEMA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "files", "ledger.schema.json")


def ledger_schema():
    """The ledger's schema (files/ledger.schema.json), which extip status reads too."""
    with open(_SCHEMA_FILE, encoding="utf-8") as f:
        return json.load(f)


def parse(text):
    """The install ledger from its ConfigMap text: {ledger, problems}. The ledger steers what
    uninstall deletes, so it is checked against files/ledger.schema.json before anything
    trusts it (node label keys not Kubernetes' own, namespaces not the system ones, every
    part of the type install writes); a ledger with a problem is read as none."""

    if text is None or str(text).strip() == "":
        return {"ledger": {}, "problems": []}
    try:
        ledger = json.loads(text)
    except ValueError as err:
        return {"ledger": {}, "problems": ["ledger.json is not JSON (%s)" % err]}
    problems = schema_problems(ledger, ledger_schema())
    return {"ledger": ledger if not problems else {}, "problems": problems}


def configmap(name, namespace, labels, ledger, resource_version):
    """The ledger's ConfigMap, to create (no resource_version) or to replace on condition."""
    meta = {"name": name, "namespace": namespace, "labels": labels}
    if resource_version:
        meta["resourceVersion"] = str(resource_version)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"ledger.json": json.dumps(ledger, sort_keys=True)}}



LOCK_SECONDS = 900


def _micro_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _process(pid):
    """The start time (clock ticks since boot) of a process, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % int(pid)) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[19]
    except (OSError, ValueError, IndexError):
        return None


def lock_holder(pid):
    """This run's name in the lock: user@host pid P start S, where P is the
    ansible-playbook process and S its start time, so that a later run on the
    same host can tell it is gone."""
    import getpass
    import os

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return "%s@%s pid %d start %s" % (user, socket.gethostname(), pid, _process(pid) or "0")


def lease(holder, name, namespace, labels, resource_version=None):
    """The Lease manifest of the run lock, taken now."""
    now = _micro_now()
    meta = {"name": name, "namespace": namespace, "labels": labels}
    if resource_version:
        meta["resourceVersion"] = str(resource_version)
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta,
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": LOCK_SECONDS, "acquireTime": now, "renewTime": now},
    }


def renewal(holder):
    """A JSON patch that renews the lock only while holder holds it: the test
    fails, and the patch with it, once another run took the lock."""
    return [
        {"op": "test", "path": "/spec/holderIdentity", "value": holder},
        {"op": "replace", "path": "/spec/renewTime", "value": _micro_now()},
    ]


def _parse_time(text):
    text = str(text or "").replace("Z", "+00:00")
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        return None


def verdict(current, holder, break_lock=False):
    """What to do about a lock someone holds: {state, holder, acquired, renewed,
    expires, why}. state is mine, stale (its lease ran out, or its holder ran on
    this host and is gone), broken (extip_break_lock) or held."""
    spec = (current or {}).get("spec") or {}
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


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    # A read reads in check mode too; a write is then a server-side dry run.
    _supports_check_mode = True
    _VALID_ARGS = frozenset(("state", "target", "break_lock", "holder", "record", "resource_version"))

    def _kubectl(self, *args, stdin=None):
        cmd = shlex.join(self._argv + list(args))
        env = self._compute_environment_string()
        res = self._low_level_execute_command(f"{env} {cmd}" if env else cmd, in_data=to_bytes(stdin + "\n") if stdin else None)
        return res.get("rc", 1), to_text(res.get("stdout", "")).strip(), to_text(res.get("stderr", "")).strip()

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        target = args.get("target") or {}
        steps = {"locked": self._take, "read": self._read, "written": self._write, "unlocked": self._release}
        self._argv = [to_text(a) for a in target.get("kubectl") or []]
        if args.get("state") not in steps or not self._argv or not all(target.get(k) for k in ("namespace", "ledger", "lock")):
            result.update(failed=True, msg="extip_ledger needs state (%s) and target: {kubectl, namespace, ledger, lock, labels}" % ", ".join(steps))
            return result
        self._namespace = to_text(target["namespace"])
        self._ledger, self._lock = to_text(target["ledger"]), to_text(target["lock"])
        self._labels = dict(target.get("labels") or {})
        self._ledger_at = "ConfigMap %s/%s" % (self._namespace, self._ledger)
        self._where = "Lease %s/%s" % (self._namespace, self._lock)
        result.update(changed=False)
        result.update(steps[args["state"]](args))
        return result

    # --- the install ledger ---------------------------------------------------

    def _read(self, args):
        rc, out, err = self._kubectl("-n", self._namespace, "get", "configmap", self._ledger, "--ignore-not-found", "-o", "json")
        if rc != 0:
            return dict(failed=True, msg="Cannot read the install ledger (%s): %s" % (self._ledger_at, err))
        found = json.loads(out) if out else None
        parsed = parse(((found or {}).get("data") or {}).get("ledger.json", ""))
        if parsed["problems"]:
            return dict(
                failed=True,
                msg=(
                    "The install ledger (%s, key ledger.json) is damaged: %s. It decides what uninstall deletes, so nothing "
                    "was changed. Fix it (kubectl -n %s edit configmap %s) or, if you cannot tell what it should say, delete "
                    "it; extip then treats the cluster as never installed."
                )
                % (self._ledger_at, "; ".join(parsed["problems"]), self._namespace, self._ledger),
            )
        rv = found["metadata"]["resourceVersion"] if found else ""
        return dict(ledger=parsed["ledger"], resource_version=rv, found=found is not None)

    def _write(self, args):
        if args.get("holder"):
            renewed = self._renew(to_text(args["holder"]))
            if renewed.get("failed"):
                return renewed
        record = args.get("record") or {}
        rv = to_text(args.get("resource_version") or "")
        labels = dict(self._labels, **{"app.kubernetes.io/component": "ledger"})
        body = configmap(self._ledger, self._namespace, labels, record, rv)
        dry_run = ["--dry-run=server"] if self._play_context.check_mode else []
        rc, out, err = self._kubectl("replace" if rv else "create", "-o", "json", "-f", "-", *dry_run, stdin=json.dumps(body))
        if rc != 0:
            why = (
                "It changed since this run read it (resourceVersion %s): another run, or a person, wrote it meanwhile." % rv
                if rv
                else "It was created meanwhile by another run."
            )
            return dict(
                failed=True,
                msg=(
                    "The install ledger (%s) was not written: %s. %s This run stops before changing what the ledger records; "
                    "run it again and it starts from what the ledger says now."
                )
                % (self._ledger_at, err, why),
            )
        if dry_run:
            # Nothing was written: what comes next is compared with what the ledger would say.
            return dict(changed=True, ledger=record, resource_version=rv, found=bool(rv))
        return dict(changed=True, ledger=record, resource_version=json.loads(out)["metadata"]["resourceVersion"], found=True)

    # --- the run lock -----------------------------------------------------------

    def _take(self, args):
        import os

        # The worker that runs this is a child of the ansible-playbook process.
        holder = lock_holder(os.getppid())
        labels = dict(self._labels, **{"app.kubernetes.io/component": "lock"})
        rc, out, err = self._kubectl("create", "-o", "json", "-f", "-", stdin=json.dumps(lease(holder, self._lock, self._namespace, labels)))
        if rc == 0:
            return self._holding(holder, out)
        if "AlreadyExists" not in err:
            return dict(failed=True, msg="Cannot take the run lock (%s): %s" % (self._where, err))
        rc, out, err = self._kubectl("-n", self._namespace, "get", "lease", self._lock, "-o", "json")
        if rc != 0:
            return dict(failed=True, msg="Cannot read the run lock (%s): %s" % (self._where, err))
        current = json.loads(out)
        v = verdict(current, holder, bool(args.get("break_lock")))
        if v["state"] == "held":
            return dict(
                failed=True,
                msg=(
                    "Another extip run holds the lock (%s): %s, since %s, last renewed %s. Nothing was changed. Wait until "
                    "that run ends. If it no longer runs (it was killed on another machine), its lock goes stale at %s; to "
                    "take it now, run again with --break-lock (Ansible: -e extip_break_lock=true)."
                )
                % (self._where, v["holder"], v["acquired"], v["renewed"], v["expires"]),
            )
        body = lease(holder, self._lock, self._namespace, labels, current["metadata"]["resourceVersion"])
        rc, out, err = self._kubectl("replace", "-o", "json", "-f", "-", stdin=json.dumps(body))
        if rc != 0:
            return dict(
                failed=True,
                msg="Another run took the stale lock (%s) at the same moment: %s. Nothing was changed; run again when it is done."
                % (self._where, err),
            )
        taken = self._holding(holder, out)
        if v["state"] != "mine":
            taken["warnings"] = [
                "Took over the run lock of %s (%s). If that run was cut off half-way, this run finishes or undoes what it started."
                % (v["holder"], v["why"])
            ]
        return taken

    def _holding(self, holder, out):
        spec = json.loads(out).get("spec") or {}
        return dict(held=True, holder=holder, acquired=spec.get("acquireTime"))

    def _renew(self, holder):
        rc, _, err = self._kubectl("-n", self._namespace, "patch", "lease", self._lock, "--type=json", "-p", json.dumps(renewal(holder)))
        if rc != 0:
            return dict(
                failed=True,
                msg=(
                    "This run's lock (%s) was taken by another run (with --break-lock, or after it went stale): %s. This run "
                    "stops here so that the two do not interleave; run it again when the other one is done."
                )
                % (self._where, err),
            )
        return {}

    def _release(self, args):
        holder = to_text(args.get("holder"))
        rc, out, err = self._kubectl("-n", self._namespace, "get", "lease", self._lock, "--ignore-not-found", "-o", "json")
        if rc == 0 and out and ((json.loads(out).get("spec") or {}).get("holderIdentity") or "") == holder:
            rc, _, err = self._kubectl("-n", self._namespace, "delete", "lease", self._lock, "--ignore-not-found")
        if rc != 0:
            # The run itself is done: a lock left behind goes stale when its lease runs out.
            return dict(held=False, warnings=["Could not release the run lock (%s): %s. It goes stale %d s after its last renewal." % (self._where, err, LOCK_SECONDS)])
        return dict(held=False)
