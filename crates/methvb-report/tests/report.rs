//! The report of a real small run and of synthetic runs (MCMC audit, three groups, a large run).

mod common;

use common::*;
use methvb_report::{ReportError, ReportOptions, render_report, write_report};

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("read json")).expect("parse json")
}

/// Strings that would make the page depend on anything outside itself.
const FORBIDDEN: [&str; 8] = [
    "http",
    "src=",
    "<link",
    "<script",
    "@import",
    "url(",
    "@font-face",
    "<img",
];

fn assert_self_contained(html: &str) {
    let lower = html.to_ascii_lowercase();
    for f in FORBIDDEN {
        assert!(!lower.contains(f), "report contains {f:?}");
    }
}

#[test]
fn small_run_report_has_every_section_and_valid_svgs() {
    let dir = copy_small_run();
    let outcome = write_report(dir.path(), &ReportOptions::default()).expect("report");
    assert_eq!(outcome.path, dir.path().join("report.html"));
    let html = std::fs::read_to_string(&outcome.path).expect("read report");
    assert_eq!(outcome.bytes, html.len() as u64);
    assert_eq!(outcome.regions, 200);
    assert!(!outcome.volcano_binned);
    assert!(outcome.mcmc.is_none());
    // Nothing but the report in the directory (the temporary file was renamed).
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["hyper.json", "regions.parquet", "report.html", "run.json"]
    );

    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_self_contained(&html);
    for id in [
        "summary",
        "volcano",
        "khat",
        "mcmc",
        "coverage",
        "dispersion",
    ] {
        assert!(section(&html, id).is_some(), "section {id} missing");
    }
    for id in ["volcano", "khat", "coverage", "dispersion"] {
        let s = section(&html, id).unwrap();
        assert_eq!(svgs(s).len(), 1, "section {id} has no figure");
        assert!(s.contains("<figcaption>"));
    }
    assert!(
        section(&html, "mcmc")
            .unwrap()
            .contains("no MCMC audit in this run")
    );
    let all = svgs(&html);
    assert_eq!(all.len(), 4);
    for svg in &all {
        let n = check_xml(svg).unwrap_or_else(|e| panic!("malformed SVG: {e}"));
        assert!(n > 20, "an SVG with only {n} elements");
        // Axis descriptions are drawn.
        assert!(
            svg.contains("regions")
                || svg.contains("P(|Δ| &gt; δ₀)")
                || svg.contains("P(|Δ| > δ₀)")
        );
    }
    // The volcano draws every region (200, all with a finite Δ) plus two legend markers, and
    // the called ones in red.
    let volcano = svgs(section(&html, "volcano").unwrap())[0];
    assert_eq!(volcano.matches("<circle").count(), 200 + 2);
    let run = json(&dir.path().join("run.json"));
    let called = run
        .pointer("/pass2/regions_called")
        .and_then(|v| v.as_u64())
        .unwrap();
    assert_eq!(called, 6);
    assert_eq!(
        volcano.matches("fill=\"#CC2529\"").count() as u64,
        called + 1
    );
    assert!(volcano.contains(&format!("called ({called})")));
    assert!(volcano.contains("posterior mean of Δ (treated − control)"));
    // The k-hat threshold line is labelled with the run's threshold.
    // The thresholds of the run (pyarrow: 0.616 ×79, 0.656 ×67, 0.688 ×54 after refits).
    let khat = section(&html, "khat").unwrap();
    assert!(
        khat.contains("\nthresholds 0.616, 0.656, 0.688\n"),
        "the thresholds are drawn"
    );
    assert!(khat.contains("\nreliable (140)\n") && khat.contains("\nunreliable (60)\n"));
    assert!(khat.contains("0.616 (79 regions), 0.656 (67 regions), 0.688 (54 regions)"));
    let cov = section(&html, "coverage").unwrap();
    assert!(
        cov.contains("\ncontrol\n</text>") && cov.contains("\ntreated\n</text>"),
        "coverage legend"
    );
}

