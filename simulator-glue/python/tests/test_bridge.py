"""The edgemob_ns3 bridge as an ns-3 script uses it, without ns-3."""

import json
import os

import pytest

import edgemob_ns3

SCENARIO = """
ue_identity = "imsi-{imsi:015}"
[[enbcs]]
name = "enbc1"
api = "enbc1.sock"
cells = [1, 3]
[[enbcs]]
name = "enbc2"
api = "enbc2.sock"
cells = [2]
"""


def read_trace(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_a_dry_run_records_every_event_and_sends_none(tmp_path):
    trace = tmp_path / "trace.jsonl"
    bridge = edgemob_ns3.Bridge(None, str(trace), dry_run=True)
    bridge.handover_start(0.3, 1, 1, 1, 2, True)
    bridge.handover_start(0.31, 2, 5, 1, 3, x2=False)
    bridge.handover_end_ok(0.318929, 1, 1, 2)
    bridge.handover_failure(0.5, "joining", 3, 7, 2)
    # Each record is on disk as soon as the call returns.
    assert len(read_trace(trace)) == 4
    stats = bridge.close()
    assert stats["dry_run"] is True
    assert (stats["events"], stats["x2_starts"], stats["intra_enb"], stats["end_ok"], stats["failures"]) == (4, 1, 1, 1, 1)
    assert stats["triggers_sent"] == 0
    records = read_trace(trace)
    assert records[0] == {
        "time_us": 300000, "kind": "handover_start", "imsi": 1, "rnti": 1,
        "source_cell": 1, "target_cell": 2,
    }
    assert records[1]["kind"] == "intra_enb_handover"
    # The end carries the source cell of its start; µs are truncated like ns-3's pcap.
    assert records[2] == {
        "time_us": 318929, "kind": "handover_end_ok", "imsi": 1, "rnti": 1,
        "source_cell": 1, "target_cell": 2,
    }
    assert records[3]["kind"] == "handover_failure_joining"
    assert records[3]["target_cell"] == 2
    with pytest.raises(RuntimeError):
        bridge.handover_start(1.0, 1, 1, 1, 2, True)
    assert bridge.close()["events"] == 4, "close() is idempotent"


def test_bad_input_is_refused_with_a_reason(tmp_path):
    trace = str(tmp_path / "t.jsonl")
    with pytest.raises(ValueError, match="scenario"):
        edgemob_ns3.Bridge(None, trace)
    bad = tmp_path / "bad.toml"
    bad.write_text("[[enbcs]]\nname = 'a'\napi = '/a'\ncells = [0]\n")
    with pytest.raises(ValueError, match=r"enbcs\[0\]\.cells"):
        edgemob_ns3.Bridge(str(bad), trace)
    with pytest.raises(OSError):
        edgemob_ns3.Bridge(None, str(tmp_path / "no" / "such" / "dir.jsonl"), dry_run=True)
    with edgemob_ns3.Bridge(None, trace, dry_run=True) as bridge:
        with pytest.raises(ValueError, match="to itself"):
            bridge.handover_start(0.1, 1, 1, 2, 2, True)
        with pytest.raises(ValueError):
            bridge.handover_start(-1.0, 1, 1, 1, 2, True)
        with pytest.raises(ValueError, match="cause"):
            bridge.handover_failure(0.1, "gremlins", 1, 1, 1)
        with pytest.raises(OverflowError):
            bridge.handover_start(0.1, 1, 70000, 1, 2, True)


def test_unreachable_agents_count_as_errors_without_blocking(tmp_path):
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(SCENARIO)
    assert edgemob_ns3.check_scenario(str(scenario)) == [1, 2, 3]
    results = tmp_path / "results.jsonl"
    bridge = edgemob_ns3.Bridge(
        str(scenario), str(tmp_path / "t.jsonl"), results_path=str(results), migration_timeout_s=2.0
    )
    # No agent listens on the sockets: the calls fail in the background.
    bridge.handover_start(0.3, 1, 1, 1, 2, True)
    # Both cells on enbc1: recorded, not sent as a migration.
    bridge.handover_start(0.4, 2, 1, 1, 3, True)
    stats = bridge.close(timeout_s=10.0)
    assert stats["triggers_sent"] == 1
    assert stats["errors"] == 1
    assert stats["migrations_completed"] == 0
    kinds = sorted((r["type"], r["outcome"]) for r in bridge.results())
    assert kinds == [("migration", "error"), ("migration", "skipped")]
    assert os.path.exists(results)
