//! End-to-end tests of `methvb run` on small simulated datasets: results do not depend on the
//! thread count, a sharded workflow (`hyper`, `fit --chrom`, `gather`) reproduces `run` bit for
//! bit, a run killed with SIGKILL leaves no published results and `run --resume` finishes it
//! with the same bytes as an uninterrupted run, and `--resume` refits damaged or foreign shards
//! (issue 7, "no lost work").

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use common::{
    DRAWS, assert_same_rows, files_in, methvb, read_table, run_ok, s, simulate, theta_of,
};

/// `methvb [--threads t] run` with the test's model options into `out`.
fn run_args<'a>(threads: &'a str, sheet: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "-q",
        "--threads",
        threads,
        "run",
        "--samples",
        sheet,
        "--out",
        out,
        "--seed",
        "5",
    ];
    if !extra.contains(&"--draws") {
        args.extend_from_slice(&["--draws", DRAWS]);
    }
    // The NUTS audit (mcmc_check.parquet) is off unless a test asks for it: it is slow in debug.
    if !extra.contains(&"--mcmc-check") {
        args.extend_from_slice(&["--mcmc-check", "0"]);
    }
    args.extend_from_slice(extra);
    args
}

#[test]
fn run_rows_and_theta_do_not_depend_on_threads_or_minibatch() {
    let tmp = tempfile::tempdir().unwrap();
    let sheet = simulate(tmp.path(), "sim", 60, 11);
    let (one, two) = (tmp.path().join("t1"), tmp.path().join("t2"));
    run_ok(&run_args("1", s(&sheet), s(&one), &["--mcmc-check", "2"]));
    // Two threads and a minibatch that does not divide the region count: every region's
    // random stream derives from (seed, region id), so neither may change a single bit.
    run_ok(&run_args(
        "2",
        s(&sheet),
        s(&two),
        &["--minibatch", "7", "--mcmc-check", "2"],
    ));
    for dir in [&one, &two] {
        let files = files_in(dir);
        for name in [
            "hyper.json",
            "regions.parquet",
            "run.json",
            "mcmc_check.parquet",
        ] {
            assert!(
                files.iter().any(|f| f == name),
                "{name} missing in {}: {files:?}",
                dir.display()
            );
        }
        assert!(
            !files
                .iter()
                .any(|f| f.starts_with('.') || f.contains(".tmp")),
            "temporary files left in {}: {files:?}",
            dir.display()
        );
    }
    assert_eq!(
        theta_of(&one.join("hyper.json")),
        theta_of(&two.join("hyper.json")),
        "Theta differs between --threads 1 and --threads 2"
    );
    assert_same_rows(
        &one.join("mcmc_check.parquet"),
        &two.join("mcmc_check.parquet"),
    );
    assert_same_rows(&one.join("regions.parquet"), &two.join("regions.parquet"));
    // The table is about the simulated regions: one row per cluster, in genomic order, all
    // three contigs present.
    let table = read_table(&one.join("regions.parquet"));
    assert!(
        (50..=60).contains(&table.rows.len()),
        "{} regions fitted from 60 simulated",
        table.rows.len()
    );
    let chroms: Vec<&str> = table.column("chrom").iter().map(|c| c.as_str()).collect();
    let mut sorted = chroms.clone();
    sorted.sort();
    assert_eq!(chroms, sorted, "rows are not in contig order");
    sorted.dedup();
    assert_eq!(sorted, ["chr1", "chr2", "chr3"]);
}

#[test]
fn draws_and_max_refit_reach_the_fit_and_the_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let sheet = simulate(tmp.path(), "sim", 40, 12);
    let out = tmp.path().join("out");
    run_ok(&run_args(
        "2",
        s(&sheet),
        s(&out),
        &["--draws", "100", "--max-refit", "0"],
    ));
    let table = read_table(&out.join("regions.parquet"));
    assert!(table.rows.len() >= 30, "{} regions", table.rows.len());
    // 100 draws give the threshold min(1 - 1/log10(100), 0.7) = 0.5; no region is refitted,
    // flagged or not, so every row reports the first (structured) fit.
    for cell in table.column("khat_threshold") {
        assert!((cell.as_f64() - 0.5).abs() < 1e-12, "{cell:?}");
    }
    assert!(table.column("refit").iter().all(|c| c.as_int() == 0));
    assert!(
        table
            .column("family")
            .iter()
            .all(|c| c.as_str() == "structured")
    );
    // The effective sample size of the weights cannot exceed the draws.
    assert!(
        table
            .column("ess")
            .iter()
            .all(|c| c.as_f64() <= 100.0 + 1e-9)
    );
    let opts = &run_json(&out)["fit_options"];
    assert_eq!(opts["n_draws"], 100);
    assert_eq!(opts["max_refit"], 0);
    // Out-of-range values are refused by the parser, naming the option.
    let bad = common::run_methvb(&run_args(
        "1",
        s(&sheet),
        s(&tmp.path().join("bad")),
        &["--draws", "10"],
    ));
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--draws"));
}

