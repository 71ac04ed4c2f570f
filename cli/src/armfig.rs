//! The arm's PNG figures of `innfer demo`: the sampled arm configurations reaching each
//! target, like Fig. 2 of Ardizzone et al. (2019), and the marginal posteriors over the prior.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use innfer::tasks::{ARM_LENGTHS, ARM_PRIOR_STD};

use crate::plot::{
    FONT, POSTERIOR_COLOUR, TRUTH_COLOUR, draw_err, histogram, png_figure, prior_and_posterior_bars,
};

const RAIL_COLOUR: RGBColor = RGBColor(120, 120, 120);
const EXACT_COLOUR: RGBColor = RGBColor(40, 40, 40);
/// Opacity of one arm; 1000 of them overlap.
const ARM_ALPHA: f64 = 0.06;

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// What the figures show of one target y*.
pub struct ArmPanel<'a> {
    pub target: [f32; 2],
    /// The arm that made the observation: f(truth) = target.
    pub truth: [f32; 4],
    /// `[n][4]` samples of the model.
    pub samples: &'a [f32],
    /// `[draws][4]` draws of the exact posterior.
    pub reference: &'a [f32],
    /// Mean of ‖f(x) − y*‖ over the model's samples.
    pub resim: f64,
}

/// The rail point, the two inner joints and the end point of the arm with parameters `x`.
pub fn arm_points(x: &[f32]) -> [(f64, f64); 4] {
    let [l0, l1, l2] = ARM_LENGTHS;
    let (p1, p2, p3) = (
        x[1] as f64,
        (x[1] + x[2]) as f64,
        (x[1] + x[2] + x[3]) as f64,
    );
    let a = (0.0, x[0] as f64);
    let b = (a.0 + l0 * p1.cos(), a.1 + l0 * p1.sin());
    let c = (b.0 + l1 * p2.cos(), b.1 + l1 * p2.sin());
    let d = (c.0 + l2 * p3.cos(), c.1 + l2 * p3.sin());
    [a, b, c, d]
}

/// The region every panel of `kinematics_arms.png` shows: all joints of the drawn arms (the
/// central 99.8 % along each axis), the targets and the rail origin, padded.
fn extent(panels: &[ArmPanel<'_>], per_panel: usize) -> ((f64, f64), (f64, f64)) {
    let mut xs = vec![0.0f64];
    let mut ys = vec![0.0f64];
    for s in panels {
        xs.push(s.target[0] as f64);
        ys.push(s.target[1] as f64);
        for set in [s.samples, s.reference] {
            for r in set.chunks_exact(4).take(per_panel) {
                for p in arm_points(r) {
                    if p.0.is_finite() && p.1.is_finite() {
                        xs.push(p.0);
                        ys.push(p.1);
                    }
                }
            }
        }
    }
    let range = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let q = |f: f64| v[((v.len() - 1) as f64 * f).round() as usize];
        let (lo, hi) = (q(0.001), q(0.999));
        let pad = 0.06 * (hi - lo).max(0.5);
        (lo - pad, hi + pad)
    };
    (range(&mut xs), range(&mut ys))
}

