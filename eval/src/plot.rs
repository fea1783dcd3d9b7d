//! PNG plots of the experiments, drawn with `plotters`' bitmap backend.
//!
//! * [`fig11_total_histogram`] — histogram of the total per-UE migration time
//!   (paper Fig. 11) with our p50 and the paper's 11.5 ms mean marked;
//! * [`fig12_context_histogram`] — histogram of the context moved per UE
//!   (paper Fig. 12) with the paper's 75 KB mean (and 100 KB max) marked;
//! * [`phases_boxplot_or_bars`] — p50 and p99 of every Table I phase as
//!   grouped bars;
//! * [`scale_plot`] — per-UE p50/p99 against the burst size (log axis) and,
//!   in a second panel, migrations per second.
//!
//! Every plot is [`WIDTH`] x [`HEIGHT`] pixels. Like the report, the run
//! plots use the runs whose migration completed. A paper reference that
//! lies far off our data's scale is not drawn as a line (that would squash
//! our histogram into one bar) but as an arrow with its value at the edge of
//! the plot.
//!
//! Text is rendered with the DejaVu Sans font bundled in `eval/assets`
//! (through plotters' `ab_glyph` feature), so plots look the same on every
//! machine and need no system fonts.

use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::{
    BYTES_PER_KB, PAPER_CONTEXT_MAX_KB, PAPER_CONTEXT_MEAN_KB, PAPER_TOTAL_MEAN_MS, RunRecord,
    ScaleSummary,
};
use crate::stats::{self, Summary};

/// Width of every plot, pixels.
pub const WIDTH: u32 = 900;
/// Height of every plot, pixels.
pub const HEIGHT: u32 = 600;

const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

const OURS: RGBColor = RGBColor(31, 119, 180);
const OURS_DARK: RGBColor = RGBColor(20, 70, 120);
const P99: RGBColor = RGBColor(255, 127, 14);
const PAPER: RGBColor = RGBColor(214, 39, 40);
const PAPER_LIGHT: RGBColor = RGBColor(230, 120, 120);
const RATE: RGBColor = RGBColor(44, 160, 44);
const GREY: RGBColor = RGBColor(90, 90, 90);

/// Errors of the plot functions.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Nothing to plot.
    #[error("nothing to plot: no {what}")]
    NoData { what: &'static str },
    /// The bundled font could not be loaded.
    #[error("the bundled font could not be loaded")]
    Font,
    #[error("cannot create the folder of {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Drawing or encoding the PNG failed.
    #[error("drawing {path} failed: {message}")]
    Draw {
        path: std::path::PathBuf,
        message: String,
    },
}

type Res<T> = Result<T, PlotError>;

fn ensure_font() -> Res<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok { Ok(()) } else { Err(PlotError::Font) }
}

/// Maps any plotters error to [`PlotError::Draw`] for `path`.
fn de<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> PlotError + '_ {
    move |e| PlotError::Draw {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Registers the font, creates the parent folder and opens a white canvas.
fn canvas(path: &Path) -> Res<DrawingArea<BitMapBackend<'_>, Shift>> {
    ensure_font()?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| PlotError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    }
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(de(path))?;
    Ok(root)
}

fn font(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().color(&BLACK)
}

/// The "nice" step (1, 2, 2.5 or 5 times a power of ten) nearest to `raw`
/// on a log scale.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .min_by(|a, b| {
            let da = (a / raw).ln().abs();
            let db = (b / raw).ln().abs();
            da.total_cmp(&db)
        })
        .unwrap_or(mag)
}

/// Equal-width bins on a nice grid.
#[derive(Debug, Clone, PartialEq)]
struct Bins {
    lo: f64,
    width: f64,
    counts: Vec<u32>,
}

