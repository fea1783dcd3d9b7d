//! Synthetic many-UE traces, for scale experiments without ns-3.
//!
//! The cells form a ring (cell `c`'s neighbours are `c - 1` and `c + 1`,
//! wrapping), like eNBs along a road loop. UE `u` (IMSI `first_imsi + u`)
//! starts in cell `1 + u mod cells` and makes `handovers_per_ue` X2
//! handovers to a neighbour, keeping its direction with probability 0.8,
//! at times spread over `(0, duration]`: the handover slots of a UE are
//! evenly spaced with ±30 % jitter, so one UE's handovers never come closer
//! than 40 % of `duration / handovers_per_ue`. Each `handover_start` is
//! followed by its `handover_end_ok` 15–40 ms later (what LENA shows
//! between the HO Request ACK and the Path Switch ACK). RNTIs are handed
//! out per cell from 1 upwards, as ns-3 does. The same seed gives the same
//! trace.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::trace::{EventKind, TraceRecord};

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    /// Number of UEs.
    pub ues: u32,
    /// Number of cells (one per eNBC): 1..=cells.
    pub cells: u32,
    /// Handovers of each UE.
    pub handovers_per_ue: u32,
    /// Span of the trace, s.
    pub duration_s: f64,
    /// IMSI of the first UE.
    pub first_imsi: u64,
    /// Random seed.
    pub seed: u64,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            ues: 100,
            cells: 4,
            handovers_per_ue: 3,
            duration_s: 60.0,
            first_imsi: 1,
            seed: 1,
        }
    }
}

/// Options that cannot make a trace.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SynthError {
    /// Explained in the message.
    #[error("{0}")]
    Invalid(String),
}

/// Generates the trace, sorted by time.
pub fn generate(opts: &SynthOptions) -> Result<Vec<TraceRecord>, SynthError> {
    let bad = |m: &str| Err(SynthError::Invalid(m.into()));
    if opts.ues == 0 {
        return bad("--ues must be at least 1");
    }
    if opts.cells < 2 {
        return bad("--enbcs must be at least 2: a handover needs a second cell");
    }
    if !opts.duration_s.is_finite() || opts.duration_s <= 0.0 {
        return bad("--duration must be a positive number of seconds");
    }
    let slot_s = opts.duration_s / f64::from(opts.handovers_per_ue.max(1));
    if opts.handovers_per_ue > 0 && slot_s < 0.1 {
        return bad("handovers too dense: --duration / --handovers-per-ue must be at least 0.1 s");
    }
    if opts.first_imsi.checked_add(u64::from(opts.ues)).is_none() {
        return bad("--first-imsi too large");
    }
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut next_rnti = vec![1u16; opts.cells as usize + 1];
    let mut alloc = |cell: u32| {
        let slot = &mut next_rnti[cell as usize];
        let r = *slot;
        *slot = if *slot == u16::MAX { 1 } else { *slot + 1 };
        r
    };
    let mut records = Vec::new();
    for u in 0..opts.ues {
        let imsi = opts.first_imsi + u64::from(u);
        let mut cell = 1 + u % opts.cells;
        let mut rnti = alloc(cell);
        let mut forward = rng.random_bool(0.5);
        for k in 0..opts.handovers_per_ue {
            let centre = (f64::from(k) + 0.5) * slot_s;
            let jitter = rng.random_range(-0.3..=0.3) * slot_s;
            let t_s = (centre + jitter).clamp(0.001, opts.duration_s);
            if rng.random_bool(0.2) {
                forward = !forward;
            }
            let target = if forward {
                cell % opts.cells + 1
            } else {
                (cell + opts.cells - 2) % opts.cells + 1
            };
            let target_rnti = alloc(target);
            let start_us = (t_s * 1e6).round() as u64;
            let end_us = start_us + rng.random_range(15_000..=40_000);
            records.push(TraceRecord {
                time_us: start_us,
                kind: EventKind::HandoverStart,
                imsi,
                rnti,
                source_cell: cell,
                target_cell: target,
                target_rnti: Some(target_rnti),
            });
            records.push(TraceRecord {
                time_us: end_us,
                kind: EventKind::HandoverEndOk,
                imsi,
                rnti: target_rnti,
                source_cell: cell,
                target_cell: target,
                target_rnti: None,
            });
            cell = target;
            rnti = target_rnti;
        }
    }
    Ok(crate::trace::sorted(records))
}

