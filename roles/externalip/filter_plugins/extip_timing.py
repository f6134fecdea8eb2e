"""Claims mode's timings: heartbeat, monitor period and lease duration.

The role's side of lib/timings.ts, message for message: both run
test/fixtures/duration-cases.json and test/fixtures/timing-cases.json.
"""

import re


_DURATION_UNITS = {"ns": 1e-6, "us": 1e-3, "\u00b5s": 1e-3, "\u03bcs": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def _duration_ms(text):
    """A Go duration (500ms, 1.5s, 1h30m) in milliseconds; None when it is not one."""
    text = str(text)
    if text == "0":
        return 0.0
    # Go's grammar: digits with an optional fraction ("2." and ".5" too), then a unit, repeated.
    parts = re.findall(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


def extip_timing_errors(hb, monitor, lease):
    """What is wrong with claims mode's timings, as messages that say what to change."""
    hb_ms, monitor_ms, lease_ms = _duration_ms(hb), _duration_ms(monitor), _duration_ms(lease)
    errors = []
    if None in (hb_ms, monitor_ms, lease_ms):
        return errors  # each variable's own rule reports it
    if hb_ms <= 0 or monitor_ms <= hb_ms:
        errors.append(
            "extip_sched_monitor (%s) must be longer than extip_ctrl_hb (%s), and should allow at least three "
            "heartbeats: a node is given up when no heartbeat came for extip_sched_monitor" % (monitor, hb))
    if lease_ms < 1000:
        errors.append(
            "extip_sched_lease_duration (%s) must be at least 1s: the Lease records whole seconds" % lease)
    return errors


class FilterModule:
    """Claims mode's timings."""

    def filters(self):
        return {
            "extip_timing_errors": extip_timing_errors,
        }