impl Bins {
    /// Bins for finite `xs` (at least one): about `2 * cbrt(n)` bins (Rice
    /// rule, 5 to 30) of a nice width.
    fn of(xs: &[f64]) -> Bins {
        let (lo, hi) = (stats::min(xs).unwrap_or(0.0), stats::max(xs).unwrap_or(0.0));
        let n = xs.iter().filter(|x| x.is_finite()).count().max(1);
        let target = (2.0 * (n as f64).cbrt()).ceil().clamp(5.0, 30.0);
        let span = hi - lo;
        let width = if span > 0.0 {
            nice_step(span / target)
        } else {
            nice_step((lo.abs() / 20.0).max(1e-3))
        };
        let start = (lo / width).floor() * width;
        let nbins = (((hi - start) / width).floor() as usize + 1).clamp(1, 10_000);
        let mut counts = vec![0u32; nbins];
        for &x in xs.iter().filter(|x| x.is_finite()) {
            let i = (((x - start) / width).floor().max(0.0) as usize).min(nbins - 1);
            counts[i] += 1;
        }
        Bins {
            lo: start,
            width,
            counts,
        }
    }

    fn hi(&self) -> f64 {
        self.lo + self.width * self.counts.len() as f64
    }
}

/// A vertical reference line.
#[derive(Debug, Clone)]
struct Mark {
    x: f64,
    label: String,
    color: RGBColor,
    dashed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Side {
    Left,
    Right,
}

/// Widens `range` to hold the marks that lie within half its span of it;
/// returns the marks that stay off-scale, with their side.
fn place_marks(range: &mut Range<f64>, marks: &[Mark]) -> Vec<(Mark, Side)> {
    let span = (range.end - range.start).max(f64::MIN_POSITIVE);
    let (lo, hi) = (range.start - 0.5 * span, range.end + 0.5 * span);
    let mut off = Vec::new();
    let mut widened = range.clone();
    for m in marks {
        if m.x < lo {
            off.push((m.clone(), Side::Left));
        } else if m.x > hi {
            off.push((m.clone(), Side::Right));
        } else {
            widened.start = widened.start.min(m.x - 0.05 * span);
            widened.end = widened.end.max(m.x + 0.05 * span);
        }
    }
    *range = widened;
    off
}

/// Histogram with vertical marks; the common body of Fig. 11 and Fig. 12.
fn histogram(
    path: &Path,
    title: &str,
    x_desc: &str,
    unit: &str,
    xs: &[f64],
    marks: &[Mark],
    off_scale_note: &dyn Fn(&Mark) -> String,
) -> Res<()> {
    let bins = Bins::of(xs);
    let mut x_range = (bins.lo - bins.width).max(if bins.lo >= 0.0 { 0.0 } else { f64::MIN })
        ..bins.hi() + bins.width;
    let off = place_marks(&mut x_range, marks);
    let max_count = bins.counts.iter().copied().max().unwrap_or(1).max(1);
    let y_hi = (f64::from(max_count) * 1.45).ceil();

    let root = canvas(path)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, font(24))
        .margin(18)
        .x_label_area_size(58)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range.clone(), 0f64..y_hi)
        .map_err(de(path))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc(x_desc)
        .y_desc("runs")
        .axis_desc_style(font(19))
        .label_style(font(15))
        .max_light_lines(1)
        .x_label_formatter(&|v| trim_float(*v))
        // Counts are whole numbers: few runs must not give "0 0 1 1 2".
        .y_labels((y_hi as usize + 1).min(11))
        .y_label_formatter(&|v| integer_label(*v))
        .draw()
        .map_err(de(path))?;

    chart
        .draw_series(
            bins.counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(i, &c)| {
                    let x0 = bins.lo + bins.width * i as f64;
                    Rectangle::new(
                        [(x0, 0.0), (x0 + bins.width, f64::from(c))],
                        OURS.mix(0.75).filled(),
                    )
                }),
        )
        .map_err(de(path))?
        .label(format!(
            "our runs (n = {}, bins of {} {unit})",
            xs.len(),
            trim_float(bins.width)
        ))
        .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], OURS.mix(0.75).filled()));
    // Outline each bar so neighbouring bars stay distinguishable.
    chart
        .draw_series(
            bins.counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(i, &c)| {
                    let x0 = bins.lo + bins.width * i as f64;
                    Rectangle::new([(x0, 0.0), (x0 + bins.width, f64::from(c))], OURS_DARK)
                }),
        )
        .map_err(de(path))?;

    for m in marks {
        if off.iter().any(|(o, _)| o.label == m.label) {
            continue;
        }
        let pts = vec![(m.x, 0.0), (m.x, y_hi * 0.97)];
        let style = m.color.stroke_width(3);
        let color = m.color;
        let anno = if m.dashed {
            chart
                .draw_series(DashedLineSeries::new(pts, 10, 6, style))
                .map_err(de(path))?
        } else {
            chart
                .draw_series(LineSeries::new(pts, style))
                .map_err(de(path))?
        };
        anno.label(m.label.clone()).legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3))
        });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(GREY)
        .label_font(font(15))
        .margin(12)
        .draw()
        .map_err(de(path))?;

    // Off-scale references: an arrow at the edge with the value spelled out.
    let (px, py) = chart.plotting_area().get_pixel_range();
    for (k, (m, side)) in off.iter().enumerate() {
        let y = py.start + 40 + 62 * k as i32;
        let (tip, tail) = match side {
            Side::Right => (px.end - 6, px.end - 70),
            Side::Left => (px.start + 6, px.start + 70),
        };
        let head = match side {
            Side::Right => [(tip, y), (tip - 14, y - 8), (tip - 14, y + 8)],
            Side::Left => [(tip, y), (tip + 14, y - 8), (tip + 14, y + 8)],
        };
        root.draw(&PathElement::new(
            vec![(tail, y), (tip, y)],
            m.color.stroke_width(3),
        ))
        .map_err(de(path))?;
        root.draw(&Polygon::new(head.to_vec(), m.color.filled()))
            .map_err(de(path))?;
        let (hpos, tx) = match side {
            Side::Right => (HPos::Right, tail - 8),
            Side::Left => (HPos::Left, tail + 8),
        };
        let style = font(16).color(&m.color).pos(Pos::new(hpos, VPos::Center));
        root.draw(&Text::new(m.label.clone(), (tx, y), style.clone()))
            .map_err(de(path))?;
        let note = off_scale_note(m);
        let small = font(14).color(&GREY).pos(Pos::new(hpos, VPos::Center));
        root.draw(&Text::new(note, (tx, y + 20), small))
            .map_err(de(path))?;
    }
    root.present().map_err(de(path))?;
    Ok(())
}

