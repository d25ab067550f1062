//! A run folder holds the files of one run only (issue 18): `run` removes what an earlier run
//! left there and records the files it wrote and its run id; `report` refuses a folder that
//! mixes runs; `gather` refuses shards of different runs.

mod common;

use std::path::Path;

use common::{DRAWS, files_in, run_methvb, run_ok, s, simulate};

/// `methvb run` of `sheet` into `out` with small fits and `extra` options; its stderr.
fn run(sheet: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "run",
        "--samples",
        s(sheet),
        "--out",
        s(out),
        "--draws",
        DRAWS,
    ];
    args.extend_from_slice(extra);
    String::from_utf8_lossy(&run_ok(&args).stderr).into_owned()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The key-value metadata `key` of a Parquet file.
fn parquet_meta(path: &Path, key: &str) -> Option<String> {
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
    use parquet::file::reader::FileReader;
    reader
        .metadata()
        .file_metadata()
        .key_value_metadata()?
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.clone())
}

/// `methvb report dir`: Ok(stderr) or Err(stderr).
fn report(dir: &Path) -> Result<String, String> {
    let out = run_methvb(&["report", s(dir)]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        Ok(stderr)
    } else {
        Err(stderr)
    }
}

/// Regression (#18): `run` into a folder used before, with `--mcmc-check 0`, left the old
/// `mcmc_check.parquet`; `run.json` said "no audit" while the report showed the old run's audit
/// of another dataset's regions.
#[test]
fn a_run_replaces_every_output_of_an_earlier_run_and_the_report_refuses_a_mix() {
    let tmp = tempfile::tempdir().unwrap();
    let sheet_a = simulate(tmp.path(), "a", 12, 3);
    let sheet_b = simulate(tmp.path(), "b", 12, 4);
    let out = tmp.path().join("out");
    run(&sheet_a, &out, &["--mcmc-check", "1"]);
    report(&out).expect("report of a clean run");
    let run_a = json(&out.join("run.json"));
    assert_eq!(
        run_a["files"],
        serde_json::json!(["regions.parquet", "hyper.json", "mcmc_check.parquet"])
    );
    let id_a = run_a["run_id"].as_str().expect("run_id").to_string();
    for file in ["regions.parquet", "mcmc_check.parquet"] {
        assert_eq!(
            parquet_meta(&out.join(file), "methvb.run_id").as_deref(),
            Some(id_a.as_str())
        );
    }
    let keep_a = tmp.path().join("kept_a");
    std::fs::create_dir(&keep_a).unwrap();
    for file in ["mcmc_check.parquet", "hyper.json", "regions.parquet"] {
        std::fs::copy(out.join(file), keep_a.join(file)).unwrap();
    }

    let stderr = run(&sheet_b, &out, &["--mcmc-check", "0"]);
    assert!(
        stderr.contains(&format!(
            "methvb: removed the outputs of an earlier run from {}: regions.parquet, run.json, \
             hyper.json, mcmc_check.parquet, report.html",
            out.display()
        )),
        "{stderr}"
    );
    assert_eq!(
        files_in(&out),
        ["hyper.json", "regions.parquet", "run.json"]
    );
    let run_b = json(&out.join("run.json"));
    assert_eq!(
        run_b["files"],
        serde_json::json!(["regions.parquet", "hyper.json"])
    );
    let id_b = run_b["run_id"].as_str().unwrap().to_string();
    assert_ne!(id_a, id_b);
    assert!(report(&out).unwrap().contains("no MCMC audit"));

    // The earlier run's audit put back: refused, and so is its hyper.json.
    std::fs::copy(
        keep_a.join("mcmc_check.parquet"),
        out.join("mcmc_check.parquet"),
    )
    .unwrap();
    let e = report(&out).unwrap_err();
    assert!(
        e.contains(&format!(
            "{}: not among the files run.json lists (regions.parquet, hyper.json): it is left \
             from another run; remove it (or run again into an empty folder)",
            out.join("mcmc_check.parquet").display()
        )),
        "{e}"
    );
    std::fs::remove_file(out.join("mcmc_check.parquet")).unwrap();
    std::fs::copy(keep_a.join("hyper.json"), out.join("hyper.json")).unwrap();
    let e = report(&out).unwrap_err();
    assert!(
        e.contains("hyper.json: its Theta is not the one the results were fitted with"),
        "{e}"
    );
    // Without run.json (a folder put together by hand): the run ids must agree.
    let hand = tmp.path().join("hand");
    std::fs::create_dir(&hand).unwrap();
    std::fs::copy(out.join("regions.parquet"), hand.join("regions.parquet")).unwrap();
    std::fs::copy(
        keep_a.join("mcmc_check.parquet"),
        hand.join("mcmc_check.parquet"),
    )
    .unwrap();
    let e = report(&hand).unwrap_err();
    assert!(
        e.contains(&format!("its run id is {id_a}, the folder's run is {id_b}")),
        "{e}"
    );

    // `--hyper-json OUT/hyper.json` is this run's Theta: kept and listed, not removed.
    let hyper_out = out.join("hyper.json");
    run_ok(&[
        "-q",
        "hyper",
        "--samples",
        s(&sheet_b),
        "--out",
        s(&hyper_out),
        "--draws",
        DRAWS,
    ]);
    let hyper = out.join("hyper.json");
    run(
        &sheet_b,
        &out,
        &["--mcmc-check", "0", "--hyper-json", s(&hyper)],
    );
    assert!(hyper.is_file());
    assert_eq!(
        json(&out.join("run.json"))["files"],
        serde_json::json!(["regions.parquet", "hyper.json"])
    );
    report(&out).expect("report after --hyper-json OUT/hyper.json");
    // A Theta from elsewhere: the old hyper.json goes.
    let elsewhere = keep_a.join("hyper.json");
    run(
        &sheet_b,
        &out,
        &["--mcmc-check", "0", "--hyper-json", s(&elsewhere)],
    );
    assert_eq!(files_in(&out), ["regions.parquet", "run.json"]);
    assert_eq!(
        json(&out.join("run.json"))["files"],
        serde_json::json!(["regions.parquet"])
    );
    report(&out).expect("report of a run with a given Theta");
}