#[test]
fn sharded_hyper_fit_gather_equals_run() {
    let tmp = tempfile::tempdir().unwrap();
    let sheet = simulate(tmp.path(), "sim", 60, 12);
    let sheet = s(&sheet);
    let whole = tmp.path().join("whole");
    run_ok(&run_args("2", sheet, s(&whole), &[]));

    let hyper = tmp.path().join("hyper.json");
    run_ok(&[
        "-q",
        "hyper",
        "--samples",
        sheet,
        "--out",
        s(&hyper),
        "--seed",
        "5",
        "--draws",
        DRAWS,
    ]);
    assert_eq!(
        theta_of(&hyper),
        theta_of(&whole.join("hyper.json")),
        "`methvb hyper` learned a different Theta than `methvb run`"
    );
    let mut shards = Vec::new();
    for chrom in ["chr1", "chr2", "chr3"] {
        let shard = tmp.path().join(format!("{chrom}.parquet"));
        run_ok(&[
            "-q",
            "fit",
            "--samples",
            sheet,
            "--hyper",
            s(&hyper),
            "--chrom",
            chrom,
            "--out",
            s(&shard),
            "--seed",
            "5",
            "--draws",
            DRAWS,
        ]);
        let t = read_table(&shard);
        assert!(!t.rows.is_empty(), "shard {chrom} is empty");
        assert!(
            t.column("chrom").iter().all(|c| c.as_str() == chrom),
            "shard {chrom} holds rows of other contigs"
        );
        shards.push(shard);
    }
    let gathered = tmp.path().join("gathered.parquet");
    let mut args = vec!["-q", "gather", "--out", s(&gathered)];
    args.extend(shards.iter().map(|p| s(p)));
    run_ok(&args);
    assert_same_rows(&whole.join("regions.parquet"), &gathered);
}

/// Arguments of a `run` whose command line is the same whatever the folder it runs in (a
/// relative `--out`, the sheet by absolute path) and the thread count (set through
/// `RAYON_NUM_THREADS`, not `--threads`), so that the outputs of two such runs can be compared
/// byte for byte: the command line is part of the Parquet metadata.
fn portable_run_args<'a>(sheet: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        "--samples",
        sheet,
        "--out",
        "out",
        "--draws",
        DRAWS,
        "--seed",
        "5",
        "--mcmc-check",
        "0",
        // Small minibatches: shards are published one contig at a time while the run goes on.
        "--minibatch",
        "4",
    ];
    args.extend_from_slice(extra);
    args
}

