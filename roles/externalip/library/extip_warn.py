#!/usr/bin/python
# -*- coding: utf-8 -*-
"""The documentation of the extip_warn action plugin (action_plugins/extip_warn.py), for
ansible-doc; the plugin does the work and never runs this file."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: extip_warn
short_description: Report a message as an Ansible warning, changing nothing
version_added: "0.2.0"
description:
  - What a run could not do, or decided on its own (a lock taken over, objects left behind), shown
    in Ansible's output; C(extip) lists these warnings after the run.
options:
  msg:
    description: The warning; an empty one warns of nothing.
    type: str
    required: true
author: extip
"""

EXAMPLES = r"""
- name: Say that Calico is left alone
  extip_warn:
    msg: No Calico found; the routes to the external IPs are left to you.
"""

RETURN = r"""
msg:
  description: The warning, trimmed.
  returned: always
  type: str
"""
