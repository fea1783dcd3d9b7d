//! Renders every plot from synthetic records and checks the PNG files:
//! they decode, have the documented size and are not one flat colour.
//!
//! Set `EDGEMOB_EVAL_PLOT_DIR` to keep the rendered files in that folder.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use edgemob_eval::plot::{
    self, HEIGHT, PlotError, WIDTH, fig11_total_histogram, fig12_context_histogram,
    phases_boxplot_or_bars, scale_plot,
};
use edgemob_eval::report::{RunRecord, ScaleSummary, synthetic};

/// Output folder: the one named by the environment, or a fresh temp dir.
fn out_dir() -> (PathBuf, Option<tempfile::TempDir>) {
    match std::env::var_os("EDGEMOB_EVAL_PLOT_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            std::fs::create_dir_all(&d).unwrap();
            (d, None)
        }
        None => {
            let t = tempfile::tempdir().unwrap();
            (t.path().to_path_buf(), Some(t))
        }
    }
}

/// Decodes `path` as RGB(A) PNG; returns (width, height, distinct colours,
/// fraction of non-white pixels).
fn inspect(path: &Path) -> (u32, u32, usize, f64) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let px = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected colour type {other:?}"),
    };
    let data = &buf[..info.buffer_size()];
    let mut colours = HashSet::new();
    let mut non_white = 0usize;
    for p in data.chunks_exact(px) {
        colours.insert((p[0], p[1], p[2]));
        if (p[0], p[1], p[2]) != (255, 255, 255) {
            non_white += 1;
        }
    }
    let total = (info.width * info.height) as f64;
    (
        info.width,
        info.height,
        colours.len(),
        non_white as f64 / total,
    )
}

fn assert_good_png(path: &Path) {
    let (w, h, colours, ink) = inspect(path);
    assert_eq!((w, h), (WIDTH, HEIGHT), "{}", path.display());
    assert!(colours > 10, "{}: only {colours} colours", path.display());
    assert!(
        ink > 0.01 && ink < 0.9,
        "{}: {:.3} of the pixels are drawn",
        path.display(),
        ink
    );
}

/// Counts pixels close to `rgb` in the right-most 15% of the image.
fn pixels_near_right_edge(path: &Path, rgb: (u8, u8, u8)) -> usize {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let px = if info.color_type == png::ColorType::Rgba {
        4
    } else {
        3
    };
    let w = info.width as usize;
    buf[..info.buffer_size()]
        .chunks_exact(px)
        .enumerate()
        .filter(|(i, p)| {
            i % w > w * 85 / 100
                && (p[0] as i32 - rgb.0 as i32).abs() < 8
                && (p[1] as i32 - rgb.1 as i32).abs() < 8
                && (p[2] as i32 - rgb.2 as i32).abs() < 8
        })
        .count()
}

#[test]
fn every_plot_renders_to_a_readable_png() {
    let (dir, _keep) = out_dir();
    let runs = synthetic::runs(50);
    let p = dir.join("fig11_total.png");
    fig11_total_histogram(&runs, &p).unwrap();
    assert_good_png(&p);
    // 11.5 ms is far off a sub-2 ms scale: the paper's red arrow sits at the
    // right edge.
    assert!(pixels_near_right_edge(&p, (214, 39, 40)) > 50);

    let p = dir.join("fig12_context.png");
    fig12_context_histogram(&runs, &p).unwrap();
    assert_good_png(&p);

    let p = dir.join("phases.png");
    phases_boxplot_or_bars(&runs, &p).unwrap();
    assert_good_png(&p);

    let p = dir.join("scale.png");
    scale_plot(&ScaleSummary::from_records(&synthetic::scale_records()), &p).unwrap();
    assert_good_png(&p);
}

#[test]
fn a_total_near_the_paper_puts_its_line_on_scale() {
    let (dir, _keep) = out_dir();
    let mut runs = synthetic::runs(50);
    for r in &mut runs {
        r.phases.total_ms *= 10.0; // about 6 to 11 ms
    }
    let p = dir.join("fig11_total_near_paper.png");
    fig11_total_histogram(&runs, &p).unwrap();
    assert_good_png(&p);
}

#[test]
fn single_value_and_odd_inputs_do_not_panic() {
    let (dir, _keep) = out_dir();
    let mut runs = synthetic::runs(1);
    runs[0].phases.app_data_ms = f64::NAN;
    runs[0].context_bytes = 0;
    fig11_total_histogram(&runs, &dir.join("one_total.png")).unwrap();
    fig12_context_histogram(&runs, &dir.join("one_ctx.png")).unwrap();
    phases_boxplot_or_bars(&runs, &dir.join("one_phases.png")).unwrap();
    assert_good_png(&dir.join("one_total.png"));

    let one = ScaleSummary::from_records(&synthetic::scale_records()[..1]);
    scale_plot(&one, &dir.join("one_scale.png")).unwrap();
    assert_good_png(&dir.join("one_scale.png"));
}

#[test]
fn empty_input_is_a_clear_error() {
    let (dir, _keep) = out_dir();
    let p = dir.join("never.png");
    let cases = [
        fig11_total_histogram(&[], &p),
        fig12_context_histogram(&[], &p),
        phases_boxplot_or_bars(&[], &p),
        scale_plot(&[], &p),
    ];
    for r in cases {
        let err = r.unwrap_err();
        assert!(matches!(err, PlotError::NoData { .. }), "{err:?}");
        assert!(err.to_string().starts_with("nothing to plot"), "{err}");
    }
    assert!(!p.exists());

    // Only failed or non-finite runs: still nothing to plot.
    let failed = RunRecord {
        outcome: "rolled back".into(),
        ..RunRecord::default()
    };
    let mut nan = synthetic::runs(1).remove(0);
    nan.phases.total_ms = f64::INFINITY;
    assert!(matches!(
        fig11_total_histogram(&[failed.clone(), nan], &p),
        Err(PlotError::NoData { .. })
    ));
    assert!(matches!(
        fig12_context_histogram(&[failed], &p),
        Err(PlotError::NoData { .. })
    ));
}

#[test]
fn an_unwritable_target_is_an_error_not_a_panic() {
    let (dir, _keep) = out_dir();
    let file = dir.join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let err =
        plot::fig11_total_histogram(&synthetic::runs(5), &file.join("sub/x.png")).unwrap_err();
    assert!(matches!(err, PlotError::Io { .. }), "{err:?}");
}