/// Runs `methvb args` in `cwd` on `threads` rayon threads; panics with stderr unless it succeeds.
fn run_in(cwd: &Path, threads: &str, args: &[&str]) -> Output {
    std::fs::create_dir_all(cwd).unwrap();
    let out = methvb(args)
        .current_dir(cwd)
        .env("RAYON_NUM_THREADS", threads)
        .output()
        .expect("starting methvb");
    assert!(
        out.status.success(),
        "methvb {} failed ({}):\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// run.json of `dir`.
fn run_json(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("run.json")).expect("run.json");
    serde_json::from_str(&text).expect("run.json is JSON")
}

/// The strings of a JSON array at `pointer`.
fn strings_at(v: &serde_json::Value, pointer: &str) -> Vec<String> {
    v.pointer(pointer)
        .and_then(|a| a.as_array())
        .unwrap_or_else(|| panic!("no array at {pointer} in {v}"))
        .iter()
        .map(|x| x.as_str().expect("string").to_string())
        .collect()
}

/// Visible files of `dir` (hidden temporaries of a killed process are allowed to remain).
fn visible(dir: &Path) -> Vec<String> {
    files_in(dir)
        .into_iter()
        .filter(|f| !f.starts_with('.'))
        .collect()
}

#[test]
fn sigkill_after_a_shard_then_resume_equals_an_uninterrupted_run_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let sheet = simulate(tmp.path(), "sim", 90, 13);
    let sheet = s(&sheet);
    let killed_cwd = tmp.path().join("killed");
    let clean_cwd = tmp.path().join("clean");
    std::fs::create_dir_all(&killed_cwd).unwrap();
    let out = killed_cwd.join("out");
    let shards = out.join("shards");

    // A plain run (no --resume), killed with SIGKILL as soon as the first contig's shard is
    // published: pass 2 is then under way on the next contigs.
    let mut child = methvb(&portable_run_args(sheet, &["-q"]))
        .current_dir(&killed_cwd)
        .env("RAYON_NUM_THREADS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting methvb run");
    let first_shard = shards.join("chr1.parquet");
    loop {
        if let Some(status) = child.try_wait().expect("polling the child") {
            panic!(
                "methvb run exited ({status}) before it could be killed after its first shard; \
                 the dataset is too small for this test"
            );
        }
        if first_shard.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix.
    let status = child.wait().expect("reaping the child");
    assert!(!status.success(), "killed run reported success");

    // Nothing published but hyper.json and complete shards; no visible partial file.
    assert_eq!(
        visible(&out),
        ["hyper.json"],
        "a killed run published more than hyper.json (all: {:?})",
        files_in(&out)
    );
    let done = visible(&shards);
    assert!(
        done.iter().any(|f| f == "chr1.parquet"),
        "shards left: {done:?}"
    );
    assert!(
        !done.iter().any(|f| f == "chr3.parquet"),
        "the run was not killed mid-pass-2: every shard is there ({done:?})"
    );
    for name in &done {
        let table = read_table(&shards.join(name));
        assert!(!table.rows.is_empty(), "shard {name} is empty");
    }
    eprintln!(
        "left by the killed run: {:?}, shards {:?}",
        files_in(&out),
        files_in(&shards)
    );

    // Resume on two threads; then an uninterrupted run, same command line, on one thread.
    let resumed = run_in(&killed_cwd, "2", &portable_run_args(sheet, &["--resume"]));
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(
        stderr.contains("reusing hyper.json") && stderr.contains("(chr1"),
        "the resumed run does not report what it reused:\n{stderr}"
    );
    let report = run_json(&out);
    let reused = strings_at(&report, "/resume/contigs_reused");
    assert_eq!(
        reused,
        done.iter()
            .map(|f| f.trim_end_matches(".parquet"))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        report.pointer("/resume/hyper_reused"),
        Some(&serde_json::json!(true))
    );
    let mut all = reused.clone();
    all.extend(strings_at(&report, "/resume/contigs_fitted"));
    all.sort();
    assert_eq!(all, ["chr1", "chr2", "chr3"]);
    assert!(
        !shards.exists(),
        "shards/ is removed after a successful run without --keep-shards"
    );
    assert!(
        files_in(&out).iter().all(|f| !f.starts_with('.')),
        "temporaries left after the resumed run: {:?}",
        files_in(&out)
    );

    run_in(&clean_cwd, "1", &portable_run_args(sheet, &["--resume"]));
    let clean = clean_cwd.join("out");
    assert!(
        strings_at(&run_json(&clean), "/resume/contigs_reused").is_empty(),
        "--resume into an empty folder reused something"
    );
    // Byte for byte: the same rows, row groups, pages and metadata (the command lines are equal).
    assert!(
        std::fs::read(out.join("regions.parquet")).unwrap()
            == std::fs::read(clean.join("regions.parquet")).unwrap(),
        "regions.parquet of the resumed run differs from that of an uninterrupted run"
    );
    // hyper.json holds timings; its Theta is the same.
    assert_eq!(
        theta_of(&out.join("hyper.json")),
        theta_of(&clean.join("hyper.json"))
    );

    // And a run without --resume gives the same rows (its metadata differs: the command line).
    let plain_cwd = tmp.path().join("plain");
    run_in(&plain_cwd, "2", &portable_run_args(sheet, &[]));
    assert_same_rows(
        &plain_cwd.join("out/regions.parquet"),
        &out.join("regions.parquet"),
    );
}

/// Copies `from` over `to`.
fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
}

