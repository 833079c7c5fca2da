//! Line charts, as SVG or PNG bytes, in pure Rust (plotters).
//!
//! The text is drawn with a small subset of DejaVu Sans compiled into the
//! binary (see `FONT-LICENSE`), so a PNG renders the same on a machine
//! without fonts. A chart is data ([`Chart`]): series of points, optional
//! vertical markers (the cache sizes on a length sweep), a log or linear x
//! axis. [`render`] draws it in memory; the caller writes the bytes (whole,
//! through [`crate::export::Destination`]).
#![forbid(unsafe_code)]

use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One line of a chart.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Series {
    /// Legend text.
    pub label: String,
    /// (x, y) points, in x order.
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed (a reference, not a measurement series).
    pub dashed: bool,
    /// Vertical bars (x, low, high): the spread over repeated runs; empty
    /// when there is none to show.
    pub ranges: Vec<(f64, f64, f64)>,
    /// Points to ring: their numbers are suspect (throttled, too short,
    /// noisy).
    pub suspect: Vec<(f64, f64)>,
}

/// A vertical line across the plot, labelled at the top.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Marker {
    /// Where on the x axis.
    pub x: f64,
    /// What it marks.
    pub label: String,
}

/// A line chart.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Chart {
    /// Title above the plot.
    pub title: String,
    /// X axis caption.
    pub x_label: String,
    /// Y axis caption.
    pub y_label: String,
    /// Logarithmic x axis.
    pub log_x: bool,
    /// The lines.
    pub series: Vec<Series>,
    /// Vertical markers.
    pub markers: Vec<Marker>,
    /// Label only these x values (the worker counts), if given.
    pub x_ticks: Option<Vec<f64>>,
}

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PlotError {
    /// Nothing to draw.
    #[error("the sweep has no points to draw")]
    Empty,
    /// The backend failed.
    #[error("{0}")]
    Draw(String),
}

/// An image format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ImageFormat {
    /// Scalable vector graphics, 960 × 600.
    Svg,
    /// A 1280 × 800 PNG.
    Png,
}

impl ImageFormat {
    /// The format a file name asks for, by its extension.
    pub(crate) fn of(path: &std::path::Path) -> Option<ImageFormat> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("svg") => Some(ImageFormat::Svg),
            Some("png") => Some(ImageFormat::Png),
            _ => None,
        }
    }
}

const FONT: &[u8] = include_bytes!("DejaVuSans-subset.ttf");
const PALETTE: [RGBColor; 8] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
];

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The subset is compiled in and valid; a failure would only lose text.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Draws `chart` in `format`.
pub(crate) fn render(chart: &Chart, format: ImageFormat) -> Result<Vec<u8>, PlotError> {
    register_font();
    if chart.series.iter().all(|s| s.points.is_empty()) {
        return Err(PlotError::Empty);
    }
    match format {
        ImageFormat::Svg => {
            let mut text = String::new();
            draw_on(SVGBackend::with_string(&mut text, (960, 600)).into_drawing_area(), chart)
                .map_err(PlotError::Draw)?;
            Ok(text.into_bytes())
        }
        ImageFormat::Png => {
            let (w, h) = (1280u32, 800u32);
            let mut rgb = vec![0u8; (w * h * 3) as usize];
            draw_on(BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area(), chart)
                .map_err(PlotError::Draw)?;
            let mut out = Vec::new();
            let mut encoder = png::Encoder::new(&mut out, w, h);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            encoder
                .write_header()
                .and_then(|mut writer| writer.write_image_data(&rgb))
                .map_err(|e| PlotError::Draw(e.to_string()))?;
            Ok(out)
        }
    }
}

