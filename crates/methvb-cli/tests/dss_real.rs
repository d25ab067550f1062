//! The real DSS example data (RRBS, chr18, 2 vs 2) through the binary: `methvb sites` must
//! reproduce the bsseq `makeBSseqData` merge exactly, and `methvb run` must give posterior group
//! means that follow the raw methylation ratios.

mod common;

use std::io::{BufRead, BufReader};

use common::{DRAWS, dss_dir, read_table, run_ok, s, write_dss_sheet};

const SAMPLES: [&str; 4] = ["C1", "C2", "N1", "N2"];

#[test]
fn sites_equal_makebsseqdata_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let sheet = write_dss_sheet(tmp.path());
    let out = tmp.path().join("sites.parquet");
    run_ok(&["-q", "sites", "--samples", s(&sheet), "--out", s(&out)]);
    let table = read_table(&out);

    let expected = dss_dir().join("expected/makeBSseqData_merged.tsv.gz");
    let file = std::fs::File::open(&expected)
        .unwrap_or_else(|e| panic!("opening {}: {e}", expected.display()));
    let mut lines = BufReader::new(flate2::read::GzDecoder::new(file)).lines();
    let header: Vec<String> = lines
        .next()
        .expect("header line")
        .unwrap()
        .split('\t')
        .map(str::to_string)
        .collect();
    let hcol = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name} in {header:?}"))
    };
    let (e_chr, e_pos) = (hcol("chr"), hcol("pos"));
    let e_n: Vec<usize> = SAMPLES.iter().map(|x| hcol(&format!("N_{x}"))).collect();
    let e_x: Vec<usize> = SAMPLES.iter().map(|x| hcol(&format!("X_{x}"))).collect();
    let (t_chr, t_pos) = (table.col("chrom"), table.col("pos"));
    let t_n: Vec<usize> = SAMPLES
        .iter()
        .map(|x| table.col(&format!("{x}_n")))
        .collect();
    let t_m: Vec<usize> = SAMPLES
        .iter()
        .map(|x| table.col(&format!("{x}_m")))
        .collect();

    let mut rows = 0usize;
    for (i, line) in lines.enumerate() {
        let line = line.unwrap();
        let f: Vec<&str> = line.split('\t').collect();
        let row = table
            .rows
            .get(i)
            .unwrap_or_else(|| panic!("output has only {} rows, expected more", table.rows.len()));
        let num = |j: usize| -> i128 { f[j].parse().unwrap() };
        assert_eq!(row[t_chr].as_str(), f[e_chr], "chrom of row {i}");
        // bsseq positions are 1-based, ours 0-based.
        assert_eq!(
            row[t_pos].as_int(),
            num(e_pos) - 1,
            "pos of row {i}: {line}"
        );
        for k in 0..SAMPLES.len() {
            assert_eq!(
                row[t_n[k]].as_int(),
                num(e_n[k]),
                "N_{} of row {i}: {line}",
                SAMPLES[k]
            );
            assert_eq!(
                row[t_m[k]].as_int(),
                num(e_x[k]),
                "X_{} of row {i}: {line}",
                SAMPLES[k]
            );
        }
        rows += 1;
    }
    assert_eq!(rows, 34_739, "expected table has {rows} rows");
    assert_eq!(
        table.rows.len(),
        rows,
        "row count differs from the bsseq merge"
    );
}

fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    sxy / (sxx * syy).sqrt()
}

/// Issue check: on real RRBS data with CpG clusters, `theta_<group>_mean` must follow the raw
/// pooled ratio `raw_<group>` of its own group (a swap of groups, or a region's data attached to
/// another region's row, would break this).
#[test]
fn run_on_dss_posterior_means_follow_raw_ratios() {
    let tmp = tempfile::tempdir().unwrap();
    let sheet = write_dss_sheet(tmp.path());
    let out = tmp.path().join("run");
    // Every CpG cluster of the data (default clustering); Theta from a 500-region reservoir
    // and 200 draws per summary to keep a debug build near half a minute.
    run_ok(&[
        "-q",
        "run",
        "--samples",
        s(&sheet),
        "--out",
        s(&out),
        "--draws",
        DRAWS,
        "--hyper-regions",
        "500",
        "--mcmc-check",
        "0",
    ]);
    let table = read_table(&out.join("regions.parquet"));
    assert!(table.rows.len() > 500, "only {} regions", table.rows.len());
    for group in ["cond1", "cond2"] {
        let mut post = Vec::new();
        let mut raw = Vec::new();
        for (t, r) in table
            .column(&format!("theta_{group}_mean"))
            .into_iter()
            .zip(table.column(&format!("raw_{group}")))
        {
            let (t, r) = (t.as_f64(), r.as_f64());
            if r.is_finite() {
                assert!(
                    (0.0..=1.0).contains(&t),
                    "theta_{group}_mean {t} outside [0, 1]"
                );
                post.push(t);
                raw.push(r);
            }
        }
        let r = pearson(&post, &raw);
        eprintln!(
            "DSS, group {group}: Pearson r(theta_{group}_mean, raw_{group}) = {r:.4} over {} regions",
            post.len()
        );
        assert!(r > 0.9, "r = {r} for group {group}");
        assert!(post.len() > 500);
    }
}

/// Issue check (the posterior must be symmetric in the groups): on the real RRBS data, naming
/// the other group as the reference flips the sign of every delta and changes nothing else,
/// calls included.
#[test]
fn reference_swap_on_dss_data_flips_delta_and_keeps_every_call() {
    let tmp = tempfile::tempdir().unwrap();
    let sheet = write_dss_sheet(tmp.path());
    let run = |reference: &str| {
        let out = tmp.path().join(reference);
        run_ok(&[
            "-q",
            "run",
            "--samples",
            s(&sheet),
            "--reference",
            reference,
            "--out",
            s(&out),
            "--draws",
            DRAWS,
            "--hyper-regions",
            "300",
            "--mcmc-check",
            "0",
        ]);
        read_table(&out.join("regions.parquet"))
    };
    let (one, two) = (run("cond1"), run("cond2"));
    assert_eq!(one.column("region_id"), two.column("region_id"));
    let num =
        |t: &common::Table, c: &str| t.column(c).iter().map(|v| v.as_f64()).collect::<Vec<_>>();
    for (a, b) in num(&one, "delta_mean").iter().zip(num(&two, "delta_mean")) {
        assert_eq!(*a, -b);
    }
    for (a, b) in num(&one, "delta_q025").iter().zip(num(&two, "delta_q975")) {
        assert!((a + b).abs() < 1e-12, "{a} vs {b}");
    }
    for col in ["prob_dm", "lfsr", "pep", "p_null", "khat", "ess"] {
        assert_eq!(num(&one, col), num(&two, col), "{col}");
    }
    for (a, b) in num(&one, "theta_cond1_mean")
        .iter()
        .zip(num(&two, "theta_cond1_mean"))
    {
        assert_eq!(*a, b);
    }
    let calls = |t: &common::Table| {
        t.column("called")
            .iter()
            .map(|c| matches!(c, common::Cell::Bool(true)))
            .collect::<Vec<_>>()
    };
    assert_eq!(calls(&one), calls(&two));
    assert!(
        calls(&one).iter().filter(|&&c| c).count() > 10,
        "the test needs calls"
    );
}
