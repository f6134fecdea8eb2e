"""The run lock: its holder's name, its Lease, and whether another run's lock is stale.
"""

import os
import re


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


class FilterModule:
    """The run lock."""

    def filters(self):
        return {
            "extip_lock_holder": extip_lock_holder,
            "extip_lease": extip_lease,
            "extip_lock_verdict": extip_lock_verdict,
        }