fn draw_on<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, chart: &Chart) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let (w, _) = root.dim_in_pixel();
    let scale = w as f64 / 960.0;
    let px = |v: f64| (v * scale) as i32;
    let font = |size: f64| ("sans-serif", size * scale);

    let all: Vec<(f64, f64)> = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().copied().chain(s.ranges.iter().map(|&(x, _, hi)| (x, hi))))
        .collect();
    let (mut x0, mut x1) = all.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
    for m in &chart.markers {
        x0 = x0.min(m.x);
        x1 = x1.max(m.x);
    }
    let y1 = all.iter().fold(0.0f64, |hi, p| hi.max(p.1)) * 1.12;
    let y1 = if y1 > 0.0 { y1 } else { 1.0 };
    if chart.log_x {
        x0 /= 1.5;
        x1 *= 1.5;
    } else {
        let pad = ((x1 - x0) * 0.05).max(0.5);
        x0 -= pad;
        x1 += pad;
    }

    let (ux0, ux1) = if chart.log_x { (x0.ln(), x1.ln()) } else { (x0, x1) };
    let unit_x = |x: f64| ((if chart.log_x { x.ln() } else { x }) - ux0) / (ux1 - ux0);
    let label_places =
        place_labels(&chart.markers.iter().map(|m| (unit_x(m.x), m.label.chars().count())).collect::<Vec<_>>());
    let corner = legend_corner(&samples(chart, |x, y| (unit_x(x), y / y1), &label_places));

    let mut builder = ChartBuilder::on(&root);
    builder.caption(&chart.title, font(22.0)).margin(px(18.0)).x_label_area_size(px(56.0)).y_label_area_size(px(72.0));

    macro_rules! plot_body {
        ($ctx:expr) => {{
            let mut ctx = $ctx;
            let plot_height = ctx.plotting_area().dim_in_pixel().1 as f64;
            let ticks = chart.x_ticks.clone();
            let x_formatter = move |x: &f64| match &ticks {
                Some(t) if !t.iter().any(|v| ((v - x) / v).abs() < 1e-6) => String::new(),
                _ => crate::units::human_number(*x),
            };
            ctx.configure_mesh()
                .x_desc(&chart.x_label)
                .y_desc(&chart.y_label)
                .label_style(font(15.0))
                .axis_desc_style(font(17.0))
                .x_labels(if chart.x_ticks.is_some() { 64 } else { 10 })
                .x_label_formatter(&x_formatter)
                .y_label_formatter(&|y| format!("{y:.0}"))
                .light_line_style(TRANSPARENT)
                .bold_line_style(RGBColor(228, 228, 228))
                .draw()
                .map_err(err)?;
            for (m, place) in chart.markers.iter().zip(&label_places) {
                let grey = RGBColor(120, 120, 120);
                ctx.draw_series(DashedLineSeries::new(
                    vec![(m.x, 0.0), (m.x, y1)],
                    px(6.0) as u32,
                    px(4.0) as u32,
                    grey.stroke_width(px(1.5) as u32),
                ))
                .map_err(err)?;
                let style = font(14.0).into_font().color(&grey);
                let dy = (place.row as f64 * LABEL_ROW * plot_height) as i32;
                let label = if place.leftwards {
                    Text::new(m.label.clone(), (-px(5.0), dy), style.pos(Pos::new(HPos::Right, VPos::Top)))
                } else {
                    Text::new(m.label.clone(), (px(5.0), dy), style)
                };
                ctx.draw_series(std::iter::once(EmptyElement::at((m.x, y1 * 0.985)) + label)).map_err(err)?;
            }
            for (i, s) in chart.series.iter().enumerate() {
                let color = PALETTE[i % PALETTE.len()];
                let style = color.stroke_width(px(2.5).max(1) as u32);
                if s.dashed {
                    ctx.draw_series(DashedLineSeries::new(s.points.clone(), px(8.0) as u32, px(5.0) as u32, style))
                        .map_err(err)?
                        .label(&s.label)
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
                } else {
                    ctx.draw_series(LineSeries::new(s.points.clone(), style))
                        .map_err(err)?
                        .label(&s.label)
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
                    ctx.draw_series(s.points.iter().map(|&p| Circle::new(p, px(4.0), color.filled()))).map_err(err)?;
                    let ring = color.stroke_width(px(2.0).max(1) as u32);
                    ctx.draw_series(s.suspect.iter().map(|&p| Circle::new(p, px(9.0), ring))).map_err(err)?;
                    // A vertical line with short caps, in pixels so the caps
                    // keep their width on a log axis.
                    let whisker = color.stroke_width(px(1.5).max(1) as u32);
                    let cap = px(5.0);
                    for &(x, lo, hi) in &s.ranges {
                        ctx.draw_series(std::iter::once(PathElement::new(vec![(x, lo), (x, hi)], whisker)))
                            .map_err(err)?;
                        for y in [lo, hi] {
                            let bar = PathElement::new(vec![(-cap, 0), (cap, 0)], whisker);
                            ctx.draw_series(std::iter::once(EmptyElement::at((x, y)) + bar)).map_err(err)?;
                        }
                    }
                }
            }
            ctx.configure_series_labels()
                .label_font(font(15.0))
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(200, 200, 200))
                .position(match corner {
                    Corner::LowerRight => SeriesLabelPosition::LowerRight,
                    Corner::LowerLeft => SeriesLabelPosition::LowerLeft,
                    Corner::UpperLeft => SeriesLabelPosition::UpperLeft,
                    Corner::UpperRight => SeriesLabelPosition::UpperRight,
                })
                .draw()
                .map_err(err)?;
        }};
    }
    if chart.log_x {
        plot_body!(builder.build_cartesian_2d((x0..x1).log_scale(), 0.0..y1).map_err(err)?);
    } else {
        plot_body!(builder.build_cartesian_2d(x0..x1, 0.0..y1).map_err(err)?);
    }
    root.present().map_err(err)?;
    Ok(())
}