/// Regression (#18): `gather` checked only seed, Theta, delta0 and version, so shards fitted
/// from other inputs with a copied hyper.json went into one table.
#[test]
fn gather_refuses_shards_of_different_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let sheet_a = simulate(tmp.path(), "a", 12, 3);
    let sheet_b = simulate(tmp.path(), "b", 12, 4);
    let hyper = tmp.path().join("hyper.json");
    run_ok(&[
        "-q",
        "hyper",
        "--samples",
        s(&sheet_a),
        "--out",
        s(&hyper),
        "--draws",
        DRAWS,
    ]);
    let fit = |sheet: &Path, chrom: &str| {
        let shard = tmp.path().join(format!(
            "{chrom}-{}.parquet",
            sheet
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
        ));
        run_ok(&[
            "-q",
            "fit",
            "--samples",
            s(sheet),
            "--hyper",
            s(&hyper),
            "--chrom",
            chrom,
            "--out",
            s(&shard),
            "--draws",
            DRAWS,
        ]);
        shard
    };
    let (a1, a2, b2) = (
        fit(&sheet_a, "chr1"),
        fit(&sheet_a, "chr2"),
        fit(&sheet_b, "chr2"),
    );
    let gathered = tmp.path().join("gathered.parquet");
    run_ok(&["-q", "gather", "--out", s(&gathered), s(&a1), s(&a2)]);
    assert_eq!(
        parquet_meta(&gathered, "methvb.run_id"),
        parquet_meta(&a1, "methvb.run_id"),
        "the shards of one workflow share a run id"
    );
    let out = run_methvb(&["gather", "--out", s(&gathered), s(&a1), s(&b2)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: from another run than {} (methvb.run_id",
            b2.display(),
            a1.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("gather the shards of one workflow only"),
        "{stderr}"
    );
}
