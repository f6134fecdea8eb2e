"""The claim controllers' membership keys (agent/peers.ts reads them)."""

import base64
import json
import time

# A rotated key signs from this long after the install: the kubelet brings every node's
# copy of a Secret up to date well within it, so every controller takes it before any signs.
ROTATION_DELAY_S = 180


def _stamp(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def extip_peer_keys(secret_json, rotate, now, new_key):
    """The Secret's keys.json (base64) to apply: the one read as it is; a first key
    when there is none; or, with rotate, new_key signing from now plus
    ROTATION_DELAY_S beside the key that signs now (older ones dropped).
    secret_json is `kubectl get secret -o json` (empty when there is none)."""
    text = (secret_json or "").strip()
    old = ((json.loads(text).get("data") or {}).get("keys.json") or "") if text else ""
    if old and not rotate:
        return old
    key = base64.b64encode(str(new_key).encode()).decode()
    now = int(now)
    keys = [{"key": key, "from": _stamp(now + (ROTATION_DELAY_S if old else 0))}]
    if old:
        signing = sorted(
            (k for k in json.loads(base64.b64decode(old)) if str(k.get("from", "")) <= _stamp(now)),
            key=lambda k: k["from"],
        )
        keys += signing[-1:]
    return base64.b64encode(json.dumps(keys).encode()).decode()


class FilterModule:
    """The membership keys."""

    def filters(self):
        return {"extip_peer_keys": extip_peer_keys}
