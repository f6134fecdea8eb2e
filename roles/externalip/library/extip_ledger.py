#!/usr/bin/python
# -*- coding: utf-8 -*-
"""The documentation of the extip_ledger action plugin (action_plugins/extip_ledger.py), for
ansible-doc; the plugin does the work and never runs this file."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: extip_ledger
short_description: Read and write extip's install ledger, and take, renew and release the run lock that guards it
version_added: "0.2.0"
description:
  - The install ledger (ConfigMap kube-system/extip-ledger, key ledger.json, shaped as
    files/ledger.schema.json says) records what an install changed that was there before; it
    steers uninstall, so what is read is checked against the schema before anything trusts it.
  - A write never overwrites a ledger that changed since this run read or wrote it. The run lock
    (Lease kube-system/extip-lock) is held from preflight to the run's end, so two runs never
    change the cluster at once; a stale lock is taken over with a warning.
  - In check mode a write is a server-side dry run.
options:
  state:
    description: C(locked) takes the lock, C(read) reads the ledger, C(written) renews the lock and writes I(record), C(unlocked) releases the lock.
    type: str
    choices: [locked, read, written, unlocked]
    required: true
  target:
    description: Where the ledger and the lock are, as a dict of kubectl (argv with --kubeconfig), namespace, ledger, lock and labels.
    type: dict
    required: true
  record:
    description: The ledger to write (state written).
    type: dict
  resource_version:
    description: The ledger's resourceVersion the write is conditional on; none creates it.
    type: str
  holder:
    description: The lock holder the run took it as (written, unlocked).
    type: str
  break_lock:
    description: Take the lock whoever holds it (extip_break_lock).
    type: bool
    default: false
author: extip
"""

EXAMPLES = r"""
- name: Read the install ledger
  extip_ledger:
    state: read
    target: "{{ extip__ledger_target }}"
  register: extip__ledger_state
"""

RETURN = r"""
ledger:
  description: The ledger as read or written (empty when there is none, or when it breaks its schema).
  returned: read, written
  type: dict
resource_version:
  description: The ledger's resourceVersion, for the next conditional write.
  returned: read, written
  type: str
found:
  description: Whether a ledger exists.
  returned: read, written
  type: bool
held:
  description: Whether this run holds the lock.
  returned: locked
  type: bool
"""
