//! The figures, drawn with plotters' SVG backend into strings.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::ReportError;
use crate::mcmc::{Kind, Row};
use crate::regions::{
    Hist, VOLCANO_COLS, VOLCANO_NX, VOLCANO_NY, VOLCANO_ROWS, VOLCANO_X, Volcano,
};

/// Not-called regions, grid lines, neutral series.
const GREY: RGBColor = RGBColor(110, 110, 110);
/// Called regions, thresholds.
const RED: RGBColor = RGBColor(204, 37, 41);
/// Colours of groups and quantity kinds (colour-blind safe "Okabe-Ito" order).
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
];
const FONT: &str = "sans-serif";

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = Result<(), String>;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Draws into a `width` × `height` SVG and returns it ready to inline in HTML: the XML
/// namespace attribute (an `http` URL, unnecessary inside HTML) is removed.
fn svg(
    figure: &'static str,
    width: u32,
    height: u32,
    draw: impl FnOnce(&Area<'_>) -> DrawResult,
) -> Result<String, ReportError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(err)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(err))
            .map_err(|message| ReportError::Plot { figure, message })?;
    }
    let out = out.replace(" xmlns=\"http://www.w3.org/2000/svg\"", "");
    Ok(out.replacen(
        "<svg ",
        &format!("<svg role=\"img\" aria-label=\"{figure} plot\" "),
        1,
    ))
}

/// A tick label with at most `digits` decimals and no trailing zeros.
pub(crate) fn tidy(v: f64, digits: usize) -> String {
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" { "0".into() } else { s }
}

/// `n` with thousands separators: 1234567 → "1,234,567".
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Decimals that tell apart ticks about `range / 8` apart.
pub(crate) fn decimals_for(range: f64) -> usize {
    let step = range / 8.0;
    if step.is_nan() || step <= 0.0 || !step.is_finite() {
        return 2;
    }
    (-step.log10().floor()).clamp(0.0, 6.0) as usize
}

/// `x` rounded to two significant digits (tick labels of log axes).
fn two_significant(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powf(x.log10().floor() - 1.0);
    (x / scale).round() * scale
}

/// Label of the value 10^`v` (axes drawn on a log10 scale).
pub(crate) fn pow10_label(v: f64) -> String {
    let x = two_significant(10f64.powf(v));
    if x >= 1e6 {
        format!("{}M", tidy(x / 1e6, 1))
    } else if x >= 1e3 {
        format!("{}k", tidy(x / 1e3, 1))
    } else if x >= 1.0 {
        tidy(x, 0)
    } else {
        let decimals = (-x.log10()).ceil().max(0.0) as usize;
        tidy(x, decimals + 1)
    }
}

/// Common mesh style.
macro_rules! mesh {
    ($chart:expr, $x:expr, $y:expr) => {
        $chart
            .configure_mesh()
            .x_desc($x)
            .y_desc($y)
            .label_style((FONT, 17))
            .axis_desc_style((FONT, 19))
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(222, 222, 222))
    };
}

/// Legend style.
fn legend<'a, 'b, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &'b mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> DrawResult {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, 17))
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(190, 190, 190))
        .draw()
        .map_err(err)
}

