//! A sample sheet may list BAM files: they are piled up on the fly into the same site stream as
//! the count tables (issue: BAM input).

mod common;

use common::{dss_dir, read_table, run_methvb, run_ok, s};

/// The single-end Bismark BAM and the `.cov` that Bismark's own extractor made from it, as two
/// samples of one sheet, strands kept apart: every merged row must hold the same counts twice.
#[test]
fn bismark_bam_in_a_sheet_equals_the_extractor_cov() {
    let data = dss_dir().join("../methylkit");
    let bam = data.join("test.bismark_single_end.sorted.bam");
    let cov = data.join("expected_bismark_extractor/test.bismark_single_end.sorted.bismark.cov");
    let tmp = tempfile::tempdir().unwrap();
    let sheet = tmp.path().join("sheet.tsv");
    std::fs::write(
        &sheet,
        format!(
            "sample\tgroup\tpath\nbam\ta\t{}\ncov\tb\t{}\n",
            s(&bam),
            s(&cov)
        ),
    )
    .unwrap();
    let out = tmp.path().join("sites.parquet");
    run_ok(&[
        "sites",
        "--samples",
        s(&sheet),
        "--no-strand-merge",
        "--out",
        s(&out),
    ]);
    let table = read_table(&out);
    let rows = table.column("pos").len();
    let expected_rows = std::fs::read_to_string(&cov).unwrap().lines().count();
    assert_eq!(rows, expected_rows, "one merged row per .cov line");
    for name in ["m", "n"] {
        let from_bam = table.column(&format!("bam_{name}"));
        let from_cov = table.column(&format!("cov_{name}"));
        for (i, (b, c)) in from_bam.iter().zip(&from_cov).enumerate() {
            assert_eq!(b.as_int(), c.as_int(), "row {i}: bam_{name} vs cov_{name}");
        }
    }
}

/// `check` reads a sheet's BAM samples as `run` does (issue #15): the Bismark BAM and the `.cov`
/// the extractor made from it give the same per-sample summary, strands kept apart; the BAM
/// flags reach the reader (`--source mm` finds no MM/ML tags in a Bismark BAM: the error `run`
/// would stop with, naming the file, with the fix).
#[test]
fn check_reads_bam_samples_with_the_run_options() {
    let data = dss_dir().join("../methylkit");
    let bam = data.join("test.bismark_single_end.sorted.bam");
    let cov = data.join("expected_bismark_extractor/test.bismark_single_end.sorted.bismark.cov");
    let tmp = tempfile::tempdir().unwrap();
    let sheet = tmp.path().join("sheet.tsv");
    std::fs::write(
        &sheet,
        format!(
            "sample\tgroup\tpath\nbam\ta\t{}\ncov\tb\t{}\n",
            s(&bam),
            s(&cov)
        ),
    )
    .unwrap();
    let out = run_ok(&[
        "check",
        "--samples",
        s(&sheet),
        "--no-combine-strands",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (b, c) = (&report["samples"][0], &report["samples"][1]);
    assert_eq!(b["format"], "bam");
    assert_eq!(b["complete"], true);
    assert_eq!(b["error"], serde_json::Value::Null);
    let expected_sites = std::fs::read_to_string(&cov).unwrap().lines().count() as u64;
    assert_eq!(c["sites"].as_u64(), Some(expected_sites));
    for field in [
        "sites",
        "covered_sites",
        "mean_coverage",
        "median_coverage",
        "frac_coverage_ge_10",
        "mean_methylation",
    ] {
        assert_eq!(b[field], c[field], "{field}");
    }
    // The BAM lists its header's contigs; those with sites are the .cov's.
    let with_sites = |s: &serde_json::Value| -> Vec<serde_json::Value> {
        s["contigs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["sites"].as_u64() > Some(0))
            .cloned()
            .collect()
    };
    assert!(!with_sites(c).is_empty());
    assert_eq!(with_sites(b), with_sites(c));
    let errors: Vec<&serde_json::Value> = report["issues"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["severity"] == "error")
        .collect();
    assert!(errors.is_empty(), "{errors:?}");

    let out = run_methvb(&["check", "--samples", s(&sheet), "--source", "mm"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}: BAM: no base-modification calls", s(&bam))),
        "{stderr}"
    );
    assert!(
        stderr.contains("make the BAM with modified-base calling")
            && stderr.contains("--source mm looks at MM/ML only"),
        "{stderr}"
    );
    let help = String::from_utf8(run_ok(&["check", "--help"]).stdout).unwrap();
    for flag in [
        "--filter-threshold",
        "--min-mapq",
        "--source",
        "--skip-bad-mod-tags",
    ] {
        assert!(help.contains(flag), "check --help lacks {flag}");
    }
}

/// The BAM cases of the bad-input corpus (`test-data/bad/`, made by `make_bam.py`) in a sheet:
/// `check` stops on what `run` stops on, naming the file (and the record), and reads a good
/// BAM's sites; a BAM's header naming `chr1` against a count table's `1` is the naming error.
#[test]
fn check_names_the_bam_problems_run_would_stop_on() {
    let corpus =
        std::fs::canonicalize(concat!(env!("CARGO_MANIFEST_DIR"), "/../../test-data/bad")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let check = |rows: &[(&str, &str)]| {
        let mut text = String::from("sample\tgroup\tpath\n");
        for (i, (group, file)) in rows.iter().enumerate() {
            text += &format!("s{i}\t{group}\t{}\n", s(&corpus.join(file)));
        }
        let sheet = tmp.path().join("sheet.tsv");
        std::fs::write(&sheet, text).unwrap();
        let out = run_methvb(&["check", "--samples", s(&sheet)]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (
            out.status.code(),
            stderr,
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let named = |file: &str, rest: &str| format!("{}: {rest}", s(&corpus.join(file)));
    let (code, stderr, _) = check(&[("a", "no_mod_tags.bam")]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&named(
            "no_mod_tags.bam",
            "BAM: no base-modification calls: none of the 3 records read carries usable MM/ML \
             tags"
        )) && stderr.contains("— make the BAM with modified-base calling"),
        "{stderr}"
    );
    let (code, stderr, _) = check(&[("a", "bad_ml_length.bam"), ("b", "bad_mm_syntax.sam")]);
    assert_eq!(code, Some(1), "{stderr}");
    for (file, what) in [
        ("bad_ml_length.bam", "ML has 2 values but MM lists 5 calls"),
        ("bad_mm_syntax.sam", "malformed MM tag"),
    ] {
        let want = named(file, &format!("BAM: record 2 (read r2 at chr1:21): {what}"));
        assert!(stderr.contains(&want), "{stderr}");
    }
    let (code, stderr, _) = check(&[("a", "naming_num.dss.txt"), ("b", "no_index.bam")]);
    assert_eq!(code, Some(1), "{stderr}");
    let want = format!(
        "contig naming differs: {} vs {}: 1 ↔ chr1",
        s(&corpus.join("naming_num.dss.txt")),
        s(&corpus.join("no_index.bam"))
    );
    assert!(stderr.contains(&want), "{stderr}");
    // Three reads with calls at five CpGs each, none overlapping: 15 sites of coverage 1.
    let (code, stderr, stdout) = check(&[("a", "good_a.dss.txt"), ("b", "no_index.bam")]);
    assert_eq!(code, Some(0), "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.ends_with("no_index.bam"))
        .unwrap_or_else(|| panic!("no sample line for the BAM:\n{stdout}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cells[..9],
        ["s1", "b", "bam", "-", "15", "1.00", "1", "0.0%", "0.600"],
        "{line}"
    );
}