#[test]
fn resume_refits_damaged_and_foreign_shards_and_relearns_a_foreign_theta() {
    let tmp = tempfile::tempdir().unwrap();
    let sheet = simulate(tmp.path(), "sim", 60, 14);
    let sheet = s(&sheet);
    let dir = tmp.path().join("run");
    let other = tmp.path().join("seed6");
    let keep = ["--keep-shards", "--mcmc-check", "2", "--minibatch", "5"];
    run_ok(&run_args("2", sheet, s(&dir), &keep));
    let shard = |d: &Path, c: &str| -> PathBuf { d.join("shards").join(format!("{c}.parquet")) };
    for chrom in ["chr1", "chr2", "chr3"] {
        let t = read_table(&shard(&dir, chrom));
        assert!(
            t.column("chrom").iter().all(|c| c.as_str() == chrom),
            "shard {chrom} holds other contigs"
        );
    }
    let clean = tmp.path().join("clean_regions.parquet");
    let clean_audit = tmp.path().join("clean_mcmc.parquet");
    copy(&dir.join("regions.parquet"), &clean);
    copy(&dir.join("mcmc_check.parquet"), &clean_audit);
    let clean_theta = theta_of(&dir.join("hyper.json"));

    // A run with another seed: its shards and hyper.json must not be taken for this run's.
    let mut seed6 = run_args("2", sheet, s(&other), &["--keep-shards"]);
    let at = seed6.iter().position(|a| *a == "5").unwrap();
    seed6[at] = "6";
    run_ok(&seed6);

    // chr2's shard truncated, chr3's shard and hyper.json from the seed-6 run.
    let bytes = std::fs::read(shard(&dir, "chr2")).unwrap();
    std::fs::write(shard(&dir, "chr2"), &bytes[..bytes.len() / 2]).unwrap();
    copy(&shard(&other, "chr3"), &shard(&dir, "chr3"));
    copy(&other.join("hyper.json"), &dir.join("hyper.json"));
    std::fs::remove_file(dir.join("regions.parquet")).unwrap();

    let mut args = run_args("1", sheet, s(&dir), &keep);
    args.retain(|a| *a != "-q");
    args.push("--resume");
    let out = run_ok(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    let report = run_json(&dir);
    assert_eq!(
        report.pointer("/resume/hyper_reused"),
        Some(&serde_json::json!(false)),
        "a hyper.json learned with another seed was reused"
    );
    assert!(
        stderr.contains("not reusing") && stderr.contains("hyper.json") && stderr.contains("seed"),
        "no word on why hyper.json was not reused:\n{stderr}"
    );
    assert_eq!(strings_at(&report, "/resume/contigs_reused"), ["chr1"]);
    assert_eq!(
        strings_at(&report, "/resume/contigs_fitted"),
        ["chr2", "chr3"]
    );
    let rejected = report
        .pointer("/resume/shards_rejected")
        .and_then(|r| r.as_array())
        .expect("shards_rejected");
    let reason = |chrom: &str| -> String {
        rejected
            .iter()
            .find(|r| {
                r["file"]
                    .as_str()
                    .is_some_and(|f| f.ends_with(&format!("{chrom}.parquet")))
            })
            .and_then(|r| r["reason"].as_str())
            .unwrap_or_else(|| panic!("{chrom} not among the rejected shards: {rejected:?}"))
            .to_string()
    };
    assert!(
        reason("chr2").contains("not a readable Parquet file"),
        "{}",
        reason("chr2")
    );
    let chr3 = reason("chr3");
    assert!(chr3.contains("seed") && chr3.contains("theta"), "{chr3}");
    // Rows equal those of the uninterrupted run (the files differ in the command line of their
    // metadata); so do the audit's, though chr1's audited regions were not fitted again.
    assert_same_rows(&clean, &dir.join("regions.parquet"));
    assert_same_rows(&clean_audit, &dir.join("mcmc_check.parquet"));
    assert_eq!(theta_of(&dir.join("hyper.json")), clean_theta);
    // The refitted shards are this run's now: a second --resume reuses all three.
    run_ok(&args);
    assert_eq!(
        strings_at(&run_json(&dir), "/resume/contigs_reused"),
        ["chr1", "chr2", "chr3"]
    );
    assert_same_rows(&clean, &dir.join("regions.parquet"));
}