/// Volcano plot: posterior mean of Δ against P(|Δ| > δ₀), called regions in red; the exact
/// points for small runs, a grid of counts (opacity ∝ log count) for large ones.
pub(crate) fn volcano(
    v: &Volcano,
    label: &str,
    delta0: Option<f64>,
) -> Result<String, ReportError> {
    let cell_w = (VOLCANO_X.1 - VOLCANO_X.0) / VOLCANO_NX as f64;
    let occupied = |bins: &'_ [u32]| {
        bins.iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, _)| i % VOLCANO_NX)
            .collect::<Vec<_>>()
    };
    let max_abs = if v.binned {
        occupied(&v.called_bins)
            .into_iter()
            .chain(occupied(&v.other_bins))
            .map(|ix| {
                let x0 = VOLCANO_X.0 + ix as f64 * cell_w;
                x0.abs().max((x0 + cell_w).abs())
            })
            .fold(0.0, f64::max)
    } else {
        v.points
            .iter()
            .map(|p| f64::from(p.0).abs())
            .fold(0.0, f64::max)
    };
    let half = (max_abs * 1.08)
        .max(delta0.unwrap_or(0.0) * 1.5)
        .clamp(0.05, 1.0);
    // Coarsen the fine grid over the shown range to at most VOLCANO_COLS × VOLCANO_ROWS cells.
    let ix_lo = (((-half - VOLCANO_X.0) / cell_w).floor().max(0.0)) as usize;
    let ix_hi = (((half - VOLCANO_X.0) / cell_w).ceil() as usize).min(VOLCANO_NX);
    let bx = (ix_hi - ix_lo).div_ceil(VOLCANO_COLS).max(1);
    let by = VOLCANO_NY.div_ceil(VOLCANO_ROWS).max(1);
    let cols = (ix_hi - ix_lo).div_ceil(bx);
    let rows = VOLCANO_NY.div_ceil(by);
    let coarse = |bins: &[u32]| {
        let mut out = vec![0u64; cols * rows];
        for (i, &c) in bins.iter().enumerate() {
            let (ix, iy) = (i % VOLCANO_NX, i / VOLCANO_NX);
            if c > 0 && ix >= ix_lo && ix < ix_hi {
                out[(iy / by) * cols + (ix - ix_lo) / bx] += u64::from(c);
            }
        }
        out
    };
    let (called, other) = if v.binned {
        (coarse(&v.called_bins), coarse(&v.other_bins))
    } else {
        (Vec::new(), Vec::new())
    };
    let block_w = bx as f64 * cell_w;
    let block_h = by as f64 / VOLCANO_NY as f64;
    let n_called: u64 = v.called_bins.iter().map(|&c| u64::from(c)).sum();
    let n_other: u64 = v.other_bins.iter().map(|&c| u64::from(c)).sum();
    let digits = decimals_for(2.0 * half);
    svg("volcano", 960, 560, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(16)
            .x_label_area_size(56)
            .y_label_area_size(72)
            .build_cartesian_2d(-half..half, -0.02..1.2)
            .map_err(err)?;
        mesh!(
            chart,
            format!("posterior mean of Δ ({label})"),
            "P(|Δ| > δ₀)"
        )
        .x_label_formatter(&|x| tidy(*x, digits))
        // The band above 1 holds the legend; it has no ticks.
        .y_label_formatter(&|y| {
            if *y > 1.0001 {
                String::new()
            } else {
                tidy(*y, 1)
            }
        })
        .draw()
        .map_err(err)?;
        if let Some(d) = delta0 {
            for x in [-d, d] {
                chart
                    .draw_series(DashedLineSeries::new(
                        [(x, -0.02), (x, 1.0)],
                        6,
                        4,
                        GREY.mix(0.8).stroke_width(1),
                    ))
                    .map_err(err)?;
            }
        }
        let other_label = format!("not called ({})", thousands(n_other));
        let called_label = format!("called ({})", thousands(n_called));
        if v.binned {
            let max = called
                .iter()
                .chain(&other)
                .copied()
                .max()
                .unwrap_or(1)
                .max(1);
            let alpha = |c: u64| 0.3 + 0.7 * ((c as f64).ln_1p() / (max as f64).ln_1p());
            let rects = |grid: &[u64], color: RGBColor| {
                grid.iter()
                    .enumerate()
                    .filter(|(_, c)| **c > 0)
                    .map(|(k, &c)| {
                        let x0 = VOLCANO_X.0 + ix_lo as f64 * cell_w + (k % cols) as f64 * block_w;
                        let y0 = (k / cols) as f64 * block_h;
                        Rectangle::new(
                            [(x0, y0), (x0 + block_w, y0 + block_h)],
                            color.mix(alpha(c)).filled(),
                        )
                    })
                    .collect::<Vec<_>>()
            };
            chart
                .draw_series(rects(&other, GREY))
                .map_err(err)?
                .label(other_label)
                .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], GREY.filled()));
            chart
                .draw_series(rects(&called, RED))
                .map_err(err)?
                .label(called_label)
                .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], RED.filled()));
        } else {
            let pts = |want: bool| {
                v.points
                    .iter()
                    .filter(move |p| p.2 == want)
                    .map(|p| (f64::from(p.0), f64::from(p.1)))
            };
            chart
                .draw_series(pts(false).map(|p| Circle::new(p, 3, GREY.mix(0.45).filled())))
                .map_err(err)?
                .label(other_label)
                .legend(|(x, y)| Circle::new((x + 5, y), 4, GREY.filled()));
            chart
                .draw_series(pts(true).map(|p| Circle::new(p, 4, RED.mix(0.85).filled())))
                .map_err(err)?
                .label(called_label)
                .legend(|(x, y)| Circle::new((x + 5, y), 4, RED.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::UpperMiddle)
    })
}

