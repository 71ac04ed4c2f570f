//! Figures of `innfer eval --plot DIR`: SBC rank histograms and calibration curves (PNG, drawn
//! as the demo's figures are).

use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontStyle;

use innfer::metrics::{CALIBRATION_LEVELS, Ranks, calibration_level};

use crate::plot::{FONT, draw_err, png_figure};

const BAR_COLOUR: RGBColor = RGBColor(33, 113, 181);
const BAND_COLOUR: RGBColor = RGBColor(190, 190, 190);

/// Bins of the rank histograms.
pub const RANK_BINS: usize = 16;

/// `sbc_ranks.png`: per dimension, the histogram of SBC ranks (0..=S) in up to 16 bins over the
/// 99 % band of a uniform histogram (Binomial(N, 1/bins), normal approximation).
pub fn rank_histograms(path: &Path, ranks: &Ranks, task: &str) -> Result<(), String> {
    let s = ranks.samples_per_observation();
    let dims = ranks.dims().max(1);
    let cols = dims.min(5);
    let rows = dims.div_ceil(cols);
    let bins = RANK_BINS.min(s + 1);
    let n = ranks.observations();
    let p = 1.0 / bins as f64;
    let expect = n as f64 * p;
    let half = 2.576 * (n as f64 * p * (1.0 - p)).sqrt();
    let (w, h) = ((300 * cols as u32).max(820), 60 + 260 * rows as u32);
    png_figure(path, (w, h), |root| {
        let err = draw_err(path);
        let title = format!(
            "SBC ranks, {task}: {n} observations × {s} samples (grey: 99 % band if uniform)"
        );
        let root = root
            .titled(&title, (FONT, 17).into_font().style(FontStyle::Bold))
            .map_err(&err)?;
        for (d, area) in root.split_evenly((rows, cols)).iter().enumerate() {
            if d >= ranks.dims() {
                break;
            }
            let r = ranks.of_dim(d);
            let mut counts = vec![0usize; bins];
            for &k in r {
                counts[(k * bins / (s + 1)).min(bins - 1)] += 1;
            }
            let top = counts
                .iter()
                .map(|&c| c as f64)
                .fold(expect + half, f64::max)
                * 1.1;
            let mut chart = ChartBuilder::on(area)
                .caption(format!("x{d}"), (FONT, 16))
                .margin(8)
                .x_label_area_size(30)
                .y_label_area_size(40)
                .build_cartesian_2d(0.0..bins as f64, 0.0..top.max(1.0))
                .map_err(&err)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .light_line_style(WHITE)
                .x_desc("rank bin")
                .y_label_formatter(&|v| format!("{v:.0}"))
                .label_style((FONT, 12))
                .axis_desc_style((FONT, 13))
                .draw()
                .map_err(&err)?;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [
                        (0.0, (expect - half).max(0.0)),
                        (bins as f64, expect + half),
                    ],
                    BAND_COLOUR.mix(0.5).filled(),
                )))
                .map_err(&err)?;
            chart
                .draw_series(counts.iter().enumerate().map(|(i, &c)| {
                    Rectangle::new(
                        [(i as f64 + 0.05, 0.0), (i as f64 + 0.95, c as f64)],
                        BAR_COLOUR.mix(0.8).filled(),
                    )
                }))
                .map_err(&err)?;
        }
        Ok(())
    })
}

/// `calibration.png`: per dimension, the coverage of the central posterior interval against
/// its nominal level (calibrated: the diagonal), and the calibration error coverage − level.
pub fn calibration_curves(path: &Path, coverage: &[Vec<f64>], task: &str) -> Result<(), String> {
    png_figure(path, (1100, 520), |root| {
        let err = draw_err(path);
        let title = format!(
            "Marginal calibration, task {task}: central intervals of the posterior samples"
        );
        let root = root
            .titled(&title, (FONT, 18).into_font().style(FontStyle::Bold))
            .map_err(&err)?;
        let panels = root.split_evenly((1, 2));
        let levels: Vec<f64> = (0..CALIBRATION_LEVELS).map(calibration_level).collect();
        let worst = coverage
            .iter()
            .flat_map(|c| c.iter().zip(&levels).map(|(v, q)| (v - q).abs()))
            .fold(0.02, f64::max)
            * 1.15;
        for (k, area) in panels.iter().enumerate() {
            let (y_range, y_desc) = if k == 0 {
                (0.0..1.0, "coverage of x*")
            } else {
                (-worst..worst, "coverage − level")
            };
            let mut chart = ChartBuilder::on(area)
                .margin(12)
                .x_label_area_size(38)
                .y_label_area_size(55)
                .build_cartesian_2d(0.0..1.0, y_range)
                .map_err(&err)?;
            chart
                .configure_mesh()
                .x_desc("nominal level q")
                .y_desc(y_desc)
                .y_label_formatter(&|v| format!("{:.2}", if v.abs() < 1e-9 { 0.0 } else { *v }))
                .label_style((FONT, 13))
                .axis_desc_style((FONT, 15))
                .draw()
                .map_err(&err)?;
            let ideal = if k == 0 {
                vec![(0.0, 0.0), (1.0, 1.0)]
            } else {
                vec![(0.0, 0.0), (1.0, 0.0)]
            };
            chart
                .draw_series(LineSeries::new(ideal, BLACK.stroke_width(1)))
                .map_err(&err)?
                .label("calibrated")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLACK));
            for (d, c) in coverage.iter().enumerate() {
                let colour = Palette99::pick(d).to_rgba();
                let points = levels.iter().zip(c).map(|(&q, &v)| {
                    let y = if k == 0 { v } else { v - q };
                    (q, y)
                });
                chart
                    .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                    .map_err(&err)?
                    .label(format!("x{d}"))
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .label_font((FONT, 13))
                .background_style(WHITE.mix(0.8))
                .border_style(RGBColor(200, 200, 200))
                .draw()
                .map_err(&err)?;
        }
        Ok(())
    })
}
