"""extip_warn: reports msg as an Ansible warning and changes nothing.

The role says through it what a run could not do or decided on its own (a lock
taken over, objects left behind), so that the operator sees it in Ansible's
output and `extip` lists it after the run.
"""

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        msg = str(self._task.args.get("msg", "")).strip()
        result.update(changed=False, msg=msg)
        if msg:
            result["warnings"] = [msg]
        return result