/// One layer of a stacked histogram: counts, colour and legend label.
type Layer<'a> = (&'a Hist, RGBColor, Option<String>);

/// Draws stacked histograms (same bins) over their non-empty range widened to include
/// `must_show`, with optional dashed vertical lines (one legend entry).
fn histogram(
    figure: &'static str,
    layers: &[Layer<'_>],
    must_show: (f64, f64),
    x_desc: &str,
    log_x: bool,
    vlines: (&[f64], Option<String>),
) -> Result<String, ReportError> {
    let Some(base) = layers.first().map(|l| l.0) else {
        return svg(figure, 960, 420, |_| Ok(()));
    };
    let w = base.width();
    let bins = base.counts.len();
    let total = |i: usize| -> u64 {
        layers
            .iter()
            .map(|l| l.0.counts.get(i).copied().unwrap_or(0))
            .sum()
    };
    let first = (0..bins).find(|&i| total(i) > 0).unwrap_or(0);
    let last = (0..bins)
        .rev()
        .find(|&i| total(i) > 0)
        .map_or(bins, |i| i + 1);
    let x0 = (base.lo + first as f64 * w).min(must_show.0);
    let x1 = (base.lo + last as f64 * w).max(must_show.1);
    let pad = 0.02 * (x1 - x0);
    let ymax = (0..bins).map(total).max().unwrap_or(1).max(1) as f64 * 1.12;
    let digits = decimals_for(x1 - x0);
    svg(figure, 960, 420, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(16)
            .x_label_area_size(56)
            .y_label_area_size(72)
            .build_cartesian_2d((x0 - pad)..(x1 + pad), 0.0..ymax)
            .map_err(err)?;
        let fmt_x = |x: &f64| {
            if log_x {
                pow10_label(*x)
            } else {
                tidy(*x, digits)
            }
        };
        mesh!(chart, x_desc, "regions")
            .x_label_formatter(&fmt_x)
            .y_label_formatter(&|y| tidy(*y, 0))
            .draw()
            .map_err(err)?;
        let mut bottom = vec![0u64; bins];
        let mut labelled = false;
        for (h, color, label) in layers {
            let color = *color;
            let bars: Vec<_> = h
                .counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(i, &c)| {
                    let left = h.lo + i as f64 * w;
                    let b = bottom[i] as f64;
                    Rectangle::new(
                        [(left, b), (left + w * 0.92, b + c as f64)],
                        color.mix(0.85).filled(),
                    )
                })
                .collect();
            for (b, c) in bottom.iter_mut().zip(&h.counts) {
                *b += c;
            }
            let series = chart.draw_series(bars).map_err(err)?;
            if let Some(label) = label {
                labelled = true;
                series.label(label.clone()).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
            }
        }
        let (lines, line_label) = vlines;
        for (k, &x) in lines.iter().enumerate() {
            let series = chart
                .draw_series(DashedLineSeries::new(
                    [(x, 0.0), (x, ymax)],
                    8,
                    5,
                    BLACK.stroke_width(2),
                ))
                .map_err(err)?;
            if k == 0
                && let Some(label) = &line_label
            {
                labelled = true;
                series.label(label.clone()).legend(|(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], BLACK.stroke_width(2))
                });
            }
        }
        if labelled {
            legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        }
        Ok(())
    })
}

