from extip_timing import extip_timing_errors


def test_sound_timings_pass():
    assert extip_timing_errors("2s", "10s", "15s") == []


def test_a_monitor_period_not_longer_than_the_heartbeat_is_refused():
    errors = extip_timing_errors("10s", "5s", "15s")
    assert len(errors) == 1 and errors[0].startswith("extip_sched_monitor (5s) must be longer than extip_ctrl_hb (10s)")


def test_a_lease_under_a_second_is_refused():
    assert extip_timing_errors("1s", "1m", "500ms") == [
        "extip_sched_lease_duration (500ms) must be at least 1s: the Lease records whole seconds"]


def test_a_value_that_is_not_a_duration_is_left_to_its_own_rule():
    assert extip_timing_errors("soon", "10s", "15s") == []


def test_every_duration_of_the_shared_table_reads_as_go_reads_it(table):
    from extip_timing import _duration_ms

    for case in table("duration-cases.json"):
        got = _duration_ms(case["text"])
        assert (case["text"], None if got is None else round(got, 6)) == (case["text"], case["ms"])


def test_every_timing_case_of_the_shared_table(table):
    for case in table("timing-cases.json"):
        assert (case, extip_timing_errors(case["hb"], case["monitor"], case["lease"])) == (case, case["errors"])
