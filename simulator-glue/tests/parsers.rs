//! Trace and scenario parsing never panic, whatever the text.

use std::path::Path;

use edgemob_simulator_glue::scenario::Scenario;
use edgemob_simulator_glue::trace::{TraceRecord, parse_jsonl, to_jsonl};
use proptest::prelude::*;

fn record() -> impl Strategy<Value = TraceRecord> {
    (
        any::<u64>(),
        0usize..9,
        any::<u64>(),
        any::<u16>(),
        1u32..10,
        1u32..10,
        any::<Option<u16>>(),
    )
        .prop_map(|(time_us, k, imsi, rnti, s, t, target_rnti)| TraceRecord {
            time_us,
            kind: edgemob_simulator_glue::EventKind::ALL[k],
            imsi,
            rnti,
            source_cell: s,
            target_cell: if s == t { t + 1 } else { t },
            target_rnti,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_trace_text_never_panics(text in ".{0,300}") {
        let _ = parse_jsonl(&text, Path::new("-"));
    }

    #[test]
    fn arbitrary_scenario_text_never_panics(text in ".{0,300}") {
        if let Ok(s) = Scenario::parse(&text, Path::new("s.toml")) {
            for cell in 0..5 {
                let _ = s.agent_for_cell(cell);
            }
            let _ = s.ue_identity(u64::MAX);
        }
    }

    #[test]
    fn traces_round_trip(records in proptest::collection::vec(record(), 0..20)) {
        prop_assert_eq!(parse_jsonl(&to_jsonl(&records), Path::new("-")).unwrap(), records);
    }
}

#[test]
fn scenario_templates_render_any_imsi() {
    let s = Scenario::parse(
        "ue_identity = \"ue-{imsi}-{imsi:032}\"\n[[enbcs]]\nname=\"a\"\napi=\"/a\"\ncells=[1]\n",
        Path::new("s.toml"),
    )
    .unwrap();
    let id = s.ue_identity(u64::MAX).unwrap();
    assert_eq!(id, format!("ue-{0}-{0:032}", u64::MAX));
}