/// `kinematics_arms.png`: per target (columns), the model's sampled arms (top row) and the
/// exact posterior's (bottom row), each drawn rail point → joint 1 → joint 2 → end point, with
/// the target marked by a cross and the true arm x_true that reaches it drawn in red.
pub fn arms(path: &Path, panels: &[ArmPanel<'_>], per_panel: usize) -> Result<(), String> {
    const PANEL_W: u32 = 440;
    const PANEL_H: u32 = 470;
    let cols = panels.len().max(1);
    let (w, h) = (PANEL_W * cols as u32, 2 * PANEL_H + 44);
    let bounds = extent(panels, per_panel);
    png_figure(path, (w, h), |root| {
        let title = format!(
            "Inverse kinematics: {per_panel} posterior samples of the arm for each target y* (cross), the end point of the true arm x_true (red); top: the shipped cINN, bottom: the exact posterior"
        );
        let root = root
            .titled(&title, (FONT, 19).into_font().style(FontStyle::Bold))
            .map_err(draw_err(path))?;
        let rows = root.split_evenly((2, cols));
        for (i, s) in panels.iter().enumerate() {
            arm_panel(path, &rows[i], s, s.samples, per_panel, bounds, false)?;
            arm_panel(
                path,
                &rows[cols + i],
                s,
                s.reference,
                per_panel,
                bounds,
                true,
            )?;
        }
        Ok(())
    })
}

fn arm_panel(
    path: &Path,
    area: &Area<'_>,
    s: &ArmPanel<'_>,
    x: &[f32],
    per_panel: usize,
    ((x_lo, x_hi), (y_lo, y_hi)): ((f64, f64), (f64, f64)),
    exact: bool,
) -> Result<(), String> {
    let err = draw_err(path);
    let caption = format!(
        "{}, y* = ({:.1}, {:.1})",
        if exact { "exact" } else { "cINN" },
        s.target[0],
        s.target[1]
    );
    let area = area.titled(&caption, (FONT, 18)).map_err(&err)?;
    // Equal scales on both axes: widen the shorter range to the plotting area's aspect.
    const MARGIN: u32 = 10;
    const X_LABELS: u32 = 34;
    const Y_LABELS: u32 = 42;
    let (pw, ph) = area.dim_in_pixel();
    let plot_w = pw.saturating_sub(2 * MARGIN + Y_LABELS).max(1) as f64;
    let plot_h = ph.saturating_sub(2 * MARGIN + X_LABELS).max(1) as f64;
    let scale = ((x_hi - x_lo) / plot_w).max((y_hi - y_lo) / plot_h);
    let (cx, cy) = ((x_lo + x_hi) / 2.0, (y_lo + y_hi) / 2.0);
    let xr = (cx - scale * plot_w / 2.0)..(cx + scale * plot_w / 2.0);
    let yr = (cy - scale * plot_h / 2.0)..(cy + scale * plot_h / 2.0);
    let (y_min, y_max) = (yr.start, yr.end);

    let mut chart = ChartBuilder::on(&area)
        .margin(MARGIN)
        .x_label_area_size(X_LABELS)
        .y_label_area_size(Y_LABELS)
        .build_cartesian_2d(xr, yr)
        .map_err(&err)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(240, 240, 240))
        .bold_line_style(RGBColor(225, 225, 225))
        .x_labels(6)
        .y_labels(8)
        .label_style((FONT, 14))
        .draw()
        .map_err(&err)?;

    // The vertical rail the arm slides on.
    chart
        .draw_series(std::iter::once(PathElement::new(
            [(0.0, y_min), (0.0, y_max)],
            RAIL_COLOUR.stroke_width(3),
        )))
        .map_err(&err)?;
    let colour = if exact {
        EXACT_COLOUR
    } else {
        POSTERIOR_COLOUR
    };
    let style = colour.mix(ARM_ALPHA).stroke_width(1);
    chart
        .draw_series(
            x.chunks_exact(4)
                .take(per_panel)
                .filter(|r| r.iter().all(|v| v.is_finite()))
                .map(|r| PathElement::new(arm_points(r).to_vec(), style)),
        )
        .map_err(&err)?;
    // Where the arms start on the rail.
    chart
        .draw_series(
            x.chunks_exact(4)
                .take(per_panel)
                .filter(|r| r[0].is_finite())
                .map(|r| Circle::new((0.0, r[0] as f64), 2, colour.mix(0.15).filled())),
        )
        .map_err(&err)?;
    // The true arm, the one that made the observation, in red with its joints dotted.
    let truth = arm_points(&s.truth);
    chart
        .draw_series(std::iter::once(PathElement::new(
            truth.to_vec(),
            TRUTH_COLOUR.stroke_width(3),
        )))
        .map_err(&err)?;
    chart
        .draw_series(
            truth[..3]
                .iter()
                .map(|&p| Circle::new(p, 4, TRUTH_COLOUR.filled())),
        )
        .map_err(&err)?;
    chart
        .draw_series(std::iter::once(Cross::new(
            (s.target[0] as f64, s.target[1] as f64),
            9,
            TRUTH_COLOUR.stroke_width(3),
        )))
        .map_err(&err)?;
    if !exact {
        // Top right, clear of the rail (the targets lie below and left of it).
        let note = format!("mean |f(x) − y*| = {:.3}", s.resim);
        let x_range = chart.x_range();
        let at = (
            x_range.end - 0.03 * (x_range.end - x_range.start),
            y_max - 0.02 * (y_max - y_min),
        );
        let style = (FONT, 15)
            .into_text_style(chart.plotting_area())
            .pos(Pos::new(HPos::Right, VPos::Top));
        chart
            .plotting_area()
            .draw(&Text::new(note, at, style))
            .map_err(&err)?;
    }
    Ok(())
}