/// A scenario for a synthetic trace: `enbcN` serves cell N, its agent's
/// socket is `<api_dir>/enbcN.sock`, UEs are known as `imsi-<15 digits>`.
pub fn scenario_toml(cells: u32, api_dir: &str) -> String {
    let mut out = String::from(
        "# Scenario for a synthetic trace (edgemob-lab trace synth).\n\
         # UE identity: what the services registered each UE under.\n\
         ue_identity = \"imsi-{imsi:015}\"\n",
    );
    for c in 1..=cells {
        out.push_str(&format!(
            "\n[[enbcs]]\nname = \"enbc{c}\"\napi = \"{}/enbc{c}.sock\"\ncells = [{c}]\n",
            api_dir.trim_end_matches('/')
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn a_hundred_ues_over_four_cells_move_between_neighbours() {
        let opts = SynthOptions::default();
        let trace = generate(&opts).unwrap();
        assert_eq!(trace.len(), 100 * 3 * 2);
        assert!(trace.windows(2).all(|w| w[0].time_us <= w[1].time_us));
        let mut at: HashMap<u64, u32> = HashMap::new();
        let mut last_start: HashMap<u64, u64> = HashMap::new();
        for r in &trace {
            r.validate().unwrap();
            assert!((1..=4).contains(&r.source_cell) && (1..=4).contains(&r.target_cell));
            let d = r.source_cell.abs_diff(r.target_cell);
            assert!(d == 1 || d == 3, "neighbours on the ring: {r:?}");
            if r.kind == EventKind::HandoverStart {
                let here = at.entry(r.imsi).or_insert(r.source_cell);
                assert_eq!(*here, r.source_cell, "a UE leaves the cell it is in");
                *here = r.target_cell;
                if let Some(prev) = last_start.insert(r.imsi, r.time_us) {
                    assert!(r.time_us - prev >= 8_000_000, "slots are 20 s ± 30 %");
                }
            }
        }
        assert_eq!(at.len(), 100);
        assert!(trace.iter().all(|r| r.time_us <= 60_040_000));
        assert_eq!(generate(&opts).unwrap(), trace, "same seed, same trace");
    }

    #[test]
    fn rejects_impossible_options() {
        let bad = |o: SynthOptions| generate(&o).unwrap_err().to_string();
        assert!(
            bad(SynthOptions {
                cells: 1,
                ..Default::default()
            })
            .contains("enbcs")
        );
        assert!(
            bad(SynthOptions {
                ues: 0,
                ..Default::default()
            })
            .contains("ues")
        );
        assert!(
            bad(SynthOptions {
                duration_s: f64::NAN,
                ..Default::default()
            })
            .contains("duration")
        );
        assert!(
            bad(SynthOptions {
                handovers_per_ue: 1000,
                duration_s: 1.0,
                ..Default::default()
            })
            .contains("dense")
        );
    }

    #[test]
    fn scenario_template_parses_and_maps_every_cell() {
        let text = scenario_toml(4, "/run/edgemob/");
        let s = crate::scenario::Scenario::parse(&text, std::path::Path::new("s.toml")).unwrap();
        assert_eq!(s.cells(), vec![1, 2, 3, 4]);
        assert_eq!(
            s.agent_for_cell(3).unwrap(),
            std::path::Path::new("/run/edgemob/enbc3.sock")
        );
        assert_eq!(s.ue_identity(7).unwrap(), "imsi-000000000000007");
    }
}