/// `v` as a whole number, or nothing when it is not one.
fn integer_label(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        String::new()
    }
}

/// Short decimal form of an axis value or bin width (`0.05`, `2.5`, `10`).
fn trim_float(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

fn completed(runs: &[RunRecord]) -> impl Iterator<Item = &RunRecord> {
    runs.iter().filter(|r| r.completed())
}

fn finite(xs: impl Iterator<Item = f64>) -> Vec<f64> {
    xs.filter(|x| x.is_finite()).collect()
}

/// Histogram of the total per-UE migration time of the completed runs, in
/// ms (paper Fig. 11), with a line at our p50 and at the paper's 11.5 ms
/// mean — or, when 11.5 ms is far off our scale, an arrow at the right edge
/// saying so.
pub fn fig11_total_histogram(runs: &[RunRecord], path: &Path) -> Res<()> {
    let xs = finite(completed(runs).map(|r| r.phases.total_ms));
    if xs.is_empty() {
        return Err(PlotError::NoData {
            what: "completed runs with a finite total migration time",
        });
    }
    let s = Summary::of(&xs);
    let marks = [
        Mark {
            x: s.p50,
            label: format!("our p50 {:.3} ms (mean {:.3})", s.p50, s.mean),
            color: OURS_DARK,
            dashed: false,
        },
        Mark {
            x: PAPER_TOTAL_MEAN_MS,
            label: format!("paper mean {PAPER_TOTAL_MEAN_MS} ms"),
            color: PAPER,
            dashed: true,
        },
    ];
    let p50 = s.p50;
    histogram(
        path,
        &format!(
            "Total migration time per UE (cf. paper Fig. 11), {} runs",
            xs.len()
        ),
        "total migration time (ms)",
        "ms",
        &xs,
        &marks,
        &|m| off_scale_ratio(m.x, p50, "our p50"),
    )
}

fn off_scale_ratio(reference: f64, ours: f64, what: &str) -> String {
    if ours > 0.0 && reference > 0.0 {
        let r = reference / ours;
        if r >= 1.0 {
            format!("off scale: {r:.1}x {what}")
        } else {
            format!("off scale: {:.1}x below {what}", 1.0 / r)
        }
    } else {
        "off scale".to_string()
    }
}

/// Histogram of the context moved per UE (app context + socket images) of
/// the completed runs, in KB (1 KB = 1000 bytes; paper Fig. 12), with our
/// mean and the paper's 75 KB mean and 100 KB maximum marked.
pub fn fig12_context_histogram(runs: &[RunRecord], path: &Path) -> Res<()> {
    let xs = finite(completed(runs).map(|r| r.context_bytes as f64 / BYTES_PER_KB));
    if xs.is_empty() {
        return Err(PlotError::NoData {
            what: "completed runs to take context sizes from",
        });
    }
    let s = Summary::of(&xs);
    let marks = [
        Mark {
            x: s.mean,
            label: format!("our mean {:.1} KB (max {:.1})", s.mean, s.max),
            color: OURS_DARK,
            dashed: false,
        },
        Mark {
            x: PAPER_CONTEXT_MEAN_KB,
            label: format!("paper mean {PAPER_CONTEXT_MEAN_KB} KB"),
            color: PAPER,
            dashed: true,
        },
        Mark {
            x: PAPER_CONTEXT_MAX_KB,
            label: format!("paper max {PAPER_CONTEXT_MAX_KB} KB"),
            color: PAPER_LIGHT,
            dashed: true,
        },
    ];
    let mean = s.mean;
    histogram(
        path,
        &format!("Context size per UE (cf. paper Fig. 12), {} runs", xs.len()),
        "context moved per UE: app context + socket images (KB, 1 KB = 1000 B)",
        "KB",
        &xs,
        &marks,
        &|m| off_scale_ratio(m.x, mean, "our mean"),
    )
}

/// p50 and p99 of every Table I phase over the completed runs, as grouped
/// bars (ms) with their values printed above them.
pub fn phases_boxplot_or_bars(runs: &[RunRecord], path: &Path) -> Res<()> {
    let done: Vec<&RunRecord> = completed(runs).collect();
    let phase_values: [(&str, Vec<f64>); 5] = [
        (
            "MIH HO commit",
            finite(done.iter().map(|r| r.phases.mih_commit_ms)),
        ),
        (
            "application data",
            finite(done.iter().map(|r| r.phases.app_data_ms)),
        ),
        (
            "sockets data",
            finite(done.iter().map(|r| r.phases.socket_data_ms)),
        ),
        (
            "CXTP transaction",
            finite(done.iter().map(|r| r.phases.cxtp_ms)),
        ),
        ("total", finite(done.iter().map(|r| r.phases.total_ms))),
    ];
    if phase_values.iter().all(|(_, v)| v.is_empty()) {
        return Err(PlotError::NoData {
            what: "completed runs with phase timings",
        });
    }
    let sums: Vec<(&str, Summary)> = phase_values
        .iter()
        .map(|(n, v)| (*n, Summary::of(v)))
        .collect();
    let top = sums
        .iter()
        .map(|(_, s)| s.p99.max(s.p50))
        .fold(0.0f64, f64::max);
    let y_hi = if top > 0.0 { top * 1.3 } else { 1.0 };
    let names: Vec<&str> = sums.iter().map(|(n, _)| *n).collect();
    let n = names.len() as f64;

    let root = canvas(path)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Migration phases: p50 and p99 over {} completed runs",
                done.len()
            ),
            font(24),
        )
        .margin(18)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5f64..n - 0.5, 0f64..y_hi)
        .map_err(de(path))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(names.len())
        .max_light_lines(1)
        .y_desc("time (ms)")
        .axis_desc_style(font(19))
        .label_style(font(15))
        .x_label_formatter(&|v| {
            let i = v.round();
            if (v - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).copied().unwrap_or("").to_string()
            } else {
                String::new()
            }
        })
        .draw()
        .map_err(de(path))?;

    let w = 0.36;
    let series = [("p50", 0usize, OURS), ("p99", 1usize, P99)];
    for (label, slot, color) in series {
        let bars = sums
            .iter()
            .enumerate()
            .filter(|(_, (_, s))| s.n > 0)
            .map(move |(i, (_, s))| {
                let v = if slot == 0 { s.p50 } else { s.p99 };
                let x0 = i as f64 - w + w * slot as f64;
                Rectangle::new([(x0, 0.0), (x0 + w, v)], color.filled())
            });
        chart
            .draw_series(bars)
            .map_err(de(path))?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], color.filled()));
        let values =
            sums.iter()
                .enumerate()
                .filter(|(_, (_, s))| s.n > 0)
                .map(move |(i, (_, s))| {
                    let v = if slot == 0 { s.p50 } else { s.p99 };
                    let x = i as f64 - w + w * slot as f64 + w / 2.0;
                    Text::new(
                        format!("{v:.3}"),
                        (x, v + y_hi * 0.012),
                        font(13).pos(Pos::new(HPos::Center, VPos::Bottom)),
                    )
                });
        chart.draw_series(values).map_err(de(path))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(GREY)
        .label_font(font(15))
        .margin(12)
        .draw()
        .map_err(de(path))?;
    root.present().map_err(de(path))?;
    Ok(())
}

