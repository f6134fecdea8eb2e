"""The extip_* variables a host carries of its own: what validation compares between hosts."""


def extip_host_values(hostvars):
    """The extip_* variables (not the role's internal extip__*) that this host's
    inventory, group_vars and extra vars set, name -> value: what can make one
    host's variables differ from another's. A value that cannot be read is
    given as the text of the error, so that it differs from any real value."""
    out = {}
    for name in sorted(hostvars or {}):
        if not str(name).startswith("extip_") or str(name).startswith("extip__"):
            continue
        try:
            out[name] = hostvars[name]
        except Exception as err:  # noqa: BLE001 - any templating error makes the host differ
            out[name] = "unreadable: %s" % err
    return out


class FilterModule:
    """The extip_* variables a host carries of its own."""

    def filters(self):
        return {"extip_host_values": extip_host_values}
