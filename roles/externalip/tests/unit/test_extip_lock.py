import datetime
import os

from extip_ledger import LOCK_SECONDS, lease, lock_holder, renewal, verdict


def stamp(delta_seconds):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=delta_seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def held_by(holder, renewed):
    return {"spec": {"holderIdentity": holder, "leaseDurationSeconds": LOCK_SECONDS, "acquireTime": renewed, "renewTime": renewed}}


def test_the_holder_names_the_process_and_its_start_time():
    me = lock_holder(os.getpid())
    assert " pid %d start " % os.getpid() in me and not me.endswith(" start 0")
    # A process that does not exist has no start time.
    assert lock_holder(4194303).endswith(" start 0")


def test_a_lease_carries_the_holder_and_the_resource_version_to_replace():
    body = lease("me", "extip-lock", "kube-system", {"a": "b"}, "42")
    assert body["kind"] == "Lease" and body["spec"]["holderIdentity"] == "me"
    assert body["metadata"]["resourceVersion"] == "42"
    assert "resourceVersion" not in lease("me", "extip-lock", "kube-system", {})["metadata"]


def test_a_renewal_holds_only_while_the_lease_names_this_run():
    test, replace = renewal("me")
    assert test == {"op": "test", "path": "/spec/holderIdentity", "value": "me"}
    assert replace["op"] == "replace" and replace["path"] == "/spec/renewTime"


def test_verdicts():
    assert verdict(held_by("me", stamp(0)), "me")["state"] == "mine"
    assert verdict(held_by("other@elsewhere pid 1 start 1", stamp(0)), "me")["state"] == "held"
    assert verdict(held_by("other@elsewhere pid 1 start 1", stamp(0)), "me", True)["state"] == "broken"
    ran_out = verdict(held_by("other@elsewhere pid 1 start 1", stamp(-LOCK_SECONDS - 5)), "me")
    assert ran_out["state"] == "stale" and "ran out" in ran_out["why"]
    assert verdict(held_by("", stamp(0)), "me")["state"] == "stale"


def test_a_holder_on_this_host_whose_process_is_gone_is_stale():
    import socket

    gone = verdict(held_by("ops@%s pid 4194303 start 1" % socket.gethostname(), stamp(0)), "me")
    assert gone["state"] == "stale" and "is gone" in gone["why"]
    alive = verdict(held_by(lock_holder(os.getpid()), stamp(0)), "me")
    assert alive["state"] == "held"
