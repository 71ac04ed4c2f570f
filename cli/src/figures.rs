//! PNG figures of `innfer demo`, drawn with plotters into an RGB buffer and encoded with `png`.
//!
//! Text uses DejaVu Sans embedded in the binary (plotters' `ab_glyph` feature), so the figures
//! look the same on a machine without any system fonts.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::demo::{GMM8_CENTRES, GMM8_SOME_LABELS, GMM8_STD, LabelSummary};

/// Font family name the figures use (registered once with the embedded font).
pub(crate) const FONT: &str = "sans-serif";

/// Shading of the true posterior density: the 1σ, 2σ, 3σ regions of each mode (where the
/// density relative to a mode's peak exceeds exp(−k²/2)), darkest inside.
const BAND_LEVELS: [f64; 3] = [0.606_530_66, 0.135_335_28, 0.011_108_997];
const BAND_COLOURS: [RGBColor; 3] = [
    RGBColor(66, 146, 198),
    RGBColor(158, 202, 225),
    RGBColor(222, 235, 247),
];
/// The same regions' outlines, drawn over the samples.
const CONTOUR_COLOUR: RGBColor = RGBColor(8, 48, 107);
const SAMPLE_COLOUR: RGBColor = RGBColor(203, 24, 29);
pub(crate) const PRIOR_COLOUR: RGBColor = RGBColor(150, 150, 150);
pub(crate) const POSTERIOR_COLOUR: RGBColor = RGBColor(33, 113, 181);
pub(crate) const TRUTH_COLOUR: RGBColor = RGBColor(203, 24, 29);

/// Registers the embedded font (once per process).
fn fonts() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let bad = |_| "the embedded DejaVu Sans font cannot be read".to_string();
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .map_err(bad)?;
        plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).map_err(bad)
    })
    .clone()
}

/// Any plotters error as a message about `path`.
pub(crate) fn draw_err<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> String + '_ {
    move |e| format!("drawing {}: {e}", path.display())
}

/// Draws with `draw` on a white `w`×`h` canvas and writes it to `path` as an 8-bit RGB PNG.
pub(crate) fn png_figure(
    path: &Path,
    (w, h): (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>) -> Result<(), String>,
) -> Result<(), String> {
    fonts()?;
    let mut rgb = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err(path))?;
        draw(&root)?;
        root.present().map_err(draw_err(path))?;
    }
    let fail = |e: &dyn std::fmt::Display| format!("writing {}: {e}", path.display());
    let file = File::create(path).map_err(|e| fail(&e))?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| fail(&e))?;
    writer.write_image_data(&rgb).map_err(|e| fail(&e))?;
    writer.finish().map_err(|e| fail(&e))
}

/// The modes carrying `label` under the `some` labelling.
pub fn modes_of(label: usize) -> Vec<usize> {
    (0..8).filter(|&m| GMM8_SOME_LABELS[m] == label).collect()
}

/// Density of the true posterior p(x | label) relative to one mode's peak: the mixture's
/// Gaussians summed (each ≤ 1 at its centre; the modes are far apart, so the max is ≈ 1).
fn relative_density(modes: &[usize], x: f64, y: f64) -> f64 {
    let s2 = 2.0 * (GMM8_STD as f64).powi(2);
    modes
        .iter()
        .map(|&m| {
            let (cx, cy) = GMM8_CENTRES[m];
            let r2 = (x - cx as f64).powi(2) + (y - cy as f64).powi(2);
            (-r2 / s2).exp()
        })
        .sum()
}

/// A closed polygon approximating the circle of `k` standard deviations around `centre`.
fn circle(centre: (f32, f32), k: f64) -> Vec<(f64, f64)> {
    let r = k * GMM8_STD as f64;
    (0..=64)
        .map(|i| {
            let t = i as f64 / 64.0 * std::f64::consts::TAU;
            (centre.0 as f64 + r * t.cos(), centre.1 as f64 + r * t.sin())
        })
        .collect()
}

fn mode_list(modes: &[usize]) -> String {
    let names: Vec<String> = modes.iter().map(|m| m.to_string()).collect();
    if modes.len() == 1 {
        format!("mode {}", names[0])
    } else {
        format!("modes {}", names.join(", "))
    }
}

/// `gmm8_posteriors.png`: one panel per label, the samples over the true posterior density.
pub fn posteriors(path: &Path, summaries: &[LabelSummary]) -> Result<(), String> {
    const PANEL: u32 = 440;
    let (w, h) = (PANEL * summaries.len().max(1) as u32, 492);
    png_figure(path, (w, h), |root| {
        let title = format!(
            "Posterior samples of the shipped cINN (red, {} per label) over the true posterior p(x | label) (blue: its 1σ, 2σ, 3σ regions; grey: the other labels' modes)",
            summaries.first().map_or(0, |s| s.samples.len() / 2)
        );
        let root = root
            .titled(&title, (FONT, 19).into_font().style(FontStyle::Bold))
            .map_err(draw_err(path))?;
        let panels = root.split_evenly((1, summaries.len().max(1)));
        for (area, s) in panels.iter().zip(summaries) {
            posterior_panel(path, area, s)?;
        }
        Ok(())
    })
}

