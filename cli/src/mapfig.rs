//! Figures of per-pixel maps (`innfer image`, the demo's camera scene): panels of H×W values
//! drawn as false-colour images side by side, each with its colour bar, title and units; and a
//! calibration curve (coverage of the central q-intervals against q).
//!
//! A NaN value (an invalid pixel, docs/tasks.md §phantom) is drawn grey.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::plot::{FONT, POSTERIOR_COLOUR, draw_err, png_figure};

/// Colour of a pixel without a value.
const INVALID_COLOUR: RGBColor = RGBColor(128, 128, 128);

/// How values map to colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colormap {
    /// Dark blue → green → yellow (perceptually ordered): values such as sO2 or a std.
    Viridis,
    /// Blue → white → red around the range's midpoint: signed values such as a z-score.
    Diverging,
}

/// Anchor colours of viridis at 0, 1/8, …, 1 (matplotlib's table, every 32nd entry).
const VIRIDIS: [(u8, u8, u8); 9] = [
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
];

/// Anchors of the diverging map (ColorBrewer RdBu, reversed: low is blue).
const DIVERGING: [(u8, u8, u8); 5] = [
    (33, 102, 172),
    (146, 197, 222),
    (247, 247, 247),
    (244, 165, 130),
    (178, 24, 43),
];

impl Colormap {
    /// The colour of `t` ∈ [0, 1] (clamped), linear between the anchors.
    pub fn colour(self, t: f64) -> RGBColor {
        let anchors: &[(u8, u8, u8)] = match self {
            Colormap::Viridis => &VIRIDIS,
            Colormap::Diverging => &DIVERGING,
        };
        let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
        let pos = t * (anchors.len() - 1) as f64;
        let i = (pos.floor() as usize).min(anchors.len() - 2);
        let f = pos - i as f64;
        let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
        let (a, b) = (anchors[i], anchors[i + 1]);
        RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }
}

/// One map: `values` are `height × width`, row-major (row 0 at the top).
pub struct MapPanel<'a> {
    pub title: String,
    pub values: &'a [f32],
    /// The values at the two ends of the colour bar (values outside are clamped).
    pub range: (f64, f64),
    /// Units beside the colour bar ("" for none).
    pub units: String,
    pub colormap: Colormap,
}

impl MapPanel<'_> {
    /// A colour range for `values` that ignores NaNs: [min, max] of the finite ones, or the
    /// 1st and 99th percentiles when `robust` (a few extreme pixels then do not wash out the
    /// rest); symmetric around 0 for a diverging map.
    pub fn range_of(values: &[f32], robust: bool, colormap: Colormap) -> (f64, f64) {
        let mut v: Vec<f64> = values
            .iter()
            .filter(|x| x.is_finite())
            .map(|&x| x as f64)
            .collect();
        if v.is_empty() {
            return (0.0, 1.0);
        }
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        let (lo, hi) = if robust {
            (at(0.01), at(0.99))
        } else {
            (v[0], v[v.len() - 1])
        };
        let (lo, hi) = if colormap == Colormap::Diverging {
            let m = lo.abs().max(hi.abs());
            (-m, m)
        } else {
            (lo, hi)
        };
        if hi > lo {
            (lo, hi)
        } else {
            (lo - 0.5, lo + 0.5)
        }
    }
}