/// Where on the plot the legend goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Corner {
    LowerRight,
    LowerLeft,
    UpperLeft,
    UpperRight,
}

/// The corner whose legend box covers the fewest samples of the lines, the
/// spread bars and the marker labels (x and y as fractions of the plot
/// area, from the lower left); on a tie the earlier one, lower right first.
fn legend_corner(samples: &[(f64, f64)]) -> Corner {
    let (w, h) = (0.22, 0.26);
    let covered = |c: Corner| {
        let (xs, ys) = match c {
            Corner::LowerRight => (1.0 - w..=1.0, 0.0..=h),
            Corner::LowerLeft => (0.0..=w, 0.0..=h),
            Corner::UpperLeft => (0.0..=w, 1.0 - h..=1.0),
            Corner::UpperRight => (1.0 - w..=1.0, 1.0 - h..=1.0),
        };
        samples.iter().filter(|(x, y)| xs.contains(x) && ys.contains(y)).count()
    };
    [Corner::LowerRight, Corner::LowerLeft, Corner::UpperLeft, Corner::UpperRight]
        .into_iter()
        .min_by_key(|&c| covered(c))
        .unwrap_or(Corner::LowerRight)
}

/// Points along every line and bar of `chart` and along the marker labels
/// placed at `labels`, as fractions of the plot area, so that
/// [`legend_corner`] can see what it would hide.
fn samples(chart: &Chart, to_unit: impl Fn(f64, f64) -> (f64, f64), labels: &[LabelPlace]) -> Vec<(f64, f64)> {
    const STEPS: usize = 24;
    let mut out = Vec::new();
    let mut segment = |(ax, ay): (f64, f64), (bx, by): (f64, f64)| {
        for i in 0..=STEPS {
            let t = i as f64 / STEPS as f64;
            out.push((ax + (bx - ax) * t, ay + (by - ay) * t));
        }
    };
    for s in &chart.series {
        let pts: Vec<(f64, f64)> = s.points.iter().map(|&(x, y)| to_unit(x, y)).collect();
        for pair in pts.windows(2) {
            segment(pair[0], pair[1]);
        }
        if let [only] = pts[..] {
            segment(only, only);
        }
        for &(x, lo, hi) in &s.ranges {
            segment(to_unit(x, lo), to_unit(x, hi));
        }
    }
    for p in labels {
        let y = 0.98 - p.row as f64 * LABEL_ROW;
        segment((p.from, y), (p.to, y));
    }
    out
}

/// Where a marker's label goes: beside its line, to the right, or to the
/// left when it would run off the plot; one row lower when it would overlap
/// an earlier label.
#[derive(Clone, Copy, Debug, PartialEq)]
struct LabelPlace {
    leftwards: bool,
    row: usize,
    /// The span it covers, as fractions of the plot width.
    from: f64,
    to: f64,
}

