//! The mixture's PNG figures of `innfer demo`: the posterior samples of each label over the
//! true posterior density, and one label's marginals over the prior.

use std::path::Path;

use innfer::metrics::{ModeMasses, OFF_MODE_RADIUS};
use innfer::tasks::{GMM8_CENTRES, GMM8_STD, Labelling};
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::plot::{FONT, TRUTH_COLOUR, draw_err, histogram, png_figure, prior_and_posterior_bars};

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

/// What the figures show of one label: its posterior samples (rows of 2) and their mode
/// masses.
pub struct LabelPanel<'a> {
    pub samples: &'a [f32],
    pub masses: &'a ModeMasses,
}

/// The modes carrying `label` under the `some` labelling.
fn modes_of(label: usize) -> Vec<usize> {
    Labelling::Some.modes_of(label)
}

/// Density of the true posterior p(x | label) relative to one mode's peak: the mixture's
/// Gaussians summed (each ≤ 1 at its centre; the modes are far apart, so the max is ≈ 1).
fn relative_density(modes: &[usize], x: f64, y: f64) -> f64 {
    let s2 = 2.0 * GMM8_STD.powi(2);
    modes
        .iter()
        .map(|&m| {
            let (cx, cy) = GMM8_CENTRES[m];
            let r2 = (x - cx).powi(2) + (y - cy).powi(2);
            (-r2 / s2).exp()
        })
        .sum()
}

/// A closed polygon approximating the circle of `k` standard deviations around `centre`.
fn circle(centre: (f64, f64), k: f64) -> Vec<(f64, f64)> {
    let r = k * GMM8_STD;
    (0..=64)
        .map(|i| {
            let t = i as f64 / 64.0 * std::f64::consts::TAU;
            (centre.0 + r * t.cos(), centre.1 + r * t.sin())
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
pub fn posteriors(path: &Path, panels: &[LabelPanel<'_>]) -> Result<(), String> {
    const PANEL: u32 = 440;
    let (w, h) = (PANEL * panels.len().max(1) as u32, 492);
    png_figure(path, (w, h), |root| {
        let title = format!(
            "Posterior samples of the shipped cINN (red, {} per label) over the true posterior p(x | label) (blue: its 1σ, 2σ, 3σ regions; grey: the other labels' modes)",
            panels.first().map_or(0, |s| s.samples.len() / 2)
        );
        let root = root
            .titled(&title, (FONT, 19).into_font().style(FontStyle::Bold))
            .map_err(draw_err(path))?;
        let areas = root.split_evenly((1, panels.len().max(1)));
        for (area, s) in areas.iter().zip(panels) {
            posterior_panel(path, area, s)?;
        }
        Ok(())
    })
}

fn posterior_panel(
    path: &Path,
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    s: &LabelPanel<'_>,
) -> Result<(), String> {
    let err = draw_err(path);
    let modes = modes_of(s.masses.label);
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("label {} ({})", s.masses.label, mode_list(&modes)),
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

    let note = format!(
        "found {} of {} modes; {:.2}% off-mode (beyond {}σ)",
        s.masses.found(),
        s.masses.modes.len(),
        100.0 * s.masses.off_mode,
        OFF_MODE_RADIUS / GMM8_STD
    );
    chart
        .plotting_area()
        .draw(&Text::new(note, (-3.85, 3.9), (FONT, 14)))
        .map_err(&err)?;
    Ok(())
}

/// `gmm8_marginals.png`: for x0 and x1, the posterior histogram for one label over the prior
/// histogram, with the exact posterior marginal and the label's mode centres marked.
pub fn marginals(path: &Path, panel: &LabelPanel<'_>, prior: &[f32]) -> Result<(), String> {
    let label = panel.masses.label;
    const BINS: usize = 64;
    let (lo, hi) = (-4.0f64, 4.0f64);
    let width = (hi - lo) / BINS as f64;
    let modes = modes_of(label);
    png_figure(path, (1300, 540), |root| {
        let err = draw_err(path);
        let title = format!(
            "Marginal posteriors for label {} ({}): {} cINN samples vs. the prior ({} draws of the 8-mode mixture)",
            label,
            mode_list(&modes),
            panel.samples.len() / 2,
            prior.len() / 2
        );
        let root = root
            .titled(&title, (FONT, 19).into_font().style(FontStyle::Bold))
            .map_err(&err)?;
        for (j, area) in root.split_evenly((1, 2)).iter().enumerate() {
            let post = histogram(
                panel.samples.chunks_exact(2).map(|p| p[j] as f64),
                lo,
                hi,
                BINS,
            );
            let pri = histogram(prior.chunks_exact(2).map(|p| p[j] as f64), lo, hi, BINS);
            // Exact marginal of the posterior: an equal mixture of 1-D normals.
            let sd = GMM8_STD;
            let exact = |x: f64| {
                modes
                    .iter()
                    .map(|&m| {
                        let c = if j == 0 {
                            GMM8_CENTRES[m].0
                        } else {
                            GMM8_CENTRES[m].1
                        };
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

            prior_and_posterior_bars(
                path,
                &mut chart,
                (lo, width),
                (&pri, "prior p(x), histogram"),
                (&post, format!("posterior samples, label {label}")),
            )?;
            chart
                .draw_series(LineSeries::new(curve, BLACK.stroke_width(2)))
                .map_err(&err)?
                .label("true posterior p(x | label)")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLACK.stroke_width(2)));
            let mut centres: Vec<f64> = modes
                .iter()
                .map(|&m| {
                    if j == 0 {
                        GMM8_CENTRES[m].0
                    } else {
                        GMM8_CENTRES[m].1
                    }
                })
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
