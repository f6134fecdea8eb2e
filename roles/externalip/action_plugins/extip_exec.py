"""extip_exec: runs one program (argv, optional stdin) on the task's host.

The role's kubectl and etcdctl calls go through it instead of
ansible.builtin.command. The result has the same keys (rc, stdout, stderr,
stdout_lines, stderr_lines, cmd) and the same defaults: trailing newlines are
stripped, a newline is added to stdin, a non-zero rc fails unless the task's
failed_when says otherwise, and in check mode the call is skipped unless the
task sets check_mode: false.

Why not ansible.builtin.command: that module starts Python on the host and
imports Ansible's module code for every call, about 0.2 s, while kubectl itself
takes about 0.1 s. An install makes some twenty such calls, so the module's
start-up was most of its time. This runs the program through the connection's
shell instead, with every argument quoted (shlex), so no value reaches the
shell as code. It honours delegate_to, become and the task's environment like
any other task.

With explain: true, a non-zero exit makes the program's stderr the task's
message: for checks whose script says what is wrong and what to change.
"""

import shlex

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("argv", "stdin", "explain"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        argv = self._task.args.get("argv")
        if not isinstance(argv, (list, tuple)) or not argv:
            raise AnsibleActionFail("extip_exec needs argv: a non-empty list (the program and its arguments)")
        argv = [to_text(a) for a in argv]
        cmd = shlex.join(argv)
        if self._play_context.check_mode:
            result.update(skipped=True, changed=False, msg="not run in check mode", cmd=argv)
            return result

        env = self._compute_environment_string()
        if env:
            cmd = f"{env} {cmd}"
        stdin = self._task.args.get("stdin")
        data = None
        if stdin is not None:
            text = to_text(stdin)
            data = to_bytes(text if text.endswith("\n") else text + "\n")

        res = self._low_level_execute_command(cmd, in_data=data)
        stdout = to_text(res.get("stdout", "")).rstrip("\r\n")
        stderr = to_text(res.get("stderr", "")).rstrip("\r\n")
        rc = res.get("rc", 1)
        result.update(
            cmd=argv,
            rc=rc,
            stdout=stdout,
            stderr=stderr,
            stdout_lines=stdout.splitlines(),
            stderr_lines=stderr.splitlines(),
            changed=True,
        )
        if rc != 0:
            result.update(failed=True, msg=stderr if self._task.args.get("explain") and stderr else "non-zero return code")
        return result
