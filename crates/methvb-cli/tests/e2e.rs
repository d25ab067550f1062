//! End-to-end tests of `methvb run` on small simulated datasets: results do not depend on the
//! thread count, a sharded workflow (`hyper`, `fit --chrom`, `gather`) reproduces `run` bit for
//! bit, and a run killed with SIGKILL leaves no published results and can simply be rerun.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{DRAWS, assert_same_rows, files_in, methvb, read_table, run_ok, s, theta_of};

/// Simulates `regions` regions (3 vs 3 samples, chr1..chr3) into `dir/sim`; returns the sheet.
fn simulate(dir: &Path, regions: usize, seed: u64) -> std::path::PathBuf {
    let sim = dir.join("sim");
    run_ok(&[
        "-q",
        "simulate",
        "--out",
        s(&sim),
        "--regions",
        &regions.to_string(),
        "--seed",
        &seed.to_string(),
    ]);
    let sheet = sim.join("samples.tsv");
    assert!(sheet.is_file(), "simulate wrote no sample sheet");
    sheet
}

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
        "--draws",
        DRAWS,
        "--seed",
        "5",
    ];
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
    let sheet = simulate(tmp.path(), 60, 11);
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
fn sharded_hyper_fit_gather_equals_run() {
    let tmp = tempfile::tempdir().unwrap();
    let sheet = simulate(tmp.path(), 60, 12);
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

#[test]
fn sigkill_mid_run_publishes_nothing_and_rerun_matches_clean_run() {
    let tmp = tempfile::tempdir().unwrap();
    let sheet = simulate(tmp.path(), 80, 13);
    let sheet = s(&sheet);
    let dir = tmp.path().join("killed");
    let clean = tmp.path().join("clean");

    let mut child = methvb(&run_args("1", sheet, s(&dir), &[]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting methvb run");
    let pid = child.id();
    // Pass 2 writes its rows to DIR/.regions.parquet.fitted.tmp-<pid> before anything is
    // published; kill as soon as that file exists, i.e. in the middle of pass 2.
    let fitted_tmp = dir.join(format!(".regions.parquet.fitted.tmp-{pid}"));
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("polling the child") {
            panic!(
                "methvb run exited ({status}) before it could be killed mid-pass-2; \
                 the dataset is too small for this test"
            );
        }
        if fitted_tmp.exists() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "pass 2 did not start within 300 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix.
    let status = child.wait().expect("reaping the child");
    assert!(!status.success(), "killed run reported success");

    let left = files_in(&dir);
    assert!(
        !dir.join("regions.parquet").exists(),
        "a killed run left regions.parquet behind: {left:?}"
    );
    assert!(
        !dir.join("run.json").exists(),
        "a killed run left run.json: {left:?}"
    );
    // What may remain: hyper.json (pass 1 finished and was published atomically) and hidden
    // temporaries of the killed process (`.regions.parquet.fitted.tmp-<pid>`).
    for name in &left {
        assert!(
            name == "hyper.json" || name.starts_with('.'),
            "killed run left a visible partial file {name:?} (all: {left:?})"
        );
    }
    eprintln!("files left by the killed run: {left:?}");

    // Rerun into the same directory, and a clean run elsewhere: identical results.
    run_ok(&run_args("1", sheet, s(&dir), &[]));
    run_ok(&run_args("1", sheet, s(&clean), &[]));
    assert_same_rows(&dir.join("regions.parquet"), &clean.join("regions.parquet"));
    assert_eq!(
        theta_of(&dir.join("hyper.json")),
        theta_of(&clean.join("hyper.json"))
    );
    let after = files_in(&dir);
    eprintln!("files after the rerun: {after:?}");
    for name in ["hyper.json", "regions.parquet", "run.json"] {
        assert!(
            after.iter().any(|n| n == name),
            "rerun did not write {name}: {after:?}"
        );
    }
}