#[test]
fn summary_numbers_match_run_json() {
    let dir = copy_small_run();
    let html = render_report(dir.path(), &ReportOptions::default())
        .unwrap()
        .html;
    let run = json(&dir.path().join("run.json"));
    for key in [
        "/seed",
        "/pass2/pass/regions_used",
        "/pass2/regions_called",
        "/pass2/regions_unreliable",
        "/pass2/regions_not_converged",
        "/pass2/pass/regions/regions_dropped_too_few_sites",
        "/pass2/pass/regions/regions_dropped_no_sites",
        "/pass2/pass/regions/sites_dropped_min_samples_per_group",
    ] {
        let want = run
            .pointer(key)
            .and_then(|v| v.as_u64())
            .unwrap_or_else(|| panic!("{key} in run.json"));
        assert_eq!(cell(&html, key), Some(want.to_string().as_str()), "{key}");
    }
    assert_eq!(cell(&html, "/version"), run["version"].as_str());
    assert_eq!(cell(&html, "/fdr"), Some("0.05"));
    assert_eq!(cell(&html, "/fit_options/delta0"), Some("0.1"));
    let command = run["command"].as_str().unwrap();
    assert_eq!(
        cell(&html, "/command"),
        Some(format!("<code>{command}</code>").as_str())
    );
    assert_eq!(cell(&html, "/inputs"), Some("6 (control 3, treated 3)"));
    for key in ["/pass1/seconds", "/pass2/pass/seconds", "/seconds_total"] {
        let s = run.pointer(key).and_then(|v| v.as_f64()).unwrap();
        assert_eq!(
            cell(&html, key),
            Some(format!("{s:.1} s").as_str()),
            "{key}"
        );
    }
    // Theta, to 4 decimals.
    for (k, v) in run["theta"].as_object().unwrap() {
        let marker = format!("data-key=\"/theta/{k}\">");
        let at = html.find(&marker).unwrap_or_else(|| panic!("theta {k}")) + marker.len();
        let shown: f64 = html[at..at + html[at..].find('<').unwrap()]
            .parse()
            .unwrap();
        assert!(
            (shown - v.as_f64().unwrap()).abs() <= 5e-5,
            "theta {k}: {shown} vs {v}"
        );
    }
    // The regions counted in the Parquet file agree with run.json.
    assert_eq!(cell(&html, "regions.parquet/rows"), Some("200"));
}

#[test]
fn mcmc_audit_summary_and_plots() {
    let dir = copy_small_run();
    let rows = synthetic_audit(30);
    write_audit(&dir.path().join("mcmc_check.parquet"), &rows);
    let out = dir.path().join("custom.html");
    let outcome = write_report(
        dir.path(),
        &ReportOptions {
            output: Some(out.clone()),
            ..ReportOptions::default()
        },
    )
    .unwrap();
    assert_eq!(outcome.path, out);
    assert!(!dir.path().join("report.html").exists());
    let html = std::fs::read_to_string(&out).unwrap();
    assert_self_contained(&html);
    let m = outcome.mcmc.expect("audit summary");
    // Independent reference values.
    // Headline figures pool a, b, k and Δ (not w), as run.json does.
    let headline: Vec<&AuditRow> = rows.iter().filter(|r| r.quantity != "w").collect();
    assert_eq!(headline.len(), 120);
    let mut z: Vec<f64> = headline.iter().map(|r| r.z_bias().abs()).collect();
    z.sort_by(f64::total_cmp);
    let median_z = 0.5 * (z[59] + z[60]);
    let mut sr: Vec<f64> = headline.iter().map(|r| r.sd_ratio()).collect();
    sr.sort_by(f64::total_cmp);
    let median_sr = 0.5 * (sr[59] + sr[60]);
    let bad_regions = (0..30).filter(|r| r % 7 == 3).count();
    assert_eq!(m.rows, 150);
    assert_eq!(m.regions_flagged, 3);
    assert_eq!(m.regions, 30);
    assert!((m.median_abs_z - median_z).abs() < 1e-12);
    assert!((m.median_sd_ratio - median_sr).abs() < 1e-12);
    assert_eq!(m.regions_rhat_over, bad_regions);
    assert_eq!(m.regions_rhat_over, 4);
    assert!((m.worst_abs_z.as_ref().unwrap().0 - z[119]).abs() < 1e-12);
    assert_eq!(m.divergences, 6.0 * 2.0); // regions 0, 5, …, 25 with 2 each
    assert!((m.max_rhat - 1.05).abs() < 1e-12);

    let s = section(&html, "mcmc").unwrap();
    assert!(!s.contains("no MCMC audit"));
    assert_eq!(cell(s, "mcmc/regions"), Some("30"));
    assert_eq!(cell(s, "mcmc/regions_flagged"), Some("3"));
    assert_eq!(
        cell(s, "mcmc/regions_rhat_over"),
        Some("<span class=\"warn\">4</span> of 30")
    );
    assert_eq!(
        cell(s, "mcmc/median_abs_z"),
        Some(format!("{:.3}", median_z).trim_end_matches('0'))
    );
    // Means and sds (the third figure, prob_dm, has its own test).
    assert_eq!(svgs(s).len(), 3);
    let figs: Vec<&str> = svgs(s)
        .into_iter()
        .filter(|f| !f.contains("prob_dm plot"))
        .collect();
    assert_eq!(figs.len(), 2, "means and sds");
    for svg in figs {
        check_xml(svg).unwrap();
        // 150 points + legend markers (Δ; a, b, k, w).
        assert_eq!(svg.matches("<circle").count(), 150 + 5);
        assert!(svg.contains("identity"));
        assert!(svg.contains("Δ (methylation differences)"));
    }
    assert_eq!(svgs(&html).len(), 7);
}