/// k-hat histogram, reliable and unreliable regions stacked, with the reliability thresholds.
pub(crate) fn khat(
    reliable: &Hist,
    unreliable: &Hist,
    thresholds: &[f64],
) -> Result<String, ReportError> {
    let shown: Vec<f64> = thresholds
        .iter()
        .copied()
        .filter(|t| t.is_finite())
        .take(4)
        .collect();
    let max_t = shown.iter().copied().fold(0.7, f64::max);
    let label = match shown.len() {
        0 => None,
        1 => Some(format!("threshold {}", tidy(shown[0], 3))),
        _ => Some(format!(
            "thresholds {}",
            shown
                .iter()
                .map(|t| tidy(*t, 3))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    };
    histogram(
        "k-hat",
        &[
            (
                reliable,
                PALETTE[0],
                Some(format!(
                    "reliable ({})",
                    thousands(reliable.counts.iter().sum::<u64>())
                )),
            ),
            (
                unreliable,
                RED,
                Some(format!(
                    "unreliable ({})",
                    thousands(unreliable.counts.iter().sum::<u64>())
                )),
            ),
        ],
        (0.0, max_t + 0.05),
        "PSIS k-hat",
        false,
        (&shown, label),
    )
}

/// Dispersion histogram (log10 φ).
pub(crate) fn dispersion(h: &Hist) -> Result<String, ReportError> {
    let (a, b) = match h.extent() {
        Some((f, l)) => (h.lo + f as f64 * h.width(), h.lo + l as f64 * h.width()),
        None => (-2.0, 0.0),
    };
    histogram(
        "dispersion",
        &[(h, PALETTE[2], None)],
        (a, b),
        "posterior mean of the dispersion φ = 1 / (1 + κ)   (log scale)",
        true,
        (&[], None),
    )
}

/// Per-group coverage distributions (log10 coverage), one step line per group.
pub(crate) fn coverage(groups: &[String], hists: &[Hist]) -> Result<String, ReportError> {
    let Some(first) = hists.first() else {
        return svg("coverage", 960, 420, |_| Ok(()));
    };
    let w = first.width();
    let (mut lo, mut hi) = (usize::MAX, 0);
    for h in hists {
        if let Some((a, b)) = h.extent() {
            lo = lo.min(a);
            hi = hi.max(b);
        }
    }
    if lo >= hi {
        (lo, hi) = (0, first.counts.len());
    }
    let x0 = first.lo + lo as f64 * w;
    let x1 = first.lo + hi as f64 * w;
    let pad = 0.02 * (x1 - x0).max(w);
    let ymax = hists
        .iter()
        .flat_map(|h| h.counts.iter().copied())
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.15;
    svg("coverage", 960, 420, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(16)
            .x_label_area_size(56)
            .y_label_area_size(72)
            .build_cartesian_2d((x0 - pad)..(x1 + pad), 0.0..ymax)
            .map_err(err)?;
        mesh!(
            chart,
            "reads over the region's sites and the group's samples (log scale)",
            "regions"
        )
        .x_label_formatter(&|x| pow10_label(*x))
        .y_label_formatter(&|y| tidy(*y, 0))
        .draw()
        .map_err(err)?;
        for (k, (g, h)) in groups.iter().zip(hists).enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let mut line = Vec::with_capacity(2 * (hi - lo) + 2);
            line.push((h.lo + lo as f64 * w, 0.0));
            for i in lo..hi {
                let c = h.counts[i] as f64;
                line.push((h.lo + i as f64 * w, c));
                line.push((h.lo + (i + 1) as f64 * w, c));
            }
            line.push((h.lo + hi as f64 * w, 0.0));
            chart
                .draw_series(LineSeries::new(line, color.stroke_width(2)))
                .map_err(err)?
                .label(g.clone())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], color.stroke_width(3))
                });
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}

/// Which audit statistic a scatter shows.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Moment {
    /// Posterior means, linear axes.
    Mean,
    /// Posterior standard deviations, log axes.
    Sd,
}

