//! The figures, drawn with plotters' SVG backend into strings.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::ReportError;
use crate::mcmc::{Kind, Row};
use crate::regions::{Hist, VOLCANO_NX, VOLCANO_NY, VOLCANO_X, Volcano};

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

/// Label of the value 10^`v` (axes drawn on a log10 scale).
pub(crate) fn pow10_label(v: f64) -> String {
    let x = 10f64.powf(v);
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
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
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
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(190, 190, 190))
        .draw()
        .map_err(err)
}

/// Volcano plot: posterior mean of Δ against P(|Δ| > δ₀), called regions in red; the exact
/// points for small runs, a grid of counts (opacity ∝ log count) for large ones.
pub(crate) fn volcano(v: &Volcano, label: &str, delta0: Option<f64>) -> Result<String, ReportError> {
    let cell_w = (VOLCANO_X.1 - VOLCANO_X.0) / VOLCANO_NX as f64;
    let cell_h = 1.0 / VOLCANO_NY as f64;
    let cells = |bins: &[u32]| {
        bins.iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| (i % VOLCANO_NX, i / VOLCANO_NX, *c))
            .collect::<Vec<_>>()
    };
    let called = cells(&v.called_bins);
    let other = cells(&v.other_bins);
    let max_abs = if v.binned {
        called
            .iter()
            .chain(&other)
            .map(|&(ix, _, _)| {
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
    let n_called: u64 = v.called_bins.iter().map(|&c| u64::from(c)).sum();
    let n_other: u64 = v.other_bins.iter().map(|&c| u64::from(c)).sum();
    svg("volcano", 960, 560, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(16)
            .x_label_area_size(56)
            .y_label_area_size(72)
            .build_cartesian_2d(-half..half, -0.02..1.04)
            .map_err(err)?;
        mesh!(chart, format!("posterior mean of Δ ({label})"), "P(|Δ| > δ₀)")
            .x_label_formatter(&|x| tidy(*x, 2))
            .y_label_formatter(&|y| tidy(*y, 2))
            .draw()
            .map_err(err)?;
        if let Some(d) = delta0 {
            for x in [-d, d] {
                chart
                    .draw_series(DashedLineSeries::new(
                        [(x, -0.02), (x, 1.04)],
                        6,
                        4,
                        GREY.mix(0.8).stroke_width(1),
                    ))
                    .map_err(err)?;
            }
        }
        let other_label = format!("not called ({n_other})");
        let called_label = format!("called ({n_called})");
        if v.binned {
            let max = called
                .iter()
                .chain(&other)
                .map(|c| c.2)
                .max()
                .unwrap_or(1)
                .max(1);
            let alpha = |c: u32| 0.2 + 0.8 * (f64::from(c).ln_1p() / f64::from(max).ln_1p());
            let rect = |&(ix, iy, c): &(usize, usize, u32), color: RGBColor| {
                let x0 = VOLCANO_X.0 + ix as f64 * cell_w;
                let y0 = iy as f64 * cell_h;
                Rectangle::new(
                    [(x0, y0), (x0 + cell_w, y0 + cell_h)],
                    color.mix(alpha(c)).filled(),
                )
            };
            chart
                .draw_series(other.iter().map(|c| rect(c, GREY)))
                .map_err(err)?
                .label(other_label)
                .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], GREY.filled()));
            chart
                .draw_series(called.iter().map(|c| rect(c, RED)))
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

/// Draws a histogram's non-empty range (widened to include `must_show`) as bars; bars whose
/// left edge is at or above `split` are drawn in `high` instead of `low`.
#[allow(clippy::too_many_arguments)]
fn histogram(
    figure: &'static str,
    h: &Hist,
    must_show: (f64, f64),
    x_desc: &str,
    log_x: bool,
    split: Option<(f64, RGBColor)>,
    low: RGBColor,
    vline: Option<(f64, String)>,
) -> Result<String, ReportError> {
    let w = h.width();
    let (first, last) = h.extent().unwrap_or((0, h.counts.len()));
    let x0 = (h.lo + first as f64 * w).min(must_show.0);
    let x1 = (h.lo + last as f64 * w).max(must_show.1);
    let pad = 0.02 * (x1 - x0);
    let ymax = h.counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
    svg(figure, 960, 420, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(16)
            .x_label_area_size(56)
            .y_label_area_size(72)
            .build_cartesian_2d((x0 - pad)..(x1 + pad), 0.0..ymax)
            .map_err(err)?;
        let fmt_x = |x: &f64| if log_x { pow10_label(*x) } else { tidy(*x, 2) };
        mesh!(chart, x_desc, "regions")
            .x_label_formatter(&fmt_x)
            .y_label_formatter(&|y| tidy(*y, 0))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(h.counts.iter().enumerate().filter(|(_, c)| **c > 0).map(
                |(i, &c)| {
                    let left = h.lo + i as f64 * w;
                    let color = match split {
                        Some((s, high)) if left >= s => high,
                        _ => low,
                    };
                    Rectangle::new(
                        [(left, 0.0), (left + w * 0.95, c as f64)],
                        color.mix(0.85).filled(),
                    )
                },
            ))
            .map_err(err)?;
        if let Some((x, label)) = vline {
            chart
                .draw_series(DashedLineSeries::new(
                    [(x, 0.0), (x, ymax)],
                    8,
                    5,
                    RED.stroke_width(2),
                ))
                .map_err(err)?
                .label(label)
                .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], RED.stroke_width(2)));
            legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        }
        Ok(())
    })
}