/// Log-scale x range around the burst sizes, padded by a factor of 1.5.
fn ues_range(ues: &[f64]) -> Range<f64> {
    let lo = ues.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ues.iter().copied().fold(0.0f64, f64::max);
    (lo / 1.5).max(0.5)..hi * 1.5
}

/// The scale experiment: per-UE total p50 and p99 (ms) against the number
/// of UEs in the burst (log axis) in the upper panel, migrations per second
/// in the lower panel. Burst sizes of 0 UEs are left out.
pub fn scale_plot(summaries: &[ScaleSummary], path: &Path) -> Res<()> {
    let pts: Vec<&ScaleSummary> = summaries
        .iter()
        .filter(|s| s.ues > 0 && s.migrated > 0)
        .collect();
    if pts.is_empty() {
        return Err(PlotError::NoData {
            what: "burst sizes with at least one migrated UE",
        });
    }
    let xs: Vec<f64> = pts.iter().map(|s| s.ues as f64).collect();
    let x_range = ues_range(&xs);
    let finite_or_zero = |v: f64| if v.is_finite() { v } else { 0.0 };
    let lat_top = pts
        .iter()
        .map(|s| finite_or_zero(s.total_ms_p99.max(s.total_ms_p50)))
        .fold(0.0f64, f64::max);
    let rate_top = pts
        .iter()
        .map(|s| finite_or_zero(s.migrations_per_s))
        .fold(0.0f64, f64::max);
    let lat_hi = if lat_top > 0.0 { lat_top * 1.25 } else { 1.0 };
    let rate_hi = if rate_top > 0.0 { rate_top * 1.25 } else { 1.0 };

    let root = canvas(path)?;
    let root_t = root
        .titled("Scale: handing over many UEs at once", font(24))
        .map_err(de(path))?;
    let (upper, lower) = root_t.split_vertically(HEIGHT as i32 * 52 / 100);

    let x_fmt = |v: &f64| format!("{v:.0}");
    let mut top = ChartBuilder::on(&upper)
        .margin(12)
        .margin_bottom(4)
        .x_label_area_size(34)
        .y_label_area_size(80)
        .build_cartesian_2d(x_range.clone().log_scale(), 0f64..lat_hi)
        .map_err(de(path))?;
    top.configure_mesh()
        .y_desc("per-UE total (ms)")
        .axis_desc_style(font(17))
        .label_style(font(14))
        .max_light_lines(1)
        .x_label_formatter(&x_fmt)
        .draw()
        .map_err(de(path))?;
    let series = [("p50", OURS, false), ("p99", P99, true)];
    for (name, color, is_p99) in series {
        let line: Vec<(f64, f64)> = pts
            .iter()
            .map(|s| {
                let v = if is_p99 {
                    s.total_ms_p99
                } else {
                    s.total_ms_p50
                };
                (s.ues as f64, finite_or_zero(v))
            })
            .collect();
        top.draw_series(LineSeries::new(line.clone(), color.stroke_width(3)))
            .map_err(de(path))?
            .label(format!("per-UE total {name}"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3))
            });
        top.draw_series(
            line.into_iter()
                .map(move |p| Circle::new(p, 5, color.filled())),
        )
        .map_err(de(path))?;
    }
    top.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(GREY)
        .label_font(font(14))
        .draw()
        .map_err(de(path))?;

    let mut bottom = ChartBuilder::on(&lower)
        .margin(12)
        .margin_top(4)
        .x_label_area_size(52)
        .y_label_area_size(80)
        .build_cartesian_2d(x_range.log_scale(), 0f64..rate_hi)
        .map_err(de(path))?;
    bottom
        .configure_mesh()
        .x_desc("UEs handed over in the burst (log scale)")
        .y_desc("migrations / s")
        .axis_desc_style(font(17))
        .label_style(font(14))
        .max_light_lines(1)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(de(path))?;
    let line: Vec<(f64, f64)> = pts
        .iter()
        .map(|s| (s.ues as f64, finite_or_zero(s.migrations_per_s)))
        .collect();
    bottom
        .draw_series(LineSeries::new(line.clone(), RATE.stroke_width(3)))
        .map_err(de(path))?
        .label("completed migrations per second")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RATE.stroke_width(3)));
    bottom
        .draw_series(line.into_iter().map(|p| Circle::new(p, 5, RATE.filled())))
        .map_err(de(path))?;
    bottom
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(GREY)
        .label_font(font(14))
        .draw()
        .map_err(de(path))?;
    root.present().map_err(de(path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_axis_labels_only_whole_numbers() {
        assert_eq!(integer_label(2.0), "2");
        assert_eq!(integer_label(0.0), "0");
        assert_eq!(integer_label(1.5), "");
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(0.054), 0.05);
        assert_eq!(nice_step(0.08), 0.1);
        assert_eq!(nice_step(0.13), 0.1);
        assert_eq!(nice_step(0.16), 0.2);
        assert_eq!(nice_step(2.3), 2.5);
        assert_eq!(nice_step(4.0), 5.0);
        assert_eq!(nice_step(10.0), 10.0);
        assert_eq!(nice_step(1e-7), 1e-7);
        assert_eq!(nice_step(0.0), 1.0);
        assert_eq!(nice_step(f64::NAN), 1.0);
    }

    #[test]
    fn bins_hold_every_value() {
        let xs: Vec<f64> = (0..50).map(|i| 0.5 + 0.013 * i as f64).collect();
        let b = Bins::of(&xs);
        assert_eq!(b.counts.iter().sum::<u32>(), 50);
        assert!(b.lo <= 0.5 && b.hi() > xs[49]);
        assert!((5..=30).contains(&b.counts.len()), "{b:?}");
        let one = Bins::of(&[3.0, 3.0]);
        assert_eq!(one.counts, vec![2]);
        let zero = Bins::of(&[0.0]);
        assert_eq!(zero.counts, vec![1]);
    }

    #[test]
    fn far_references_stay_off_scale_and_near_ones_widen_it() {
        let mark = |x: f64| Mark {
            x,
            label: format!("{x}"),
            color: PAPER,
            dashed: true,
        };
        let mut r = 0.5..1.5;
        let off = place_marks(&mut r, &[mark(11.5), mark(0.9)]);
        assert_eq!(off.len(), 1);
        assert_eq!(off[0].1, Side::Right);
        assert_eq!(r, 0.5..1.5);
        let mut r = 6.0..11.0;
        assert!(place_marks(&mut r, &[mark(11.5)]).is_empty());
        assert!(r.end > 11.5);
        let mut r = 30.0..40.0;
        let off = place_marks(&mut r, &[mark(11.5)]);
        assert_eq!(off[0].1, Side::Left);
    }
}
