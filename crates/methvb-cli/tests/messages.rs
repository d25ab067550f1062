//! Messages that say what is wrong and what to do (issue 18), through the real binary: option
//! ranges, design warnings of `run`, the true cause when no region is left, and region ids made
//! unique.

mod common;

use std::path::{Path, PathBuf};

use common::{DRAWS, dss_dir, read_table, run_methvb, run_ok, s};

/// The bad-input corpus folder (small hand-written DSS files `good_a` and `good_b`).
fn corpus() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../test-data/bad"))
        .canonicalize()
        .unwrap()
}

/// Writes a sheet of `(sample, group, file)` rows into `dir`.
fn sheet(dir: &Path, rows: &[(&str, &str, &Path)]) -> PathBuf {
    let mut text = String::from("sample\tgroup\tpath\n");
    for (sample, group, file) in rows {
        text.push_str(&format!("{sample}\t{group}\t{}\n", file.display()));
    }
    let path = dir.join("sheet.tsv");
    std::fs::write(&path, text).unwrap();
    path
}

fn stderr_of(args: &[&str]) -> (Option<i32>, String) {
    let out = run_methvb(args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Regression (#18): `--fdr 2` and `--delta0 1.5` were accepted (everything / nothing called);
/// `--draws 1` and `--spike-sd 0` failed only after pass 1, `--minibatch 0` and
/// `--hyper-regions 0` were silently read as 1.
#[test]
fn model_options_outside_their_range_are_refused_with_the_range() {
    let tmp = tempfile::tempdir().unwrap();
    let sheet = corpus().join("sheet_good.tsv");
    let out = tmp.path().join("out");
    for (option, value, want) in [
        (
            "--fdr",
            "2",
            "the FDR target (e.g. 0.05) must be between 0 and 1 (exclusive), got 2",
        ),
        ("--fdr", "0", "must be between 0 and 1 (exclusive), got 0"),
        (
            "--delta0",
            "1.5",
            "the effect size delta0, a difference of methylation levels (e.g. 0.1) must be between 0 and 1 (exclusive), got 1.5",
        ),
        ("--delta0", "x", "\"x\" is not a number"),
        ("--draws", "99", "99 is not in 100.."),
        (
            "--spike-sd",
            "0",
            "the spike width must be at least 0.05 (logit scale), got 0",
        ),
        ("--minibatch", "0", "must be at least 1"),
        ("--hyper-regions", "0", "must be at least 1"),
        ("--batch-size", "0", "must be at least 1"),
    ] {
        let (code, stderr) = stderr_of(&[
            "run",
            "--samples",
            s(&sheet),
            "--out",
            s(&out),
            option,
            value,
        ]);
        assert_eq!(code, Some(2), "{option} {value}: {stderr}");
        assert!(
            stderr.contains(&format!("invalid value '{value}' for '{option}")),
            "{stderr}"
        );
        assert!(stderr.contains(want), "{option} {value}: {stderr}");
        assert!(!out.exists(), "nothing is written");
    }
    let (code, stderr) = stderr_of(&["gather", "--fdr", "1", "--out", s(&out), "x.parquet"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("must be between 0 and 1 (exclusive), got 1"),
        "{stderr}"
    );
}

/// Regression (#18): 1 vs 1 samples, a single group, a group typo `Treat` next to `treat`, and
/// Theta learned from 2 regions all ran without a word.
#[test]
fn run_warns_about_designs_that_cannot_answer_the_question() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (
        corpus().join("good_a.dss.txt"),
        corpus().join("good_b.dss.txt"),
    );
    let bed = tmp.path().join("two.bed");
    std::fs::write(&bed, "chr1\t0\t200\tr1\nchr2\t0\t100\tr2\n").unwrap();
    let out = tmp.path().join("out");
    let run = |sheet: &Path| {
        let args = [
            "--threads",
            "1",
            "run",
            "--samples",
            s(sheet),
            "--regions",
            s(&bed),
            "--min-sites",
            "1",
            "--out",
            s(&out),
            "--draws",
            DRAWS,
            "--mcmc-check",
            "0",
        ];
        String::from_utf8_lossy(&run_ok(&args).stderr).into_owned()
    };
    let typo = sheet(
        tmp.path(),
        &[("A1", "ctrl", &a), ("B1", "treat", &b), ("B2", "Treat", &b)],
    );
    let stderr = run(&typo);
    for want in [
        format!(
            "methvb: warning: {}: every group has a single sample: the between-sample \
             dispersion cannot be learned from the data and rests on the prior alone, so \
             intervals are wide and calls few; add biological replicates",
            typo.display()
        ),
        format!(
            "methvb: warning: {}:4: group Treat differs from group treat (line 3) only in case \
             or punctuation, so they are two groups; if it is a typo, spell both the same",
            typo.display()
        ),
        "methvb: warning: Theta is learned from only 2 regions: empirical Bayes needs hundreds"
            .to_string(),
    ] {
        assert!(stderr.contains(&want), "{stderr}\nlacks {want}");
    }
    let run_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    let pass1 = run_json["pass1"]["warnings"].to_string();
    assert!(
        pass1.contains("Theta is learned from only 2 regions"),
        "{pass1}"
    );
    let one = sheet(tmp.path(), &[("A1", "ctrl", &a), ("A2", "ctrl", &b)]);
    let stderr = run(&one);
    assert!(
        stderr.contains(
            "a single group (ctrl): run estimates its methylation but tests no difference, so \
             no region is called; to compare groups, add the samples of another group to the \
             sheet"
        ),
        "{stderr}"
    );
}

/// Regression (#18): BAM samples whose sites never meet across groups said "no region passed
/// the filters (0 with too few sites, 0 without sites)".
#[test]
fn bam_samples_whose_sites_never_meet_say_so() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dss_dir().parent().unwrap().to_path_buf();
    let sheet = sheet(
        tmp.path(),
        &[
            ("A", "g1", &data.join("bismark/tiny_pe_bismark.bam")),
            (
                "B",
                "g2",
                &data.join("methylkit/test.bismark_single_end.sorted.bam"),
            ),
        ],
    );
    let out = tmp.path().join("out");
    let (code, stderr) = stderr_of(&["run", "--samples", s(&sheet), "--out", s(&out)]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "no region to fit: all 1391 sites dropped: no site has coverage in every group — the \
             groups' samples cover different positions"
        ),
        "{stderr}"
    );
}

/// Regression (#18): two regions named `CpG: 35` shared one id, so the audit counted 5 regions
/// where the run had 6. Region ids are now unique, and `run` says how shared names were
/// renamed.
#[test]
fn shared_region_names_become_unique_ids_through_run_and_audit() {
    let tmp = tempfile::tempdir().unwrap();
    let sheet = common::write_dss_sheet(tmp.path());
    let bed = tmp.path().join("islands.bed");
    std::fs::write(
        &bed,
        "chr18\t3040000\t3050000\tCpG: 35\nchr18\t3090000\t3100000\tCpG: 47\n\
         chr18\t3580000\t3590000\tCpG: 35\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let args = [
        "--threads",
        "1",
        "run",
        "--samples",
        s(&sheet),
        "--regions",
        s(&bed),
        "--out",
        s(&out),
        "--draws",
        DRAWS,
        "--mcmc-check",
        "3",
    ];
    let stderr = String::from_utf8_lossy(&run_ok(&args).stderr).into_owned();
    assert!(
        stderr.contains(&format!(
            "methvb: warning: {}: 1 name is shared by 2 regions (e.g. \"CpG: 35\" on lines 1, \
             3); region ids must be unique, so each of those regions is named \
             name@chrom:start-end",
            bed.display()
        )),
        "{stderr}"
    );
    let ids = |file: &str| -> Vec<String> {
        let t = read_table(&out.join(file));
        let mut v: Vec<String> = t
            .column("region_id")
            .iter()
            .map(|c| c.as_str().to_string())
            .collect();
        v.sort();
        v
    };
    let want = [
        "CpG: 35@chr18:3040000-3050000",
        "CpG: 35@chr18:3580000-3590000",
        "CpG: 47",
    ];
    assert_eq!(ids("regions.parquet"), want);
    assert_eq!(
        ids("mcmc_check.parquet")
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3
    );
}