/// k-hat histogram with the reliability threshold.
pub(crate) fn khat(h: &Hist, threshold: Option<f64>) -> Result<String, ReportError> {
    let t = threshold.filter(|t| t.is_finite());
    histogram(
        "k-hat",
        h,
        (0.0, t.unwrap_or(0.7).max(0.75)),
        "PSIS k-hat",
        false,
        t.map(|t| (t, RED)),
        PALETTE[0],
        t.map(|t| (t, format!("threshold {}", tidy(t, 3)))),
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
        h,
        (a, b),
        "posterior mean of the dispersion φ = 1 / (1 + κ)   (log scale)",
        true,
        None,
        PALETTE[2],
        None,
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
        legend(&mut chart, SeriesLabelPosition::UpperRight)
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
pub(crate) fn vb_vs_mcmc(rows: &[Row], moment: Moment, max_points: usize) -> Result<String, ReportError> {
    let step = rows.len().div_ceil(max_points.max(1)).max(1);
    let pick = |r: &Row| match moment {
        Moment::Mean => (r.mcmc_mean, r.vb_mean),
        Moment::Sd => (r.mcmc_sd, r.vb_sd),
    };
    let ok = |(x, y): (f64, f64)| match moment {
        Moment::Mean => x.is_finite() && y.is_finite(),
        Moment::Sd => x.is_finite() && y.is_finite() && x > 0.0 && y > 0.0,
    };
    let figure = match moment {
        Moment::Mean => "VB vs MCMC means",
        Moment::Sd => "VB vs MCMC sds",
    };
    let what = match moment {
        Moment::Mean => "posterior mean",
        Moment::Sd => "posterior sd",
    };
    svg(figure, 1000, 480, |root| {
        let panels = root.split_evenly((1, 2));
        for (panel, delta_panel) in panels.iter().zip([true, false]) {
            let sel: Vec<(Kind, (f64, f64))> = rows
                .iter()
                .step_by(step)
                .filter(|r| (r.kind == Kind::Delta) == delta_panel)
                .map(|r| (r.kind, pick(r)))
                .filter(|(_, p)| ok(*p))
                .collect();
            let title = if delta_panel {
                "Δ (methylation differences)"
            } else {
                "model parameters (a, b, k)"
            };
            let panel = panel.titled(title, (FONT, 17)).map_err(err)?;
            let (mut lo, mut hi) = sel.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |acc, (_, (x, y))| {
                (acc.0.min(x.min(*y)), acc.1.max(x.max(*y)))
            });
            if !(lo < hi) {
                (lo, hi) = match moment {
                    Moment::Mean => (lo.min(0.0) - 1.0, hi.max(0.0) + 1.0),
                    Moment::Sd => (0.01, 1.0),
                };
                if !lo.is_finite() || !hi.is_finite() {
                    (lo, hi) = match moment {
                        Moment::Mean => (-1.0, 1.0),
                        Moment::Sd => (0.01, 1.0),
                    };
                }
            }
            let x_desc = format!("MCMC {what}");
            let y_desc = format!("VB {what}");
            // One macro for both coordinate types (linear and log).
            macro_rules! draw_points {
                ($chart:expr) => {
                    for (k, kind) in Kind::ALL.iter().enumerate() {
                        let color = PALETTE[k % PALETTE.len()];
                        let pts: Vec<(f64, f64)> =
                            sel.iter().filter(|(q, _)| q == kind).map(|(_, p)| *p).collect();
                        if pts.is_empty() {
                            continue;
                        }
                        $chart
                            .draw_series(
                                pts.into_iter()
                                    .map(|p| Circle::new(p, 3, color.mix(0.7).filled())),
                            )
                            .map_err(err)?
                            .label(kind.label())
                            .legend(move |(x, y)| Circle::new((x + 5, y), 4, color.filled()));
                    }
                };
            }
            match moment {
                Moment::Mean => {
                    let pad = 0.05 * (hi - lo);
                    let r = (lo - pad)..(hi + pad);
                    let mut chart = ChartBuilder::on(&panel)
                        .margin(12)
                        .x_label_area_size(50)
                        .y_label_area_size(64)
                        .build_cartesian_2d(r.clone(), r.clone())
                        .map_err(err)?;
                    mesh!(chart, x_desc.as_str(), y_desc.as_str())
                        .x_label_formatter(&|x| tidy(*x, 2))
                        .y_label_formatter(&|y| tidy(*y, 2))
                        .draw()
                        .map_err(err)?;
                    chart
                        .draw_series(LineSeries::new([(r.start, r.start), (r.end, r.end)], GREY.stroke_width(1)))
                        .map_err(err)?
                        .label("identity")
                        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], GREY.stroke_width(1)));
                    draw_points!(chart);
                    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
                }
                Moment::Sd => {
                    let r = (lo / 1.25)..(hi * 1.25);
                    let mut chart = ChartBuilder::on(&panel)
                        .margin(12)
                        .x_label_area_size(50)
                        .y_label_area_size(64)
                        .build_cartesian_2d(r.clone().log_scale(), r.clone().log_scale())
                        .map_err(err)?;
                    mesh!(chart, format!("{x_desc} (log scale)"), format!("{y_desc} (log scale)"))
                        .x_label_formatter(&|x| tidy(*x, 3))
                        .y_label_formatter(&|y| tidy(*y, 3))
                        .draw()
                        .map_err(err)?;
                    chart
                        .draw_series(LineSeries::new([(r.start, r.start), (r.end, r.end)], GREY.stroke_width(1)))
                        .map_err(err)?
                        .label("identity")
                        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], GREY.stroke_width(1)));
                    draw_points!(chart);
                    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
                }
            }
        }
        Ok(())
    })
}
