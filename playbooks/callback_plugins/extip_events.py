"""extip_events: one JSON line per Ansible event, for extip's progress view.

Enabled by the extip CLI with ANSIBLE_CALLBACKS_ENABLED=extip_events and
ANSIBLE_CALLBACK_PLUGINS pointing here; writes to the file named by
EXTIP_EVENTS_FILE. Ansible's own output is unchanged.
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: extip_events
    type: aggregate
    short_description: Write one JSON line per event for the extip CLI
    description:
      - Writes play, task, per-host result and summary events as JSON lines to the
        file named by the EXTIP_EVENTS_FILE environment variable.
    requirements:
      - enable in configuration
"""

TAIL = 2000


def _tail(text):
    text = text or ""
    if not isinstance(text, str):
        text = str(text)
    return text[-TAIL:]


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "extip_events"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        path = os.environ.get("EXTIP_EVENTS_FILE")
        self._out = open(path, "a", buffering=1, encoding="utf-8") if path else None
        self._start = time.time()

    def _emit(self, event, **fields):
        if self._out is None:
            return
        fields["event"] = event
        fields["t"] = round(time.time() - self._start, 3)
        self._out.write(json.dumps(fields, default=str, sort_keys=True) + "\n")

    def v2_playbook_on_start(self, playbook):
        self._emit("playbook_start", playbook=os.path.basename(playbook._file_name))

    def v2_playbook_on_play_start(self, play):
        self._emit("play_start", play=play.get_name())

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._emit("task_start", task=task.get_name())

    def v2_playbook_on_handler_task_start(self, task):
        self._emit("task_start", task=task.get_name())

    def _result(self, status, result, **extra):
        res = result._result
        fields = {
            "host": result._host.get_name(),
            "task": result._task.get_name(),
            "changed": bool(res.get("changed", False)),
        }
        if status == "ok" and os.environ.get("EXTIP_EVENTS_STDOUT") and "stdout" in res:
            fields["stdout"] = _tail(res.get("stdout", ""))
        if status == "ok" and res.get("warnings"):
            fields["warnings"] = [_tail(w) for w in res["warnings"]]
        if status in ("failed", "unreachable"):
            fields["msg"] = _tail(res.get("msg", ""))
            fields["stderr"] = _tail(res.get("stderr", "") or res.get("module_stderr", ""))
            fields["rc"] = res.get("rc")
            if "assertion" in res:
                fields["assertion"] = res["assertion"]
        fields.update(extra)
        self._emit(status, **fields)

    def v2_runner_on_ok(self, result):
        self._result("ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result("failed", result, ignored=bool(ignore_errors))

    def v2_runner_on_skipped(self, result):
        self._result("skipped", result)

    def v2_runner_on_unreachable(self, result):
        self._result("unreachable", result)

    def v2_playbook_on_stats(self, stats):
        hosts = {}
        for host in sorted(stats.processed.keys()):
            s = stats.summarize(host)
            hosts[host] = {
                "ok": s["ok"],
                "changed": s["changed"],
                "failed": s["failures"],
                "unreachable": s["unreachable"],
                "skipped": s["skipped"],
                "rescued": s["rescued"],
                "ignored": s["ignored"],
            }
        self._emit("stats", hosts=hosts)
        if self._out is not None:
            self._out.close()
            self._out = None