/// Places labels of `chars` characters at lines at `x` (fractions of the
/// plot width, in drawing order).
fn place_labels(labels: &[(f64, usize)]) -> Vec<LabelPlace> {
    // About 7.5 px per character of the 14 px label font on an 850 px plot.
    const PER_CHAR: f64 = 0.009;
    const GAP: f64 = 0.006;
    let mut placed: Vec<LabelPlace> = Vec::new();
    for &(x, chars) in labels {
        let width = chars as f64 * PER_CHAR;
        let leftwards = x + GAP + width > 1.0 && x - GAP - width >= 0.0;
        let (from, to) = if leftwards { (x - GAP - width, x) } else { (x, x + GAP + width) };
        let row = (0..).find(|&row| !placed.iter().any(|p| p.row == row && p.from < to && from < p.to)).unwrap_or(0);
        placed.push(LabelPlace { leftwards, row, from, to });
    }
    placed
}

/// Label row height, as a fraction of the plot height.
const LABEL_ROW: f64 = 0.04;

/// The text elements of an SVG, trimmed.
#[cfg(test)]
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(log_x: bool) -> Chart {
        Chart {
            title: "test".into(),
            x_label: "workers".into(),
            y_label: "GB/s".into(),
            log_x,
            series: vec![
                Series {
                    label: "procs".into(),
                    points: vec![(1.0, 10.0), (2.0, 19.0), (4.0, 20.0)],
                    dashed: false,
                    ranges: vec![(2.0, 17.0, 21.0)],
                    suspect: vec![(4.0, 20.0)],
                },
                Series {
                    label: "serial".into(),
                    points: vec![(1.0, 9.0), (4.0, 9.0)],
                    dashed: true,
                    ranges: vec![],
                    suspect: vec![],
                },
            ],
            markers: vec![Marker { x: 3.0, label: "L3".into() }],
            x_ticks: Some(vec![1.0, 2.0, 4.0]),
        }
    }

    #[test]
    fn svg_and_png_are_drawn() {
        let text = String::from_utf8(render(&chart(true), ImageFormat::Svg).unwrap()).unwrap();
        assert!(text.starts_with("<svg"));
        let texts = svg_texts(&text);
        for label in ["procs", "serial", "L3", "workers", "GB/s", "test"] {
            assert!(texts.iter().any(|t| t == label), "{label} in {texts:?}");
        }
        assert_eq!(&render(&chart(false), ImageFormat::Png).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(ImageFormat::of(std::path::Path::new("x.GIF")), None);
        assert_eq!(ImageFormat::of(std::path::Path::new("x.PNG")), Some(ImageFormat::Png));
    }

    #[test]
    fn the_legend_goes_where_it_hides_nothing() {
        // A line falling to the lower right: the legend moves to the lower left.
        let falling = Chart {
            series: vec![Series {
                label: "s".into(),
                points: vec![(0.0, 50.0), (10.0, 5.0)],
                dashed: false,
                ranges: vec![],
                suspect: vec![],
            }],
            markers: vec![],
            ..chart(false)
        };
        assert_eq!(legend_corner(&samples(&falling, |x, y| (x / 10.0, y / 50.0), &[])), Corner::LowerLeft);
        // A flat high line leaves the lower right free.
        let high = Chart {
            series: vec![Series {
                label: "s".into(),
                points: vec![(0.0, 40.0), (10.0, 45.0)],
                dashed: false,
                ranges: vec![],
                suspect: vec![],
            }],
            ..falling.clone()
        };
        assert_eq!(legend_corner(&samples(&high, |x, y| (x / 10.0, y / 50.0), &[])), Corner::LowerRight);
        // Spread bars count too.
        let bars = Chart {
            series: vec![Series {
                label: "s".into(),
                points: vec![(0.0, 40.0), (10.0, 45.0)],
                dashed: false,
                ranges: vec![(10.0, 1.0, 45.0)],
                suspect: vec![],
            }],
            ..falling
        };
        assert_ne!(legend_corner(&samples(&bars, |x, y| (x / 10.0, y / 50.0), &[])), Corner::LowerRight);
    }

    #[test]
    fn marker_labels_stay_inside_and_apart() {
        // Near the right edge a label runs leftwards, inside the plot.
        let p = place_labels(&[(0.2, 20), (0.95, 20)]);
        assert!(!p[0].leftwards && p[1].leftwards);
        assert!(p.iter().all(|p| 0.0 <= p.from && p.to <= 1.0));
        assert_eq!((p[0].row, p[1].row), (0, 0), "far apart: one row");
        // Two labels that would overlap take two rows.
        let p = place_labels(&[(0.40, 30), (0.50, 30)]);
        assert_eq!((p[0].row, p[1].row), (0, 1));
    }
}