#[test]
fn three_groups_use_the_first_contrast_and_metadata_fallback() {
    let dir = tempfile::tempdir().unwrap();
    synthetic_regions(
        &dir.path().join("regions.parquet"),
        500,
        &["ctrl", "drugA", "drugB"],
    );
    let r = render_report(dir.path(), &ReportOptions::default()).unwrap();
    let html = r.html;
    assert_self_contained(&html);
    assert_eq!(r.regions, 500);
    let v = section(&html, "volcano").unwrap();
    assert!(
        v.contains("the first non-reference contrast, drugA − ctrl"),
        "{v}"
    );
    assert!(v.contains("delta_drugA_mean"));
    let svg = svgs(v)[0];
    check_xml(svg).unwrap();
    assert_eq!(svg.matches("<circle").count(), 500 + 2);
    // Without run.json the counts come from the table itself.
    assert!(html.contains("No run.json in this directory"));
    let called = (0..500)
        .filter(|i| (0.6 * (*i as f64 * 0.7).sin()).abs() * 2.0 > 0.9)
        .count();
    assert_eq!(
        cell(&html, "regions.parquet/called"),
        Some(called.to_string().as_str())
    );
    assert_eq!(cell(&html, "regions.parquet/not_converged"), Some("10"));
    let cov = section(&html, "coverage").unwrap();
    for g in ["ctrl", "drugA", "drugB"] {
        assert!(cov.contains(&format!("\n{g}\n</text>")), "legend {g}");
    }
}

#[test]
fn large_runs_are_binned_and_stay_small() {
    let dir = tempfile::tempdir().unwrap();
    let n = 200_000;
    synthetic_regions(&dir.path().join("regions.parquet"), n, &["a", "b"]);
    let r = render_report(dir.path(), &ReportOptions::default()).unwrap();
    assert!(r.volcano_binned);
    assert_eq!(r.regions, n as u64);
    let v = section(&r.html, "volcano").unwrap();
    assert!(v.contains("so the plane is binned (at most 200×100 cells"));
    let svg = svgs(v)[0];
    check_xml(svg).unwrap();
    // No point is drawn; the grid cells are bounded by 2 × 200 × 100.
    assert_eq!(svg.matches("<circle").count(), 0);
    let rects = svg.matches("<rect").count();
    assert!(rects > 100 && rects < 2 * 200 * 100, "{rects} rectangles");
    assert!(r.html.len() < 3_000_000, "report of {} bytes", r.html.len());
    // Small max_points forces binning on the small run too, deterministically.
    let dir = copy_small_run();
    let opts = ReportOptions {
        max_points: 50,
        ..ReportOptions::default()
    };
    let a = render_report(dir.path(), &opts).unwrap();
    let b = render_report(dir.path(), &opts).unwrap();
    assert!(a.volcano_binned);
    assert_eq!(a.html, b.html);
}

#[test]
fn one_group_and_empty_tables_render() {
    let dir = tempfile::tempdir().unwrap();
    synthetic_regions(&dir.path().join("regions.parquet"), 50, &["only"]);
    let html = render_report(dir.path(), &ReportOptions::default())
        .unwrap()
        .html;
    let v = section(&html, "volcano").unwrap();
    assert!(v.contains("single group"));
    assert!(svgs(v).is_empty());
    assert_eq!(svgs(&html).len(), 3, "k-hat, coverage, dispersion");
    assert!(cell(&html, "regions.parquet/called").is_none());
    assert_eq!(cell(&html, "regions.parquet/rows"), Some("50"));

    let dir = tempfile::tempdir().unwrap();
    synthetic_regions(&dir.path().join("regions.parquet"), 0, &["a", "b"]);
    let r = render_report(dir.path(), &ReportOptions::default()).unwrap();
    assert_eq!(r.regions, 0);
    assert_eq!(svgs(&r.html).len(), 4);
    for svg in svgs(&r.html) {
        check_xml(svg).unwrap();
    }
    assert_eq!(cell(&r.html, "regions.parquet/called"), Some("0"));
}

