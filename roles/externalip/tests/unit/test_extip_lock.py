import datetime

from extip_lock import LOCK_SECONDS, extip_lease, extip_lock_holder, extip_lock_verdict


def stamp(delta_seconds):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=delta_seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease(holder, renewed):
    return {"spec": {"holderIdentity": holder, "leaseDurationSeconds": LOCK_SECONDS, "acquireTime": renewed, "renewTime": renewed}}


def test_the_holder_names_this_ansible_playbook_process():
    assert " pid " in extip_lock_holder() and " start " in extip_lock_holder()


def test_a_lease_carries_the_holder_and_the_resource_version_to_replace():
    body = extip_lease("me", "extip-lock", "kube-system", {"a": "b"}, None, "42")
    assert body["kind"] == "Lease" and body["spec"]["holderIdentity"] == "me"
    assert body["metadata"]["resourceVersion"] == "42"


def test_verdicts():
    assert extip_lock_verdict(lease("me", stamp(0)), "me")["state"] == "mine"
    assert extip_lock_verdict(lease("other@elsewhere pid 1 start 1", stamp(0)), "me")["state"] == "held"
    assert extip_lock_verdict(lease("other@elsewhere pid 1 start 1", stamp(0)), "me", True)["state"] == "broken"
    ran_out = extip_lock_verdict(lease("other@elsewhere pid 1 start 1", stamp(-LOCK_SECONDS - 5)), "me")
    assert ran_out["state"] == "stale" and "ran out" in ran_out["why"]
    assert extip_lock_verdict(lease("", stamp(0)), "me")["state"] == "stale"