/// Tick label of a colour-bar value: few significant digits.
fn tick(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e4).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// Draws the panels side by side under `title`, each map `height × width` pixels scaled to
/// fill its square, and writes the PNG.
pub fn map_figure(
    path: &Path,
    title: &str,
    panels: &[MapPanel<'_>],
    (height, width): (usize, usize),
) -> Result<(), String> {
    for p in panels {
        if p.values.len() != height * width {
            return Err(format!(
                "drawing {}: map `{}` has {} values, not {height} × {width}",
                path.display(),
                p.title,
                p.values.len()
            ));
        }
    }
    let panel_w = 350u32;
    let w = panel_w * panels.len().max(1) as u32;
    let h = 330u32;
    png_figure(path, (w, h), |root| {
        let root = root
            .titled(title, (FONT, 18).into_font().style(FontStyle::Bold))
            .map_err(draw_err(path))?;
        let areas = root.split_evenly((1, panels.len().max(1)));
        for (area, p) in areas.iter().zip(panels) {
            map_panel(path, area, p, (height, width))?;
        }
        Ok(())
    })
}

fn map_panel(
    path: &Path,
    area: &Area<'_>,
    p: &MapPanel<'_>,
    (height, width): (usize, usize),
) -> Result<(), String> {
    let err = draw_err(path);
    let area = area
        .titled(&p.title, (FONT, 15).into_font())
        .map_err(&err)?;
    let (aw, ah) = area.dim_in_pixel();
    // The map on the left at the image's aspect ratio, the colour bar and its labels right.
    let max_w = aw.saturating_sub(90).max(1) as usize;
    let max_h = ah.saturating_sub(24).max(1) as usize;
    let scale = (max_w as f64 / width as f64).min(max_h as f64 / height as f64);
    let map_w = ((width as f64 * scale) as u32).max(1);
    let side = ((height as f64 * scale) as u32).max(1);
    let (x0, y0) = (8i32, 4i32);
    let (lo, hi) = p.range;
    for py in 0..side {
        let r = (py as usize * height / side as usize).min(height - 1);
        for px in 0..map_w {
            let c = (px as usize * width / map_w as usize).min(width - 1);
            let v = p.values[r * width + c];
            let colour = if v.is_finite() {
                p.colormap.colour((v as f64 - lo) / (hi - lo))
            } else {
                INVALID_COLOUR
            };
            area.draw_pixel((x0 + px as i32, y0 + py as i32), &colour)
                .map_err(&err)?;
        }
    }
    // Colour bar: a column of colours from hi (top) to lo (bottom), five labelled ticks.
    let bx = x0 + map_w as i32 + 10;
    let bar_w = 14i32;
    for py in 0..side as i32 {
        let t = 1.0 - py as f64 / (side as f64 - 1.0).max(1.0);
        let colour = p.colormap.colour(t);
        area.draw(&Rectangle::new(
            [(bx, y0 + py), (bx + bar_w, y0 + py + 1)],
            colour.filled(),
        ))
        .map_err(&err)?;
    }
    area.draw(&Rectangle::new(
        [(bx, y0), (bx + bar_w, y0 + side as i32)],
        BLACK.stroke_width(1),
    ))
    .map_err(&err)?;
    let style = (FONT, 12).into_font().color(&BLACK);
    for k in 0..=4 {
        let t = k as f64 / 4.0;
        let y = y0 + ((1.0 - t) * (side as f64 - 1.0)) as i32;
        area.draw(&PathElement::new(
            [(bx + bar_w, y), (bx + bar_w + 4, y)],
            BLACK.stroke_width(1),
        ))
        .map_err(&err)?;
        area.draw(&Text::new(
            tick(lo + t * (hi - lo)),
            (bx + bar_w + 6, y - 6),
            style.clone(),
        ))
        .map_err(&err)?;
    }
    if !p.units.is_empty() {
        area.draw(&Text::new(
            p.units.clone(),
            (bx, y0 + side as i32 + 4),
            (FONT, 12).into_font().color(&BLACK),
        ))
        .map_err(&err)?;
    }
    Ok(())
}

/// One calibration curve: its name and the observed coverage at each nominal level q.
pub struct CalibrationCurve {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Coverage of the central q-intervals against q (the diagonal is perfect calibration).
pub fn calibration_figure(
    path: &Path,
    title: &str,
    curves: &[CalibrationCurve],
) -> Result<(), String> {
    const COLOURS: [RGBColor; 6] = [
        POSTERIOR_COLOUR,
        RGBColor(203, 24, 29),
        RGBColor(35, 139, 69),
        RGBColor(106, 81, 163),
        RGBColor(217, 95, 14),
        RGBColor(99, 99, 99),
    ];
    png_figure(path, (620, 560), |root| {
        let err = draw_err(path);
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 16).into_font())
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0f64..1.0, 0.0f64..1.0)
            .map_err(&err)?;
        chart
            .configure_mesh()
            .x_desc("nominal level q of the central interval")
            .y_desc("fraction of true values inside")
            .label_style((FONT, 12))
            .draw()
            .map_err(&err)?;
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                BLACK.stroke_width(1),
            ))
            .map_err(&err)?;
        for (i, c) in curves.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            chart
                .draw_series(LineSeries::new(c.points.clone(), colour.stroke_width(2)))
                .map_err(&err)?
                .label(c.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font((FONT, 12))
            .draw()
            .map_err(&err)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colormaps_run_from_their_first_to_their_last_anchor() {
        assert_eq!(Colormap::Viridis.colour(0.0), RGBColor(68, 1, 84));
        assert_eq!(Colormap::Viridis.colour(1.0), RGBColor(253, 231, 37));
        assert_eq!(Colormap::Viridis.colour(2.0), RGBColor(253, 231, 37));
        assert_eq!(Colormap::Diverging.colour(0.5), RGBColor(247, 247, 247));
    }

    #[test]
    fn a_colour_range_ignores_nan_and_is_symmetric_for_signed_maps() {
        let v = [f32::NAN, -1.0, 0.5, 3.0];
        assert_eq!(
            MapPanel::range_of(&v, false, Colormap::Viridis),
            (-1.0, 3.0)
        );
        assert_eq!(
            MapPanel::range_of(&v, false, Colormap::Diverging),
            (-3.0, 3.0)
        );
        assert_eq!(
            MapPanel::range_of(&[2.0], false, Colormap::Viridis),
            (1.5, 2.5)
        );
    }
}