fn posterior_panel(
    path: &Path,
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    s: &LabelSummary,
) -> Result<(), String> {
    let err = draw_err(path);
    let modes = modes_of(s.label);
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("label {} ({})", s.label, mode_list(&modes)),
            (FONT, 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(44)
        .build_cartesian_2d(-4.0f64..4.0, -4.0f64..4.0)
        .map_err(&err)?;

    // True density as filled bands, on a grid finer than the pixels' worth of a mode's σ.
    const GRID: usize = 200;
    let cell = 8.0 / GRID as f64;
    let mut cells = Vec::new();
    for i in 0..GRID {
        for j in 0..GRID {
            let (x, y) = (
                -4.0 + (i as f64 + 0.5) * cell,
                -4.0 + (j as f64 + 0.5) * cell,
            );
            let d = relative_density(&modes, x, y);
            if let Some(band) = BAND_LEVELS.iter().position(|&l| d >= l) {
                let (x0, y0) = (-4.0 + i as f64 * cell, -4.0 + j as f64 * cell);
                cells.push(Rectangle::new(
                    [(x0, y0), (x0 + cell, y0 + cell)],
                    BAND_COLOURS[band].filled(),
                ));
            }
        }
    }
    chart.draw_series(cells).map_err(&err)?;

    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(9)
        .y_labels(9)
        .x_desc("x0")
        .y_desc("x1")
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .draw()
        .map_err(&err)?;

    // The other labels' modes, as grey 3σ circles, for orientation.
    for m in (0..8).filter(|m| !modes.contains(m)) {
        chart
            .draw_series(LineSeries::new(
                circle(GMM8_CENTRES[m], 3.0),
                RGBColor(190, 190, 190),
            ))
            .map_err(&err)?;
    }

    chart
        .draw_series(s.samples.chunks_exact(2).map(|p| {
            Circle::new(
                (p[0] as f64, p[1] as f64),
                1,
                SAMPLE_COLOUR.mix(0.3).filled(),
            )
        }))
        .map_err(&err)?;

    // Outlines of the true regions over the samples, so that both stay visible.
    for &m in &modes {
        for k in [1.0, 2.0, 3.0] {
            chart
                .draw_series(LineSeries::new(
                    circle(GMM8_CENTRES[m], k),
                    CONTOUR_COLOUR.mix(0.8),
                ))
                .map_err(&err)?;
        }
    }

    let (found, expected) = s.found_modes();
    let note = format!(
        "found {found} of {expected} modes; {:.1}% outside 3σ",
        100.0 * s.off_mode
    );
    chart
        .plotting_area()
        .draw(&Text::new(note, (-3.85, 3.9), (FONT, 14)))
        .map_err(&err)?;
    Ok(())
}

/// A density histogram of `values` over [lo, hi) in `bins` bins (values outside are dropped
/// from the bars but still count in the normalisation).
pub(crate) fn histogram(
    values: impl Iterator<Item = f64>,
    lo: f64,
    hi: f64,
    bins: usize,
) -> Vec<f64> {
    let mut counts = vec![0usize; bins];
    let mut total = 0usize;
    let width = (hi - lo) / bins as f64;
    for v in values {
        total += 1;
        if v >= lo && v < hi {
            counts[(((v - lo) / width) as usize).min(bins - 1)] += 1;
        }
    }
    let norm = (total.max(1) as f64) * width;
    counts.iter().map(|&c| c as f64 / norm).collect()
}

/// `gmm8_marginals.png`: for x0 and x1, the posterior histogram for one label over the prior
/// histogram, with the exact posterior marginal and the label's mode centres marked.
pub fn marginals(path: &Path, summary: &LabelSummary, prior: &[f32]) -> Result<(), String> {
    const BINS: usize = 64;
    let (lo, hi) = (-4.0f64, 4.0f64);
    let width = (hi - lo) / BINS as f64;
    let modes = modes_of(summary.label);
    png_figure(path, (1300, 540), |root| {
        let err = draw_err(path);
        let title = format!(
            "Marginal posteriors for label {} ({}): {} cINN samples vs. the prior ({} draws of the 8-mode mixture)",
            summary.label,
            mode_list(&modes),
            summary.samples.len() / 2,
            prior.len() / 2
        );
        let root = root
            .titled(&title, (FONT, 19).into_font().style(FontStyle::Bold))
            .map_err(&err)?;
        for (j, area) in root.split_evenly((1, 2)).iter().enumerate() {
            let post = histogram(
                summary.samples.chunks_exact(2).map(|p| p[j] as f64),
                lo,
                hi,
                BINS,
            );
            let pri = histogram(prior.chunks_exact(2).map(|p| p[j] as f64), lo, hi, BINS);
            // Exact marginal of the posterior: an equal mixture of 1-D normals.
            let sd = GMM8_STD as f64;
            let exact = |x: f64| {
                modes
                    .iter()
                    .map(|&m| {
                        let c = if j == 0 {
                            GMM8_CENTRES[m].0
                        } else {
                            GMM8_CENTRES[m].1
                        } as f64;
                        (-(x - c).powi(2) / (2.0 * sd * sd)).exp()
                            / (sd * (std::f64::consts::TAU).sqrt())
                    })
                    .sum::<f64>()
                    / modes.len() as f64
            };
            let curve: Vec<(f64, f64)> = (0..=800)
                .map(|k| {
                    let x = lo + (hi - lo) * k as f64 / 800.0;
                    (x, exact(x))
                })
                .collect();
            let top = post
                .iter()
                .chain(&pri)
                .copied()
                .chain(curve.iter().map(|p| p.1))
                .fold(0.0f64, f64::max);
            // Headroom above the bars for the legend.
            let (peak, top) = (top, top * 1.6);

            let mut chart = ChartBuilder::on(area)
                .caption(format!("x{j}"), (FONT, 20))
                .margin(14)
                .x_label_area_size(40)
                .y_label_area_size(55)
                .build_cartesian_2d(lo..hi, 0.0..top.max(1e-3))
                .map_err(&err)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .light_line_style(WHITE)
                .x_labels(9)
                .x_desc(format!("x{j}"))
                .y_desc("density")
                .label_style((FONT, 15))
                .axis_desc_style((FONT, 17))
                .draw()
                .map_err(&err)?;

            let bars = |h: &[f64], style: ShapeStyle| histogram_bars(h, lo, width, style);
            chart
                .draw_series(bars(&pri, PRIOR_COLOUR.mix(0.45).filled()))
                .map_err(&err)?
                .label("prior p(x), histogram")
                .legend(|(x, y)| {
                    Rectangle::new(
                        [(x, y - 6), (x + 18, y + 6)],
                        PRIOR_COLOUR.mix(0.45).filled(),
                    )
                });
            chart
                .draw_series(bars(&post, POSTERIOR_COLOUR.mix(0.6).filled()))
                .map_err(&err)?
                .label(format!("posterior samples, label {}", summary.label))
                .legend(|(x, y)| {
                    Rectangle::new(
                        [(x, y - 6), (x + 18, y + 6)],
                        POSTERIOR_COLOUR.mix(0.6).filled(),
                    )
                });
            chart
                .draw_series(LineSeries::new(curve, BLACK.stroke_width(2)))
                .map_err(&err)?
                .label("true posterior p(x | label)")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLACK.stroke_width(2)));
            let mut centres: Vec<f64> = modes
                .iter()
                .map(|&m| if j == 0 { GMM8_CENTRES[m].0 } else { GMM8_CENTRES[m].1 } as f64)
                .collect();
            centres.sort_by(f64::total_cmp);
            centres.dedup();
            chart
                .draw_series(centres.iter().map(|&c| {
                    PathElement::new([(c, 0.0), (c, peak * 1.08)], TRUTH_COLOUR.stroke_width(2))
                }))
                .map_err(&err)?
                .label("true values (mode centres)")
                .legend(|(x, y)| {
                    PathElement::new(
                        [(x + 9, y - 7), (x + 9, y + 7)],
                        TRUTH_COLOUR.stroke_width(2),
                    )
                });
            // The legend goes on the side away from the posterior's mass.
            let mean = centres.iter().sum::<f64>() / centres.len().max(1) as f64;
            let corner = if mean > 0.0 {
                SeriesLabelPosition::UpperLeft
            } else {
                SeriesLabelPosition::UpperRight
            };
            chart
                .configure_series_labels()
                .position(corner)
                .label_font((FONT, 14))
                .background_style(WHITE)
                .border_style(RGBColor(200, 200, 200))
                .draw()
                .map_err(&err)?;
        }
        Ok(())
    })
}

/// The bars of a histogram with bins of `width` starting at `lo` (empty bins left out).
pub(crate) fn histogram_bars(
    h: &[f64],
    lo: f64,
    width: f64,
    style: ShapeStyle,
) -> Vec<Rectangle<(f64, f64)>> {
    h.iter()
        .enumerate()
        .filter(|(_, v)| **v > 0.0)
        .map(|(i, &v)| {
            let x0 = lo + i as f64 * width;
            Rectangle::new([(x0, 0.0), (x0 + width, v)], style)
        })
        .collect()
}
