"""extip_lock: takes, renews or releases the run lock, one task each.

The run lock is a Lease (kube-system/extip-lock) taken before the ledger is
read and released when the run ends, so that two runs never read and write the
ledger, labels and Calico at once. It names the ansible-playbook process that
holds it. A lock is stale when its lease ran out (it is renewed at every
ledger write) or its holder ran on this host and is gone; a stale lock is taken
over, with a warning. extip_break_lock takes it whoever holds it.

Arguments: state (held, renewed or released), kubectl (the argv that runs
kubectl: the program and --kubeconfig), name, namespace; for held also labels
and break_lock; for renewed and released, holder as the held call returned
it. The result says held (whether this run holds the lock afterwards) and
holder; a take also says acquired.

Why an action plugin, not tasks: a take is a create, and only when another run
holds the lock a read, a verdict and a replace; as tasks that was nine task
slots on every run for what is one kubectl call when nobody else runs. The
kubectl calls run through the task's connection like extip_exec's, with every
argument quoted.
"""

import datetime
import json
import re
import shlex
import socket

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase

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
    _VALID_ARGS = frozenset(("state", "kubectl", "name", "namespace", "labels", "break_lock", "holder"))

    def _kubectl(self, *args, stdin=None):
        cmd = shlex.join(self._argv + list(args))
        env = self._compute_environment_string()
        res = self._low_level_execute_command(f"{env} {cmd}" if env else cmd, in_data=to_bytes(stdin + "\n") if stdin else None)
        return res.get("rc", 1), to_text(res.get("stdout", "")).strip(), to_text(res.get("stderr", "")).strip()

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        state = args.get("state")
        if state not in ("held", "renewed", "released"):
            raise AnsibleActionFail("extip_lock needs state: held, renewed or released")
        kubectl = args.get("kubectl")
        if not isinstance(kubectl, (list, tuple)) or not kubectl:
            raise AnsibleActionFail("extip_lock needs kubectl: the program and its arguments, as a list")
        self._argv = [to_text(a) for a in kubectl]
        self._name, self._namespace = to_text(args.get("name")), to_text(args.get("namespace"))
        self._where = "Lease %s/%s" % (self._namespace, self._name)
        result.update(changed=False, held=False)
        step = {"held": self._take, "renewed": self._renew, "released": self._release}[state]
        result.update(step(args, task_vars or {}))
        return result

    def _take(self, args, task_vars):
        import os

        # The worker that runs this is a child of the ansible-playbook process.
        holder = lock_holder(os.getppid())
        labels = args.get("labels") or {}
        rc, out, err = self._kubectl("create", "-o", "json", "-f", "-", stdin=json.dumps(lease(holder, self._name, self._namespace, labels)))
        if rc == 0:
            return self._holding(holder, out)
        if "AlreadyExists" not in err:
            return dict(failed=True, msg="Cannot take the run lock (%s): %s" % (self._where, err))
        rc, out, err = self._kubectl("-n", self._namespace, "get", "lease", self._name, "-o", "json")
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
        body = lease(holder, self._name, self._namespace, labels, current["metadata"]["resourceVersion"])
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

    def _renew(self, args, task_vars):
        holder = to_text(args.get("holder"))
        rc, out, err = self._kubectl("-n", self._namespace, "patch", "lease", self._name, "--type=json", "-p", json.dumps(renewal(holder)), "-o", "json")
        if rc != 0:
            return dict(
                failed=True,
                msg=(
                    "This run's lock (%s) was taken by another run (with --break-lock, or after it went stale): %s. This run "
                    "stops here so that the two do not interleave; run it again when the other one is done."
                )
                % (self._where, err),
            )
        return dict(held=True, holder=holder)

    def _release(self, args, task_vars):
        holder = to_text(args.get("holder"))
        rc, out, err = self._kubectl("-n", self._namespace, "get", "lease", self._name, "--ignore-not-found", "-o", "json")
        if rc == 0 and out and ((json.loads(out).get("spec") or {}).get("holderIdentity") or "") == holder:
            rc, _, err = self._kubectl("-n", self._namespace, "delete", "lease", self._name, "--ignore-not-found")
        if rc != 0:
            # The run itself is done: a lock left behind goes stale when its lease runs out.
            return dict(held=False, warnings=["Could not release the run lock (%s): %s. It goes stale %d s after its last renewal." % (self._where, err, LOCK_SECONDS)])
        return dict(held=False)