/// `kinematics_marginals.png`: for each of the four parameters, the model's posterior
/// histogram for one target over the prior histogram, with the exact posterior's outlined and
/// the true value (the arm that made the observation) marked.
pub fn marginals(path: &Path, s: &ArmPanel<'_>, prior: &[f32]) -> Result<(), String> {
    const BINS: usize = 40;
    const NAMES: [&str; 4] = [
        "x0 (rail height)",
        "x1 (angle 1)",
        "x2 (angle 2)",
        "x3 (angle 3)",
    ];
    png_figure(path, (1800, 520), |root| {
        let err = draw_err(path);
        let title = format!(
            "Marginal posteriors of the arm for y* = ({:.1}, {:.1}) = f(x_true): {} cINN samples vs. the exact posterior and the prior ({} draws)",
            s.target[0],
            s.target[1],
            s.samples.len() / 4,
            prior.len() / 4
        );
        let root = root
            .titled(&title, (FONT, 19).into_font().style(FontStyle::Bold))
            .map_err(&err)?;
        for (j, area) in root.split_evenly((1, 4)).iter().enumerate() {
            let (lo, hi) = (-4.0 * ARM_PRIOR_STD[j], 4.0 * ARM_PRIOR_STD[j]);
            let width = (hi - lo) / BINS as f64;
            let col = |v: &[f32]| -> Vec<f64> { v.chunks_exact(4).map(|r| r[j] as f64).collect() };
            let post = histogram(col(s.samples).into_iter(), lo, hi, BINS);
            let exact = histogram(col(s.reference).into_iter(), lo, hi, BINS);
            let pri = histogram(col(prior).into_iter(), lo, hi, BINS);
            let top = post
                .iter()
                .chain(&exact)
                .chain(&pri)
                .copied()
                .fold(0.0f64, f64::max);
            let mut chart = ChartBuilder::on(area)
                .caption(NAMES[j], (FONT, 20))
                .margin(14)
                .x_label_area_size(40)
                .y_label_area_size(50)
                .build_cartesian_2d(lo..hi, 0.0..(1.6 * top).max(1e-3))
                .map_err(&err)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .light_line_style(WHITE)
                .x_labels(9)
                .x_desc(format!("x{j}"))
                .y_desc("density")
                .label_style((FONT, 14))
                .axis_desc_style((FONT, 16))
                .draw()
                .map_err(&err)?;
            prior_and_posterior_bars(
                path,
                &mut chart,
                (lo, width),
                (&pri, "prior p(x)"),
                (&post, "cINN posterior samples".into()),
            )?;
            // The exact posterior's histogram as a step outline.
            let mut steps = vec![(lo, 0.0)];
            for (i, &v) in exact.iter().enumerate() {
                let x0 = lo + i as f64 * width;
                steps.push((x0, v));
                steps.push((x0 + width, v));
            }
            steps.push((hi, 0.0));
            chart
                .draw_series(LineSeries::new(steps, BLACK.stroke_width(2)))
                .map_err(&err)?
                .label("exact posterior p(x | y*)")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLACK.stroke_width(2)));
            let truth = s.truth[j] as f64;
            chart
                .draw_series(std::iter::once(PathElement::new(
                    [(truth, 0.0), (truth, top * 1.08)],
                    TRUTH_COLOUR.stroke_width(2),
                )))
                .map_err(&err)?
                .label(format!("true value x{j} = {truth:+.2}"))
                .legend(|(x, y)| {
                    PathElement::new(
                        [(x + 9, y - 7), (x + 9, y + 7)],
                        TRUTH_COLOUR.stroke_width(2),
                    )
                });
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .label_font((FONT, 13))
                .background_style(WHITE)
                .border_style(RGBColor(200, 200, 200))
                .draw()
                .map_err(&err)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use innfer::tasks::arm_forward;

    #[test]
    fn arm_points_end_where_the_simulator_does() {
        let x = [0.1f32, 0.3, -0.4, 0.7];
        let p = arm_points(&x);
        let e = arm_forward(&x.map(|v| v as f64));
        assert!((p[3].0 - e[0]).abs() < 1e-6 && (p[3].1 - e[1]).abs() < 1e-6);
        assert_eq!(p[0], (0.0, 0.1f32 as f64));
    }
}
