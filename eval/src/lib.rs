//! Reproducible edgemob experiments and their reports.
//!
//! The experiments reproduce, and aim to beat, the evaluation of Assasa,
//! Yadhav and Westberg, "Service Mobility in Mobile Networks" (IEEE CLOUD
//! 2015): the per-phase migration times of their Table I, the histogram of
//! total migration time (Fig. 11) and of context size (Fig. 12), plus a scale
//! experiment that hands many UEs over at once.
//!
//! This crate has two halves:
//!
//! * the **experiment runners**, which build the network-namespace topology,
//!   start agents and services, fire handovers and measure each run into a
//!   [`report::RunRecord`] or [`report::ScaleRecord`];
//! * the **reporting** half, pure and deterministic, which turns those
//!   records into numbers and files:
//!   * [`stats`] — mean, sample std, nearest-rank percentiles;
//!   * [`report`] — the record types, [`report::DemoReport`] (`report.json`),
//!     [`report::ScaleSummary`] (`scale.json`, `scale.csv`) and `runs.csv`;
//!   * [`table`] — the paper's Table I and the scale table as plain text;
//!   * [`plot`] — Fig. 11, Fig. 12, per-phase bars and the scale plot as PNG.
//!
//! Of the paper's numbers only the total migration time (11.5 ms mean) and
//! the context sizes (75 KB mean, 100 KB max) are known; the per-phase
//! figures are not, and the tables print `n/a` for them.

pub mod plot;
pub mod reclaim;
pub mod report;
pub mod stats;
pub mod table;

// ---- experiment runners (network namespaces, agents, services, curl) ----
pub mod cli;
pub mod cluster;
pub mod contention;
pub mod demo;
pub mod floor;
pub mod ns3;
pub mod roam;
pub mod scale;
pub mod steal;