/// VB against MCMC (means or sds), Δ quantities on the left, model parameters on the right,
/// each with the identity line. At most `max_points` rows are drawn (every k-th row).
pub(crate) fn vb_vs_mcmc(
    rows: &[Row],
    moment: Moment,
    max_points: usize,
) -> Result<String, ReportError> {
    let step = rows.len().div_ceil(max_points.max(1)).max(1);
    let pick = |r: &Row| match moment {
        Moment::Mean => (r.mcmc_mean, r.vb_mean),
        Moment::Sd => (r.mcmc_sd, r.vb_sd),
    };
    let (figure, what) = match moment {
        Moment::Mean => ("VB vs MCMC means", "posterior mean"),
        Moment::Sd => ("VB vs MCMC sds", "posterior sd"),
    };
    svg(figure, 1000, 500, |root| {
        let panels = root.split_evenly((1, 2));
        for (panel, delta_panel) in panels.iter().zip([true, false]) {
            let sel: Vec<(Kind, (f64, f64))> = rows
                .iter()
                .step_by(step)
                .filter(|r| (r.kind == Kind::Delta) == delta_panel)
                .map(|r| (r.kind, pick(r)))
                .filter(|(_, (x, y))| x.is_finite() && y.is_finite())
                .collect();
            let title = if delta_panel {
                "Δ (methylation differences)"
            } else {
                "model parameters (a, b, w, k)"
            };
            let panel = panel.titled(title, (FONT, 21)).map_err(err)?;
            let (mut lo, mut hi) = sel
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |acc, (_, (x, y))| {
                    (acc.0.min(x.min(*y)), acc.1.max(x.max(*y)))
                });
            if let Moment::Sd = moment {
                // Standard deviations: start the axes at zero.
                lo = lo.min(0.0);
            }
            if !lo.is_finite() || !hi.is_finite() {
                (lo, hi) = (0.0, 1.0);
            } else if lo >= hi {
                (lo, hi) = (lo - 0.5 * lo.abs().max(0.1), hi + 0.5 * hi.abs().max(0.1));
            }
            let pad = 0.05 * (hi - lo);
            let r = (lo - pad)..(hi + pad);
            let digits = decimals_for(hi - lo);
            let mut chart = ChartBuilder::on(&panel)
                .margin(12)
                .x_label_area_size(50)
                .y_label_area_size(70)
                .build_cartesian_2d(r.clone(), r.clone())
                .map_err(err)?;
            mesh!(chart, format!("MCMC {what}"), format!("VB {what}"))
                .x_labels(6)
                .y_labels(6)
                .x_label_formatter(&|x| tidy(*x, digits))
                .y_label_formatter(&|y| tidy(*y, digits))
                .draw()
                .map_err(err)?;
            chart
                .draw_series(LineSeries::new(
                    [(r.start, r.start), (r.end, r.end)],
                    GREY.stroke_width(1),
                ))
                .map_err(err)?
                .label("identity")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], GREY.stroke_width(1)));
            for (k, kind) in Kind::ALL.iter().enumerate() {
                let color = PALETTE[k % PALETTE.len()];
                let mut pts = sel.iter().filter(|(q, _)| q == kind).peekable();
                if pts.peek().is_none() {
                    continue;
                }
                chart
                    .draw_series(pts.map(|(_, p)| Circle::new(*p, 3, color.mix(0.7).filled())))
                    .map_err(err)?
                    .label(kind.label())
                    .legend(move |(x, y)| Circle::new((x + 5, y), 4, color.filled()));
            }
            legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        }
        Ok(())
    })
}

