//! The HTML page: inline style sheet, summary tables and the SVG figures.

use std::fmt::Write;
use std::path::Path;

use serde_json::Value;

use crate::ReportError;
use crate::mcmc::{McmcSummary, RHAT_LIMIT, Row};
use crate::plots::{self, Moment, thousands, tidy};
use crate::regions::RegionsScan;

/// What the page is made from.
pub(crate) struct Inputs<'a> {
    pub dir: &'a Path,
    pub scan: &'a RegionsScan,
    pub run: Option<&'a Value>,
    pub hyper: Option<&'a Value>,
    pub mcmc: Option<(&'a [Row], &'a McmcSummary)>,
    pub max_points: usize,
    pub sites: Option<&'a crate::CpgData>,
}

const STYLE: &str = "
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif;
  color: #1d232a; background: #f5f6f8; margin: 0; line-height: 1.45; }
main { max-width: 1040px; margin: 0 auto; padding: 24px 28px 48px; background: #fff;
  box-shadow: 0 0 0 1px #e3e6ea; }
header h1 { margin: 0 0 4px; font-size: 28px; }
header p { margin: 0; color: #5a6570; }
nav { margin: 16px 0 8px; padding: 8px 12px; background: #f0f3f6; border-radius: 6px; }
nav a { margin-right: 16px; color: #0b5cad; text-decoration: none; }
section { margin-top: 32px; }
h2 { font-size: 21px; border-bottom: 2px solid #e3e6ea; padding-bottom: 4px; }
h3 { font-size: 17px; margin-bottom: 6px; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 14px; }
th, td { text-align: left; padding: 4px 12px 4px 8px; border-bottom: 1px solid #eceff2;
  vertical-align: top; }
th { font-weight: 600; color: #36414c; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td, tr:nth-child(even) th { background: #fafbfc; }
code { font-family: ui-monospace, 'SFMono-Regular', Menlo, Consolas, monospace; font-size: 13px;
  background: #f0f3f6; padding: 1px 4px; border-radius: 3px; word-break: break-all; }
figure { margin: 12px 0 20px; }
figure svg { display: block; max-width: 100%; height: auto; border: 1px solid #eceff2; }
figcaption { font-size: 14px; color: #4a5560; margin-top: 6px; }
.note { background: #fff8e5; border-left: 4px solid #e6a700; padding: 8px 12px; }
.warn { color: #b3261e; font-weight: 600; }
.cols { display: flex; gap: 32px; flex-wrap: wrap; }
footer { margin-top: 40px; font-size: 13px; color: #6b7680; }
.sorter > input { position: absolute; opacity: 0; pointer-events: none; }
.sorter tbody { display: none; }
#sort-rank:checked ~ table tbody.by-rank, #sort-pos:checked ~ table tbody.by-pos,
#sort-delta:checked ~ table tbody.by-delta, #sort-lfsr:checked ~ table tbody.by-lfsr
  { display: table-row-group; }
.sorter th label { cursor: pointer; color: #0b5cad; white-space: nowrap; }
.sorter th label::after { content: ' ⇅'; color: #9aa5b1; }
#sort-rank:checked ~ table label[for=sort-rank], #sort-pos:checked ~ table label[for=sort-pos],
#sort-delta:checked ~ table label[for=sort-delta], #sort-lfsr:checked ~ table label[for=sort-lfsr]
  { font-weight: 700; text-decoration: underline; }
.panels { display: flex; flex-wrap: wrap; gap: 12px; }
.panels figure { width: 480px; margin: 0; }
td.hash { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
";

/// Escapes text for HTML element content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A JSON value as shown in a table cell (integers as written, floats to 4 significant decimals).
fn show(v: &Value) -> String {
    match v {
        Value::Number(n) if n.is_u64() || n.is_i64() => n.to_string(),
        Value::Number(n) => n.as_f64().map(|x| tidy(x, 4)).unwrap_or_default(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::Null => "—".into(),
        other => other.to_string(),
    }
}

/// Seconds as shown in the table.
pub(crate) fn seconds(x: f64) -> String {
    format!("{x:.1} s")
}

/// Rows of a key–value table; each `<tr>` carries the JSON pointer it came from.
struct Table(String);

impl Table {
    fn new() -> Self {
        Table(String::from("<table>\n"))
    }
    fn row(&mut self, key: &str, label: &str, value_html: &str) {
        let _ = writeln!(
            self.0,
            "<tr data-key=\"{}\"><th>{}</th><td>{}</td></tr>",
            esc(key),
            esc(label),
            value_html
        );
    }
    /// A row from `run.json` at `pointer`, when present.
    fn json(&mut self, run: Option<&Value>, pointer: &str, label: &str) {
        if let Some(v) = run.and_then(|r| r.pointer(pointer))
            && !v.is_null()
        {
            self.row(pointer, label, &esc(&show(v)));
        }
    }
    fn finish(mut self) -> String {
        self.0.push_str("</table>\n");
        self.0
    }
}

fn friendly(key: &str) -> String {
    match key {
        "sites_read" => "sites read".into(),
        "cells_masked_min_cov" => "cells masked by --min-cov".into(),
        "sites_dropped_min_cov" => "sites dropped: below --min-cov".into(),
        "sites_dropped_min_samples_per_group" => "sites dropped: too few samples per group".into(),
        "sites_outside_regions" => "sites outside regions".into(),
        "sites_in_regions" => "sites in regions".into(),
        "regions_emitted" => "regions emitted".into(),
        "sites_in_emitted_regions" => "sites in emitted regions".into(),
        "regions_dropped_too_few_sites" => "regions dropped: too few sites".into(),
        "regions_dropped_no_sites" => "regions dropped: no sites".into(),
        other => other.replace('_', " "),
    }
}

fn summary_section(inp: &Inputs<'_>) -> String {
    let run = inp.run;
    let meta = |k: &str| {
        inp.scan
            .metadata
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let mut s = String::from("<section id=\"summary\">\n<h2>Run summary</h2>\n");
    if run.is_none() {
        s.push_str(
            "<p class=\"note\">No run.json in this directory (for example after <code>methvb \
             gather</code>): the summary comes from the metadata of regions.parquet.</p>\n",
        );
    }
    let mut t = Table::new();
    match run {
        Some(_) => {
            t.json(run, "/version", "methvb version");
            t.json(run, "/model_version", "model version");
            if let Some(c) = run
                .and_then(|r| r.pointer("/command"))
                .and_then(Value::as_str)
            {
                t.row("/command", "command", &format!("<code>{}</code>", esc(c)));
            }
            t.json(run, "/seed", "seed");
        }
        None => {
            for (k, label) in [
                ("methvb.version", "methvb version"),
                ("methvb.model_version", "model version"),
                ("methvb.seed", "seed"),
            ] {
                if let Some(v) = meta(k) {
                    t.row(k, label, &esc(&v));
                }
            }
            if let Some(v) = meta("methvb.command") {
                t.row(
                    "methvb.command",
                    "command",
                    &format!("<code>{}</code>", esc(&v)),
                );
            }
        }
    }
    if let Some(inputs) = run.and_then(|r| r.get("inputs")).and_then(Value::as_array) {
        let groups: Vec<String> = match run.and_then(|r| r.get("groups")).and_then(Value::as_array)
        {
            Some(g) => g
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            None => inp.scan.groups.clone(),
        };
        let per_group: Vec<String> = groups
            .iter()
            .map(|g| {
                let n = inputs
                    .iter()
                    .filter(|i| i.get("group").and_then(Value::as_str) == Some(g))
                    .count();
                format!("{} {n}", esc(g))
            })
            .collect();
        t.row(
            "/inputs",
            "samples",
            &format!("{} ({})", inputs.len(), per_group.join(", ")),
        );
    }
    if !inp.scan.groups.is_empty() {
        t.row(
            "groups",
            "groups (reference first)",
            &esc(&inp.scan.groups.join(", ")),
        );
    }
    t.json(run, "/fit_options/delta0", "δ₀ (effect size that matters)");
    t.json(run, "/fdr", "FDR target");
    if run.is_none() {
        if let Some(v) = meta("methvb.delta0") {
            t.row("methvb.delta0", "δ₀ (effect size that matters)", &esc(&v));
        }
        if let Some(v) = meta("methvb.fdr") {
            t.row("methvb.fdr", "FDR target", &esc(&v));
        }
    }
    t.row(
        "regions.parquet/rows",
        "rows of the results table (regions.parquet; dmrs.parquet of dmr)",
        &inp.scan.rows.to_string(),
    );
    t.json(run, "/pass2/pass/regions_used", "regions used (pass 2)");
    if let Some(regions) = run
        .and_then(|r| r.pointer("/pass2/pass/regions"))
        .and_then(Value::as_object)
    {
        for (k, v) in regions {
            if k.starts_with("regions_dropped")
                || k.starts_with("sites_dropped")
                || k == "sites_outside_regions"
                || k == "cells_masked_min_cov"
            {
                t.row(
                    &format!("/pass2/pass/regions/{k}"),
                    &friendly(k),
                    &esc(&show(v)),
                );
            }
        }
    }
    t.json(run, "/pass2/regions_called", "regions called");
    t.json(run, "/dmr/clusters", "CpG clusters scanned (dmr)");
    t.json(run, "/dmr/candidates", "candidate DMRs fitted");
    t.json(run, "/dmr/called", "DMRs called");
    t.json(run, "/dmr/unreliable", "unreliable DMR candidates");
    t.json(
        run,
        "/pass2/regions_unreliable",
        "unreliable (the verdict: reliable = false)",
    );
    t.json(run, "/pass2/regions_not_converged", "not converged");
    if run.is_none() {
        if let Some(c) = inp.scan.called {
            t.row("regions.parquet/called", "regions called", &c.to_string());
        }
        t.row(
            "regions.parquet/unreliable",
            "unreliable (the verdict: reliable = false)",
            &inp.scan.unreliable.to_string(),
        );
        t.row(
            "regions.parquet/not_converged",
            "not converged",
            &inp.scan.not_converged.to_string(),
        );
    }
    for (pointer, label) in [
        ("/pass1/seconds", "time, pass 1 (learning Theta)"),
        ("/pass2/pass/seconds", "time, pass 2 (fitting every region)"),
        ("/seconds_total", "time, total"),
        (
            "/mcmc_check/total_seconds",
            "time, MCMC audit (summed over audited regions)",
        ),
    ] {
        if let Some(x) = run.and_then(|r| r.pointer(pointer)).and_then(Value::as_f64) {
            t.row(pointer, label, &seconds(x));
        }
    }
    if let Some(h) = inp.hyper {
        let epochs = h.get("epochs").map(show).unwrap_or_default();
        let conv = h.get("converged").map(show).unwrap_or_default();
        let sampled = h.get("regions_sampled").map(show).unwrap_or_default();
        t.row(
            "hyper.json",
            "empirical Bayes",
            &esc(&format!(
                "{epochs} epochs on {sampled} sampled regions, converged: {conv}"
            )),
        );
    }
    s.push_str(&t.finish());
    s.push_str(&inputs_table(run));

    // Theta: run.json, else hyper.json, else the Parquet metadata.
    let from_meta = meta("methvb.theta").and_then(|t| serde_json::from_str::<Value>(&t).ok());
    let theta = run
        .and_then(|r| r.get("theta"))
        .or_else(|| inp.hyper.and_then(|h| h.get("theta")))
        .or(from_meta.as_ref())
        .and_then(Value::as_object);
    if let Some(theta) = theta {
        s.push_str("<h3>Hyperparameters Θ (shared by all regions)</h3>\n<table>\n<tr>");
        for k in theta.keys() {
            let _ = write!(s, "<th>{}</th>", esc(k));
        }
        s.push_str("</tr>\n<tr>");
        for (k, v) in theta {
            let shown = if k == "b_prior" {
                scale_mixture(v).unwrap_or_else(|| show(v))
            } else {
                show(v)
            };
            let _ = write!(
                s,
                "<td class=\"num\" data-key=\"/theta/{}\">{}</td>",
                esc(k),
                esc(&shown)
            );
        }
        s.push_str("</tr>\n</table>\n");
    }
    s.push_str("</section>\n");
    s
}

/// The prior of the group effects (`{sd: [...], weight: [...]}`) as its components with
/// weight: `null sd 0.05: 0.87; sd 1.131: 0.1; ...` (3 decimals).
fn scale_mixture(v: &Value) -> Option<String> {
    let nums = |key: &str| -> Option<Vec<f64>> {
        v.get(key)?.as_array()?.iter().map(Value::as_f64).collect()
    };
    let (sd, weight) = (nums("sd")?, nums("weight")?);
    let parts: Vec<String> = sd
        .iter()
        .zip(&weight)
        .enumerate()
        .filter(|(_, (_, w))| **w >= 5e-4)
        .map(|(k, (s, w))| {
            let name = if k == 0 { "null sd" } else { "sd" };
            format!("{name} {}: {}", tidy(*s, 3), tidy(*w, 3))
        })
        .collect();
    Some(parts.join("; "))
}

/// The input files of run.json with their sizes and SHA-256 checksums.
fn inputs_table(run: Option<&Value>) -> String {
    let Some(inputs) = run.and_then(|r| r.get("inputs")).and_then(Value::as_array) else {
        return String::new();
    };
    let mut s = String::from(
        "<h3 id=\"inputs\">Input files</h3>\n<table class=\"inputs\">\n<tr><th>sample</th>\
         <th>group</th><th>file</th><th>bytes</th><th>SHA-256</th></tr>\n",
    );
    let text = |v: &Value, k: &str| v.get(k).map(show).unwrap_or_default();
    for i in inputs {
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td class=\"num\">{}</td>\
             <td class=\"hash\">{}</td></tr>",
            esc(&text(i, "sample")),
            esc(&text(i, "group")),
            esc(&text(i, "path")),
            i.get("bytes")
                .and_then(Value::as_u64)
                .map(thousands)
                .unwrap_or_default(),
            esc(&text(i, "sha256"))
        );
    }
    s.push_str("</table>\n");
    s
}

/// A number for a table cell (— when not finite).
fn cell(x: f64, digits: usize) -> String {
    if x.is_finite() {
        tidy(x, digits)
    } else {
        "—".into()
    }
}

/// One `<tbody>` of the top table, rows in the given order.
fn top_rows(rows: &[&crate::TopRegion], class: &str, drawn: &[String]) -> String {
    let mut s = format!("<tbody class=\"{class}\">\n");
    for r in rows {
        let panel = if drawn.contains(&r.region_id) {
            format!(" <a href=\"#cpg-{}\">CpGs</a>", r.rank)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "<tr data-region=\"{id}\"><td class=\"num\">{rank}</td><td>{id}{panel}</td>\
             <td>{chrom}:{start}-{end}</td><td class=\"num\">{sites}</td>\
             <td class=\"num\">{d} [{lo}, {hi}]</td><td class=\"num\">{p}</td>\
             <td class=\"num\">{lfsr}</td><td>{rel}</td></tr>",
            id = esc(&r.region_id),
            rank = r.rank,
            chrom = esc(&r.chrom),
            start = r.start + 1,
            end = r.end,
            sites = r.n_sites,
            d = cell(r.delta.0, 3),
            lo = cell(r.delta.1, 3),
            hi = cell(r.delta.2, 3),
            p = cell(r.prob_dm, 4),
            lfsr = if r.lfsr.is_finite() && r.lfsr > 0.0 && r.lfsr < 1e-4 {
                format!("{:.1e}", r.lfsr)
            } else {
                cell(r.lfsr, 4)
            },
            rel = if r.reliable {
                "yes"
            } else {
                "<span class=\"warn\">no</span>"
            },
        );
    }
    s.push_str("</tbody>\n");
    s
}

/// The table of the top called regions (sortable by clicking a header: radio buttons and CSS,
/// no script) and the per-CpG panels of the first ones.
fn top_section(inp: &Inputs<'_>) -> Result<String, ReportError> {
    let scan = inp.scan;
    let mut s = String::from("<section id=\"top\">\n<h2>Top called regions</h2>\n");
    if scan.contrast.is_none() || scan.called.is_none() {
        s.push_str(
            "<p class=\"note\">No contrast in this run: no regions are called.</p>\n</section>\n",
        );
        return Ok(s);
    }
    if scan.top.is_empty() {
        s.push_str("<p class=\"note\">No region is called at the FDR target.</p>\n</section>\n");
        return Ok(s);
    }
    let label = scan
        .contrast
        .as_ref()
        .map(|c| c.label.clone())
        .unwrap_or_default();
    let drawn: Vec<String> = inp
        .sites
        .map(|d| d.regions.iter().map(|r| r.region_id.clone()).collect())
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "<p>The {} called regions with the highest P(|Δ| &gt; δ₀) of {} called (Δ = θ({});          coordinates 1-based, inclusive). Click a column header to sort; <em>CpGs</em> links          to the region's data below.</p>",
        scan.top.len(),
        thousands(scan.called.unwrap_or(0)),
        esc(&label)
    );
    let by_rank: Vec<&crate::TopRegion> = scan.top.iter().collect();
    let mut by_pos = by_rank.clone();
    by_pos.sort_by(|a, b| (&a.chrom, a.start, a.end).cmp(&(&b.chrom, b.start, b.end)));
    let mut by_delta = by_rank.clone();
    by_delta.sort_by(|a, b| b.delta.0.abs().total_cmp(&a.delta.0.abs()));
    let mut by_lfsr = by_rank.clone();
    by_lfsr.sort_by(|a, b| a.lfsr.total_cmp(&b.lfsr));
    s.push_str(
        "<div class=\"sorter\">\n<input type=\"radio\" name=\"sort\" id=\"sort-rank\" checked>\
         <input type=\"radio\" name=\"sort\" id=\"sort-pos\">\
         <input type=\"radio\" name=\"sort\" id=\"sort-delta\">\
         <input type=\"radio\" name=\"sort\" id=\"sort-lfsr\">\n<table class=\"top\">\n<thead><tr>\
         <th><label for=\"sort-rank\">#</label></th><th>region</th>\
         <th><label for=\"sort-pos\">position</label></th><th>sites</th>\
         <th><label for=\"sort-delta\">Δ [95% interval]</label></th>\
         <th><label for=\"sort-rank\">prob_dm</label></th>\
         <th><label for=\"sort-lfsr\">lfsr</label></th><th>reliable</th></tr></thead>\n",
    );
    s.push_str(&top_rows(&by_rank, "by-rank", &drawn));
    s.push_str(&top_rows(&by_pos, "by-pos", &drawn));
    s.push_str(&top_rows(&by_delta, "by-delta", &drawn));
    s.push_str(&top_rows(&by_lfsr, "by-lfsr", &drawn));
    s.push_str("</table>\n</div>\n");

    s.push_str("<h3 id=\"cpgs\">The top regions, CpG by CpG</h3>\n");
    match inp.sites {
        None => s.push_str(
            "<p class=\"note\">No per-CpG data was given to the report (<code>methvb report \
             --plot-regions 0</code>, or the report was rendered without the inputs).</p>\n",
        ),
        Some(data) => {
            if let Some(note) = &data.note {
                let _ = writeln!(s, "<p class=\"note\">{}</p>", esc(note));
            }
            s.push_str("<div class=\"panels\">\n");
            for region in &data.regions {
                let Some(top) = scan.top.iter().find(|t| t.region_id == region.region_id) else {
                    continue;
                };
                let svg =
                    crate::plots::region_sites(top, region, &data.sample_groups, &scan.groups)?;
                let (nmin, nmax) = region
                    .coverage
                    .iter()
                    .filter(|&&n| n > 0)
                    .fold((u32::MAX, 0), |(a, b), &n| (a.min(n), b.max(n)));
                let _ = write!(
                    s,
                    "<figure id=\"cpg-{rank}\" data-region=\"{id}\">\n{svg}\n<figcaption>#{rank} \
                     {id}: Δ = {d} [{lo}, {hi}], prob_dm {p}. {sites} CpGs; each point is one \
                     sample at one CpG (m/n, colour = group, area grows with the reads: {nmin} \
                     to {nmax}); lines and bands are the fitted group levels θ with their 95% \
                     intervals.</figcaption>\n</figure>\n",
                    rank = top.rank,
                    id = esc(&top.region_id),
                    d = cell(top.delta.0, 3),
                    lo = cell(top.delta.1, 3),
                    hi = cell(top.delta.2, 3),
                    p = cell(top.prob_dm, 4),
                    sites = region.positions.len(),
                    nmin = if nmax == 0 { 0 } else { nmin },
                );
            }
            s.push_str("</div>\n");
        }
    }
    s.push_str("</section>\n");
    Ok(s)
}

fn figure(svg: &str, caption: &str) -> String {
    format!("<figure>\n{svg}\n<figcaption>{caption}</figcaption>\n</figure>\n")
}

fn volcano_section(inp: &Inputs<'_>) -> Result<String, ReportError> {
    let mut s = String::from("<section id=\"volcano\">\n<h2>Differential methylation</h2>\n");
    let delta0 = inp
        .run
        .and_then(|r| r.pointer("/fit_options/delta0"))
        .and_then(Value::as_f64)
        .or_else(|| {
            inp.scan
                .metadata
                .iter()
                .find(|(k, _)| k == "methvb.delta0")
                .and_then(|(_, v)| v.parse().ok())
        });
    match (&inp.scan.contrast, &inp.scan.volcano) {
        (Some(c), Some(v)) => {
            if let Some(note) = &c.note {
                let _ = writeln!(s, "<p class=\"note\">{}</p>", esc(note));
            }
            let svg = plots::volcano(v, &c.label, delta0)?;
            let mut cap = format!(
                "Volcano plot: posterior mean of Δ = θ({}) against P(|Δ| &gt; δ₀); called regions \
                 (Bayesian FDR) in red",
                esc(&c.label)
            );
            if let Some(d) = delta0 {
                let _ = write!(cap, "; dashed lines at ±δ₀ = ±{}", tidy(d, 4));
            }
            if v.binned {
                let _ = write!(
                    cap,
                    ". {} regions are more than the {} drawn as points, so the plane is binned \
                     (at most {}×{} cells over the shown range); each cell's opacity grows with \
                     the log of its count",
                    thousands(v.n),
                    thousands(inp.max_points as u64),
                    crate::regions::VOLCANO_COLS,
                    crate::regions::VOLCANO_ROWS
                );
            }
            if v.missing > 0 {
                let _ = write!(
                    cap,
                    ". {} regions without a finite Δ are not shown",
                    v.missing
                );
            }
            cap.push('.');
            s.push_str(&figure(&svg, &cap));
        }
        _ => s.push_str(
            "<p class=\"note\">This run has a single group: there is no contrast, so no volcano \
             plot.</p>\n",
        ),
    }
    s.push_str("</section>\n");
    Ok(s)
}

fn khat_section(inp: &Inputs<'_>) -> Result<String, ReportError> {
    let scan = inp.scan;
    let mut s = String::from(
        "<section id=\"khat\">\n<h2>Reliability of the answer (PSIS k-hat and the verdict)</h2>\n",
    );
    let thresholds: Vec<f64> = scan.thresholds.iter().map(|t| t.0).collect();
    let svg = plots::khat(&scan.khat_reliable, &scan.khat_unreliable, &thresholds)?;
    let mut cap = format!(
        "PSIS k-hat of the importance weights of every region, stacked by the \
         <code>reliable</code> flag: {} of {} regions are marked unreliable. A region is \
         reliable when k-hat is within its threshold, or when k-hat is below 1 and the \
         importance correction barely moves delta and prob_dm (docs/model.md, \"The \
         verdict\"); the MCMC audit checks a sample.",
        thousands(scan.unreliable),
        thousands(scan.rows)
    );
    if scan.thresholds.len() > 1 {
        let list: Vec<String> = scan
            .thresholds
            .iter()
            .map(|(t, n)| format!("{} ({n} regions)", tidy(*t, 3)))
            .collect();
        let _ = write!(
            cap,
            " The threshold min(1 − 1/log10 S, 0.7) depends on the number of draws S; \
             thresholds in this run: {}.",
            list.join(", ")
        );
    }
    let (below, above) = (
        scan.khat_reliable.below + scan.khat_unreliable.below,
        scan.khat_reliable.above + scan.khat_unreliable.above,
    );
    if below + above > 0 {
        let _ = write!(
            cap,
            " Not shown: {below} regions below {} and {above} at or above {}.",
            tidy(scan.khat_reliable.lo, 2),
            tidy(scan.khat_reliable.hi, 2)
        );
    }
    s.push_str(&figure(&svg, &cap));
    s.push_str("</section>\n");
    Ok(s)
}

fn mcmc_section(inp: &Inputs<'_>) -> Result<String, ReportError> {
    let mut s = String::from("<section id=\"mcmc\">\n<h2>MCMC audit</h2>\n");
    let Some((rows, sum)) = inp.mcmc else {
        s.push_str(
            "<p class=\"note\">There is no MCMC audit in this run (no mcmc_check.parquet in the \
             run directory).</p>\n</section>\n",
        );
        return Ok(s);
    };
    let _ = writeln!(
        s,
        "<p>A sample of regions was refitted with NUTS (exact posterior) to check the \
         variational answer: z_bias = (VB mean − MCMC mean) / MCMC sd, sd_ratio = VB sd / MCMC \
         sd.</p>"
    );
    let mut t = Table::new();
    t.row("mcmc/regions", "regions audited", &sum.regions.to_string());
    if sum.regions_flagged > 0 {
        t.row(
            "mcmc/regions_flagged",
            "of which flagged by the verdict (not a random sample)",
            &sum.regions_flagged.to_string(),
        );
    }
    t.row("mcmc/rows", "quantities checked", &sum.rows.to_string());
    t.row(
        "mcmc/median_abs_z",
        "median |z_bias| (a, b, k, Δ)",
        &tidy(sum.median_abs_z, 3),
    );
    if let Some((z, region, q)) = &sum.worst_abs_z {
        t.row(
            "mcmc/worst_abs_z",
            "worst |z_bias| (a, b, k, Δ)",
            &format!("{} ({}, {})", tidy(*z, 3), esc(region), esc(q)),
        );
    }
    t.row(
        "mcmc/median_sd_ratio",
        "median sd_ratio (a, b, k, Δ)",
        &tidy(sum.median_sd_ratio, 3),
    );
    let rhat_cell = if sum.regions_rhat_over > 0 {
        format!(
            "<span class=\"warn\">{}</span> of {}",
            sum.regions_rhat_over, sum.regions
        )
    } else {
        format!("{} of {}", sum.regions_rhat_over, sum.regions)
    };
    t.row(
        "mcmc/regions_rhat_over",
        &format!("regions with R-hat > {RHAT_LIMIT}"),
        &rhat_cell,
    );
    t.row("mcmc/max_rhat", "largest R-hat", &tidy(sum.max_rhat, 4));
    t.row(
        "mcmc/min_ess_bulk",
        "smallest bulk ESS",
        &tidy(sum.min_ess_bulk, 0),
    );
    t.row(
        "mcmc/divergences",
        "divergent transitions",
        &tidy(sum.divergences, 0),
    );
    s.push_str(&t.finish());

    // The worst rows by |z_bias|.
    let mut worst: Vec<&Row> = rows.iter().filter(|r| r.z_bias.is_finite()).collect();
    worst.sort_by(|a, b| b.z_bias.abs().total_cmp(&a.z_bias.abs()));
    if !worst.is_empty() {
        s.push_str(
            "<h3>Largest disagreements (every quantity, w included)</h3>\n<table>\n<tr><th>region</th><th>quantity</th>\
             <th>VB mean</th><th>MCMC mean</th><th>z_bias</th><th>VB sd</th><th>MCMC sd</th>\
             <th>sd_ratio</th><th>R-hat</th><th>family</th><th>selected by</th></tr>\n",
        );
        for r in worst.iter().take(10) {
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.region_id),
                esc(&r.quantity),
                tidy(r.vb_mean, 4),
                tidy(r.mcmc_mean, 4),
                tidy(r.z_bias, 2),
                tidy(r.vb_sd, 4),
                tidy(r.mcmc_sd, 4),
                tidy(r.sd_ratio, 2),
                tidy(r.rhat, 3),
                esc(&r.family),
                esc(&r.selected_by)
            );
        }
        s.push_str("</table>\n");
    }
    let sub = if rows.len() > inp.max_points {
        format!(
            " {} rows exceed the {} drawn; every {}-th row is shown.",
            rows.len(),
            inp.max_points,
            rows.len().div_ceil(inp.max_points)
        )
    } else {
        String::new()
    };
    let svg = plots::vb_vs_mcmc(rows, Moment::Mean, inp.max_points)?;
    s.push_str(&figure(
        &svg,
        &format!(
            "Posterior means, variational (y) against MCMC (x); points on the grey identity line \
             agree.{sub}"
        ),
    ));
    if let Some(svg) = plots::prob_dm_agreement(rows)? {
        let pairs: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r.vb_prob_dm.is_finite() && r.mcmc_prob_dm.is_finite())
            .map(|r| (r.vb_prob_dm, r.mcmc_prob_dm))
            .collect();
        let worst = pairs.iter().map(|(v, m)| (v - m).abs()).fold(0.0, f64::max);
        let median = crate::mcmc::median(pairs.iter().map(|(v, m)| (v - m).abs()).collect());
        s.push_str(&figure(
            &svg,
            &format!(
                "P(|Δ| &gt; δ₀) of each audited region under VB (y) and under NUTS (x): the \
                 number behind a call. {} regions; |VB − NUTS| median {}, largest {}.",
                pairs.len(),
                tidy(median, 3),
                tidy(worst, 3)
            ),
        ));
    }
    let svg = plots::vb_vs_mcmc(rows, Moment::Sd, inp.max_points)?;
    s.push_str(&figure(
        &svg,
        &format!(
            "Posterior standard deviations, variational (y) against MCMC (x); points \
             below the identity line are overconfident variational fits.{sub}"
        ),
    ));
    s.push_str("</section>\n");
    Ok(s)
}

fn data_sections(inp: &Inputs<'_>) -> Result<String, ReportError> {
    let scan = inp.scan;
    let mut s = String::from("<section id=\"coverage\">\n<h2>Coverage</h2>\n");
    let svg = plots::coverage(&scan.groups, &scan.log_coverage)?;
    let zero: Vec<String> = scan
        .groups
        .iter()
        .zip(&scan.log_coverage)
        .filter(|(_, h)| h.missing > 0)
        .map(|(g, h)| format!("{} in {}", h.missing, esc(g)))
        .collect();
    let mut cap = String::from(
        "Distribution over regions of the reads covering the region in each group (summed over \
         its sites and the group's samples).",
    );
    if !zero.is_empty() {
        let _ = write!(
            cap,
            " Regions without coverage (not shown): {}.",
            zero.join(", ")
        );
    }
    s.push_str(&figure(&svg, &cap));
    s.push_str("</section>\n<section id=\"dispersion\">\n<h2>Dispersion</h2>\n");
    let svg = plots::dispersion(&scan.log_phi)?;
    let h = &scan.log_phi;
    let mut cap = String::from(
        "Posterior mean of the beta-binomial dispersion φ per region: 0 is binomial sampling, \
         larger values mean more variation between samples than coverage alone explains.",
    );
    if h.below + h.above + h.missing > 0 {
        let _ = write!(
            cap,
            " Not shown: {} below 10⁻⁴, {} missing.",
            h.below,
            h.missing + h.above
        );
    }
    s.push_str(&figure(&svg, &cap));
    s.push_str("</section>\n");
    Ok(s)
}

/// The whole document.
pub(crate) fn page(inp: &Inputs<'_>) -> Result<String, ReportError> {
    let mut s = String::with_capacity(1 << 18);
    let title = match inp.dir.file_name() {
        Some(n) => format!("methvb report: {}", n.to_string_lossy()),
        None => "methvb report".to_string(),
    };
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n<header>\n\
         <h1>{}</h1>\n<p>Results of <code>methvb run</code> in <code>{}</code>: {} regions.</p>\n\
         </header>\n<nav><a href=\"#summary\">Run summary</a><a href=\"#volcano\">Differential \
         methylation</a><a href=\"#top\">Top regions</a><a href=\"#khat\">k-hat</a><a href=\"#mcmc\">MCMC audit</a>\
         <a href=\"#coverage\">Coverage</a><a href=\"#dispersion\">Dispersion</a></nav>\n",
        esc(&title),
        esc(&title),
        esc(&inp.dir.display().to_string()),
        thousands(inp.scan.rows)
    );
    s.push_str(&summary_section(inp));
    s.push_str(&volcano_section(inp)?);
    s.push_str(&top_section(inp)?);
    s.push_str(&khat_section(inp)?);
    s.push_str(&mcmc_section(inp)?);
    s.push_str(&data_sections(inp)?);
    let _ = write!(
        s,
        "<footer>Written by methvb-report {}. Self-contained: no scripts, no external files.\
         </footer>\n</main>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    );
    Ok(s)
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_prior_of_b_shows_its_components_with_weight() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"sd": [0.07, 0.1414, 0.8, 1.131], "weight": [0.863, 1e-9, 0.119, 0.018]}"#,
        )
        .unwrap();
        assert_eq!(
            super::scale_mixture(&v).as_deref(),
            Some("null sd 0.07: 0.863; sd 0.8: 0.119; sd 1.131: 0.018")
        );
        assert_eq!(super::scale_mixture(&serde_json::json!(1.0)), None);
    }

    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(esc("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
    }

    #[test]
    fn shows_json_numbers() {
        assert_eq!(show(&serde_json::json!(200)), "200");
        assert_eq!(show(&serde_json::json!(0.05)), "0.05");
        assert_eq!(show(&serde_json::json!(-0.112575)), "-0.1126");
        assert_eq!(seconds(8.651), "8.7 s");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn median_of_finite_values() {
        assert_eq!(crate::mcmc::median(vec![3.0, f64::NAN, 1.0, 2.0]), 2.0);
        assert_eq!(crate::mcmc::median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(crate::mcmc::median(vec![]).is_nan());
    }
}
