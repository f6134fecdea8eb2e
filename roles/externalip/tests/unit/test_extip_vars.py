from extip_vars import extip_host_values


class Lazy(dict):
    """Like Ansible's hostvars: a value is templated when read, and may fail."""

    def __getitem__(self, key):
        value = dict.__getitem__(self, key)
        if isinstance(value, Exception):
            raise value
        return value


def test_only_the_public_extip_variables():
    hv = Lazy(extip_iface="lo", extip__internal=1, ansible_host="h", other=2)
    assert extip_host_values(hv) == {"extip_iface": "lo"}


def test_a_value_that_cannot_be_read_differs_from_any_real_one():
    hv = Lazy(extip_iface=ValueError("undefined variable"))
    assert extip_host_values(hv) == {"extip_iface": "unreadable: undefined variable"}