#[test]
fn missing_results_table_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = write_report(dir.path(), &ReportOptions::default()).unwrap_err();
    assert!(
        matches!(e, ReportError::Io { ref path, .. } if path.ends_with("regions.parquet")),
        "{e}"
    );
    assert!(!dir.path().join("report.html").exists());
    std::fs::write(dir.path().join("regions.parquet"), b"not parquet").unwrap();
    let e = write_report(dir.path(), &ReportOptions::default()).unwrap_err();
    assert!(matches!(e, ReportError::Parquet { .. }), "{e}");
}

#[test]
fn audit_of_a_real_run_matches_its_run_json() {
    // `methvb run` on test-data with the default audit (16 regions); run.json → mcmc_check
    // holds the run's own pooled figures, computed by methvb-mcmc.
    let src = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/small_run_audit"
    ));
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "regions.parquet",
        "run.json",
        "hyper.json",
        "mcmc_check.parquet",
    ] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let outcome = write_report(dir.path(), &ReportOptions::default()).unwrap();
    let run = json(&dir.path().join("run.json"));
    let want = &run["mcmc_check"];
    let m = outcome.mcmc.expect("audit");
    assert_eq!(m.regions as u64, want["n_regions"].as_u64().unwrap());
    let close = |a: f64, b: &serde_json::Value| (a - b.as_f64().unwrap()).abs() < 1e-12;
    assert!(close(m.median_abs_z, &want["median_abs_z_bias"]), "{m:?}");
    assert!(close(m.median_sd_ratio, &want["median_sd_ratio"]), "{m:?}");
    let (worst, region, quantity) = m.worst_abs_z.clone().unwrap();
    assert!(close(worst, &want["worst_abs_z_bias"]));
    assert_eq!(Some(region.as_str()), want["worst_region"].as_str());
    assert_eq!(Some(quantity.as_str()), want["worst_quantity"].as_str());
    assert_eq!(
        m.regions_rhat_over as u64,
        want["regions_rhat_above"].as_u64().unwrap()
    );
    assert!(close(m.divergences, &want["total_divergences"]));
    let html = std::fs::read_to_string(&outcome.path).unwrap();
    assert_self_contained(&html);
    let s = section(&html, "mcmc").unwrap();
    // Means, sds, and prob_dm of the 16 regions' Δ under VB and NUTS.
    assert_eq!(svgs(s).len(), 3);
    let prob = svgs(s)
        .into_iter()
        .find(|f| f.contains("prob_dm plot"))
        .unwrap();
    assert_eq!(prob.matches("<circle").count(), 16 + 1);
    for svg in svgs(s).into_iter().filter(|f| !f.contains("prob_dm plot")) {
        check_xml(svg).unwrap();
        // Every row is drawn: 16 regions × (a, b, w, k, delta) + legend markers (Δ; a, b, k, w).
        assert_eq!(svg.matches("<circle").count(), 80 + 5);
    }
}

/// `<tbody class="{class}">` of the top table: the region ids of its rows, in order.
fn tbody_ids<'a>(html: &'a str, class: &str) -> Vec<&'a str> {
    let start = html
        .find(&format!("<tbody class=\"{class}\">"))
        .unwrap_or_else(|| panic!("no tbody {class}"));
    let body = &html[start..start + html[start..].find("</tbody>").unwrap()];
    body.split("<tr data-region=\"")
        .skip(1)
        .map(|r| &r[..r.find('"').unwrap()])
        .collect()
}