/// P(|Δ| > δ₀) under VB (y) against NUTS (x) for the audited Δ rows, with the identity line and
/// the decision thresholds of a call's usual range. `None` when no row has both values.
pub(crate) fn prob_dm_agreement(rows: &[Row]) -> Result<Option<String>, ReportError> {
    let pts: Vec<(f64, f64, bool)> = rows
        .iter()
        .filter(|r| r.kind == Kind::Delta && r.vb_prob_dm.is_finite() && r.mcmc_prob_dm.is_finite())
        .map(|r| (r.mcmc_prob_dm, r.vb_prob_dm, r.selected_by == "flagged"))
        .collect();
    if pts.is_empty() {
        return Ok(None);
    }
    svg("VB vs MCMC prob_dm", 560, 520, |root| {
        let r = -0.02..1.02;
        let mut chart = ChartBuilder::on(root)
            .margin(14)
            .x_label_area_size(50)
            .y_label_area_size(64)
            .build_cartesian_2d(r.clone(), r.clone())
            .map_err(err)?;
        mesh!(
            chart,
            "prob_dm under NUTS (exact posterior)",
            "prob_dm under VB"
        )
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&|x| tidy(*x, 1))
        .y_label_formatter(&|y| tidy(*y, 1))
        .draw()
        .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                GREY.stroke_width(1),
            ))
            .map_err(err)?
            .label("identity")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], GREY.stroke_width(1)));
        for (flagged, color, label) in [
            (false, PALETTE[0], "random sample"),
            (true, RED, "flagged (reliable = false)"),
        ] {
            let mut sel = pts.iter().filter(|p| p.2 == flagged).peekable();
            if sel.peek().is_none() {
                continue;
            }
            chart
                .draw_series(sel.map(|&(x, y, _)| Circle::new((x, y), 4, color.mix(0.75).filled())))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| Circle::new((x + 5, y), 4, color.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
    .map(Some)
}

/// Radius in pixels of a sample's point at a site with `n` reads (area grows with coverage,
/// capped so deep sites do not cover the panel).
pub(crate) fn point_radius(n: u32) -> i32 {
    (2.0 + 1.2 * f64::from(n).sqrt()).min(12.0).round() as i32
}

/// One region drawn per CpG: each sample's methylation m/n at each site (colour = group, point
/// area by coverage), and each group's fitted level θ_g (posterior mean, solid line) with its
/// 95% interval (shaded band) across the region.
pub(crate) fn region_sites(
    top: &crate::TopRegion,
    sites: &crate::RegionSites,
    sample_groups: &[String],
    groups: &[String],
) -> Result<String, ReportError> {
    let s_count = sample_groups.len();
    let group_of: Vec<usize> = sample_groups
        .iter()
        .map(|g| groups.iter().position(|x| x == g).unwrap_or(0))
        .collect();
    svg("per-CpG", 620, 340, |root| {
        let (lo, hi) = (top.start as f64, top.end.max(top.start + 1) as f64);
        let pad = 0.03 * (hi - lo);
        let x = (lo - pad)..(hi + pad);
        let mut chart = ChartBuilder::on(root)
            .margin(10)
            .caption(
                format!(
                    "#{} {}  {}:{}-{}",
                    top.rank,
                    top.region_id,
                    top.chrom,
                    top.start + 1,
                    top.end
                ),
                (FONT, 18),
            )
            .x_label_area_size(42)
            .y_label_area_size(56)
            .build_cartesian_2d(x, -0.03..1.03)
            .map_err(err)?;
        mesh!(chart, "position (1-based)", "methylation m/n")
            .x_labels(5)
            .y_labels(6)
            .x_label_formatter(&|v| format!("{}", (*v as u64) + 1))
            .y_label_formatter(&|v| tidy(*v, 1))
            .draw()
            .map_err(err)?;
        for (g, name) in groups.iter().enumerate() {
            let color = PALETTE[g % PALETTE.len()];
            if let Some(&(mean, q025, q975)) = top.theta.get(g)
                && mean.is_finite()
            {
                if q025.is_finite() && q975.is_finite() {
                    chart
                        .draw_series([Rectangle::new(
                            [(lo, q025), (hi, q975)],
                            color.mix(0.15).filled(),
                        )])
                        .map_err(err)?;
                }
                chart
                    .draw_series(LineSeries::new(
                        [(lo, mean), (hi, mean)],
                        color.stroke_width(2),
                    ))
                    .map_err(err)?
                    .label(format!(
                        "{name}: θ {} [{}, {}]",
                        tidy(mean, 3),
                        tidy(q025, 3),
                        tidy(q975, 3)
                    ))
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2))
                    });
            }
            let pts: Vec<(f64, f64, u32)> = sites
                .positions
                .iter()
                .enumerate()
                .flat_map(|(j, &pos)| {
                    (0..s_count)
                        .filter(|&s| group_of[s] == g)
                        .map(move |s| (j, pos, s))
                })
                .filter_map(|(j, pos, s)| {
                    let n = sites.coverage[j * s_count + s];
                    (n > 0).then(|| {
                        let m = sites.methylated[j * s_count + s];
                        (pos as f64, f64::from(m) / f64::from(n), n)
                    })
                })
                .collect();
            chart
                .draw_series(pts.into_iter().map(|(x, y, n)| {
                    Circle::new((x, y), point_radius(n), color.mix(0.55).filled())
                }))
                .map_err(err)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}
