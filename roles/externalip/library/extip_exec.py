#!/usr/bin/python
# -*- coding: utf-8 -*-
"""The documentation of the extip_exec action plugin (action_plugins/extip_exec.py), for
ansible-doc; the plugin does the work and never runs this file."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: extip_exec
short_description: Run one program (an argv list, optional stdin) on the task's host, through its shell
version_added: "0.2.0"
description:
  - Runs the program through the connection's shell with every argument quoted, so no value reaches
    the shell as code, without starting Python on the host (ansible.builtin.command does, some 0.2 s a call).
  - The result has ansible.builtin.command's keys and defaults; in check mode the call is skipped
    unless the task sets check_mode to false. Honours delegate_to, become and the task's environment.
options:
  argv:
    description: The program and its arguments.
    type: list
    elements: str
    required: true
  stdin:
    description: Text given on standard input (a newline is added).
    type: str
  explain:
    description: On a non-zero exit, make the program's stderr the task's message (checks whose script says what to change).
    type: bool
    default: false
author: extip
"""

EXAMPLES = r"""
- name: List the nodes
  extip_exec:
    argv: [kubectl, --kubeconfig=/etc/kubernetes/admin.conf, get, nodes, -o, json]
  register: nodes
  changed_when: false
  check_mode: false
"""

RETURN = r"""
rc:
  description: The program's exit code.
  returned: always
  type: int
stdout:
  description: Its standard output, the trailing newline stripped.
  returned: always
  type: str
stderr:
  description: Its standard error, the trailing newline stripped.
  returned: always
  type: str
cmd:
  description: The command as it ran, quoted.
  returned: always
  type: str
"""