#[test]
fn issue_19_top_table_sorts_and_cpg_panels_draw_every_covered_cell() {
    let dir = copy_small_run();
    let regions = read_regions(&dir.path().join("regions.parquet"));
    let sites = synthetic_sites(dir.path(), 4);
    let opts = ReportOptions {
        sites: Some(sites.clone()),
        ..ReportOptions::default()
    };
    let html = render_report(dir.path(), &opts).unwrap().html;
    assert_self_contained(&html);
    let top = section(&html, "top").expect("top section");

    // Every called region, best prob_dm first (ties: lfsr, then id), with its numbers.
    let mut called: Vec<&RegionRow> = regions.iter().filter(|r| r.called).collect();
    assert_eq!(called.len(), 6);
    called.sort_by(|a, b| {
        b.prob_dm
            .total_cmp(&a.prob_dm)
            .then(a.lfsr.total_cmp(&b.lfsr))
            .then(a.id.cmp(&b.id))
    });
    let want: Vec<&str> = called.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(tbody_ids(top, "by-rank"), want);
    // The other orders hold the same rows, sorted by their key.
    let mut by_lfsr = called.clone();
    by_lfsr.sort_by(|a, b| a.lfsr.total_cmp(&b.lfsr));
    assert_eq!(
        tbody_ids(top, "by-lfsr"),
        by_lfsr.iter().map(|r| r.id.as_str()).collect::<Vec<_>>()
    );
    let mut by_delta = called.clone();
    by_delta.sort_by(|a, b| b.delta.abs().total_cmp(&a.delta.abs()));
    assert_eq!(
        tbody_ids(top, "by-delta"),
        by_delta.iter().map(|r| r.id.as_str()).collect::<Vec<_>>()
    );
    let mut by_pos = called.clone();
    by_pos.sort_by(|a, b| (&a.chrom, a.start).cmp(&(&b.chrom, b.start)));
    assert_eq!(
        tbody_ids(top, "by-pos"),
        by_pos.iter().map(|r| r.id.as_str()).collect::<Vec<_>>()
    );
    // Sorting needs no script: one radio button per order, labels in the headers.
    for id in ["sort-rank", "sort-pos", "sort-delta", "sort-lfsr"] {
        assert!(top.contains(&format!("id=\"{id}\"")) && top.contains(&format!("for=\"{id}\"")));
    }
    let first = called[0];
    let row = &top[top
        .find(&format!("<tr data-region=\"{}\"", first.id))
        .unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains(&format!(
        "{}:{}-{}",
        first.chrom,
        first.start + 1,
        first.end
    )));
    assert!(
        row.contains(
            &format!("{:.3}", first.delta)
                .trim_end_matches('0')
                .to_string()
        )
    );

    // One panel per region given, each drawing one circle per covered (site, sample) cell.
    assert_eq!(top.matches("<figure id=\"cpg-").count(), 4);
    for (k, region) in sites.regions.iter().enumerate() {
        let fig = &top[top.find(&format!("<figure id=\"cpg-{}\"", k + 1)).unwrap()..];
        let fig = &fig[..fig.find("</figure>").unwrap()];
        assert!(fig.contains(&region.region_id));
        let svg = svgs(fig)[0];
        check_xml(svg).unwrap();
        let covered = region.coverage.iter().filter(|&&n| n > 0).count();
        assert_eq!(
            svg.matches("<circle").count(),
            covered,
            "{}",
            region.region_id
        );
        // The group levels are drawn with their intervals (legend text).
        let r = regions.iter().find(|r| r.id == region.region_id).unwrap();
        assert!(fig.contains(&format!("control: θ {}", tidy3(r.theta_control))));
        // Point size grows with coverage: the deepest cell is the largest circle.
        let radii: Vec<f64> = svg
            .split("<circle")
            .skip(1)
            .map(|c| {
                let r = &c[c.find(" r=\"").unwrap() + 4..];
                r[..r.find('"').unwrap()].parse().unwrap()
            })
            .collect();
        let max = radii.iter().copied().fold(0.0, f64::max);
        let min = radii.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(max > min, "all points have one size");
    }
    // Table rows link to their panels.
    assert!(top.contains("href=\"#cpg-1\""));

    // The input files with their checksums, from run.json.
    let run = json(&dir.path().join("run.json"));
    let summary = section(&html, "summary").unwrap();
    for input in run["inputs"].as_array().unwrap() {
        assert!(summary.contains(input["sha256"].as_str().unwrap()));
        assert!(summary.contains(input["path"].as_str().unwrap()));
    }
}

fn tidy3(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[test]
fn issue_19_audit_draws_vb_against_nuts_prob_dm() {
    let dir = copy_small_run();
    let rows = synthetic_audit(30);
    write_audit(&dir.path().join("mcmc_check.parquet"), &rows);
    let html = render_report(dir.path(), &ReportOptions::default())
        .unwrap()
        .html;
    let mcmc = section(&html, "mcmc").unwrap();
    let fig = &mcmc[mcmc
        .find("aria-label=\"VB vs MCMC prob_dm plot\"")
        .expect("prob_dm figure")..];
    let svg_end = fig.find("</svg>").unwrap();
    let delta_rows: Vec<&AuditRow> = rows.iter().filter(|r| r.quantity == "delta").collect();
    let flagged = delta_rows.iter().filter(|r| r.flagged).count();
    let kinds = if flagged > 0 { 2 } else { 1 };
    // One point per audited region's Δ, plus the legend markers.
    assert_eq!(
        fig[..svg_end].matches("<circle").count(),
        delta_rows.len() + kinds
    );
    let worst = delta_rows
        .iter()
        .map(|r| (r.prob_dm(true).unwrap() - r.prob_dm(false).unwrap()).abs())
        .fold(0.0, f64::max);
    assert!(
        mcmc.contains(&format!("largest {}", tidy3(worst))),
        "caption names the largest disagreement {worst}"
    );
}
