//! The output folder of `methvb run`: which files belong to which run.
//!
//! A run folder holds `regions.parquet` (`dmrs.parquet`, `dmrs.bed` and `cpgs.parquet` for
//! `methvb dmr`), `run.json`, and, depending on the options,
//! `hyper.json` (not with `--hyper-json`), `mcmc_check.parquet` (not with `--mcmc-check 0`) and
//! `report.html` (made later by `methvb report`). A file left by an earlier run into the same
//! folder would pass for the new run's own, so:
//!
//! * `run` removes the outputs of an earlier run ([`clear_earlier_outputs`]) before it writes
//!   any of its own, keeping only a `hyper.json` it reuses or was given;
//! * `run` records in `run.json` the run id and the files it wrote (`files`), and puts the run id
//!   into the key-value metadata of every Parquet file it writes ([`RUN_ID_KEY`]); the run id is
//!   a digest of everything the rows depend on, so equal inputs and settings give equal ids
//!   (outputs stay deterministic) and `methvb fit` shards of one workflow share theirs;
//! * `report` (and whatever else reads a run folder) first calls [`check_consistent`], which
//!   refuses a folder whose files come from more than one run.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result, bail};
use crate::gather::{metadata_value, open};
use crate::schema::files::{CPGS, DMRS, DMRS_BED, HYPER, MCMC, REGIONS, REPORT, RUN};

/// Parquet metadata key (and `run.json` field `run_id`): the run the file belongs to.
pub const RUN_ID_KEY: &str = "methvb.run_id";

/// The files a run folder can hold.
const OUTPUTS: [&str; 8] = [REGIONS, RUN, HYPER, MCMC, REPORT, DMRS, DMRS_BED, CPGS];

/// The run id of the rows described by `rows_key` (every input digest and setting the rows
/// depend on): the first 16 hex digits of its SHA-256.
pub fn run_id(rows_key: &serde_json::Value) -> String {
    crate::resume::hex(&Sha256::digest(rows_key.to_string().as_bytes())[..8])
}

/// Removes from `dir` the outputs of an earlier run, except those named in `keep`; returns the
/// names removed.
pub fn clear_earlier_outputs(dir: &Path, keep: &[&str]) -> Result<Vec<&'static str>> {
    let mut removed = Vec::new();
    for name in OUTPUTS.into_iter().filter(|n| !keep.contains(n)) {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => removed.push(name),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => bail!(
                "{}: cannot remove this output of an earlier run ({e}); remove it, or choose \
                 another --out",
                path.display()
            ),
        }
    }
    Ok(removed)
}

/// The run id in the metadata of Parquet file `path`, if any.
fn parquet_run_id(path: &Path) -> Result<Option<String>> {
    Ok(metadata_value(&open(path)?, RUN_ID_KEY))
}

/// The theta of a JSON file (run.json, hyper.json), if it has one.
fn json_theta(value: &serde_json::Value) -> Option<&serde_json::Value> {
    value.get("theta").filter(|t| !t.is_null())
}

fn read_json(path: &Path) -> Result<Option<serde_json::Value>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Invalid(format!("{}: not valid JSON: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => bail!("{}: {e}", path.display()),
    }
}

/// Refuses a run folder whose files do not all belong to one run: a file `run.json` does not
/// list (or that it says the run did not make), a listed file that is missing, a Parquet file of
/// another run id, or a `hyper.json` with another Theta. Without `run.json` (a folder put
/// together by hand or by a workflow) the Parquet files' run ids and the Theta of `hyper.json`
/// must agree with those of `regions.parquet`.
pub fn check_consistent(dir: &Path) -> Result<()> {
    let present: Vec<&str> = [REGIONS, HYPER, MCMC, DMRS, CPGS]
        .into_iter()
        .filter(|n| dir.join(n).is_file())
        .collect();
    let stale = |name: &str, why: String| -> Result<()> {
        bail!(
            "{}: {why}: it is left from another run; remove it (or run again into an empty \
             folder)",
            dir.join(name).display()
        )
    };
    let run = read_json(&dir.join(RUN))?;
    let (run_id, theta) = match &run {
        Some(run) => {
            let listed: Option<Vec<&str>> = run
                .get("files")
                .and_then(|f| f.as_array())
                .map(|a| a.iter().filter_map(|v| v.as_str()).collect());
            match &listed {
                Some(listed) => {
                    for name in &present {
                        if !listed.contains(name) {
                            stale(
                                name,
                                format!(
                                    "not among the files run.json lists ({})",
                                    listed.join(", ")
                                ),
                            )?;
                        }
                    }
                    if let Some(missing) = listed
                        .iter()
                        .find(|n| OUTPUTS.contains(n) && !dir.join(n).is_file())
                    {
                        bail!(
                            "{}: run.json lists {missing}, which is missing: the folder is \
                             incomplete; run again",
                            dir.display()
                        );
                    }
                }
                // run.json of methvb 0.1.0: only the audit can be told.
                None => {
                    if present.contains(&MCMC) && run.get("mcmc_check").is_some_and(|m| m.is_null())
                    {
                        stale(MCMC, "run.json says the run made no MCMC audit".into())?;
                    }
                }
            }
            (
                run.get("run_id")
                    .and_then(|v| v.as_str())
                    .map(str::to_string),
                json_theta(run).cloned(),
            )
        }
        None if present.contains(&REGIONS) => {
            let regions = open(&dir.join(REGIONS))?;
            let theta = metadata_value(&regions, "methvb.theta")
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
            (metadata_value(&regions, RUN_ID_KEY), theta)
        }
        None => (None, None),
    };
    if let Some(want) = &run_id {
        for name in present.iter().filter(|n| n.ends_with(".parquet")) {
            if let Some(found) = parquet_run_id(&dir.join(name))?
                && &found != want
            {
                stale(
                    name,
                    format!("its run id is {found}, the folder's run is {want}"),
                )?;
            }
        }
    }
    if let (Some(want), true) = (&theta, present.contains(&HYPER))
        && let Some(hyper) = read_json(&dir.join(HYPER))?
        && json_theta(&hyper) != Some(want)
    {
        stale(
            HYPER,
            "its Theta is not the one the results were fitted with".into(),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_digests_of_the_rows_key() {
        let a = serde_json::json!({"seed": 1, "inputs": ["x"]});
        let b = serde_json::json!({"inputs": ["x"], "seed": 1});
        assert_eq!(run_id(&a), run_id(&b), "key order does not matter");
        assert_eq!(run_id(&a).len(), 16);
        assert_ne!(
            run_id(&a),
            run_id(&serde_json::json!({"seed": 2, "inputs": ["x"]}))
        );
    }

    #[test]
    fn clearing_keeps_what_is_asked_and_leaves_other_files() {
        let dir = tempfile::tempdir().unwrap();
        for name in [REGIONS, HYPER, MCMC, RUN, REPORT, "notes.txt"] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        let removed = clear_earlier_outputs(dir.path(), &[HYPER]).unwrap();
        assert_eq!(removed, [REGIONS, RUN, MCMC, REPORT]);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [HYPER, "notes.txt"]);
    }

    #[test]
    fn json_files_are_checked_against_run_json() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, v: serde_json::Value| {
            std::fs::write(dir.path().join(name), v.to_string()).unwrap()
        };
        write(
            RUN,
            serde_json::json!({"run_id": "a", "theta": {"k": 1.0}, "files": [HYPER]}),
        );
        write(HYPER, serde_json::json!({"theta": {"k": 1.0}}));
        check_consistent(dir.path()).unwrap();
        write(HYPER, serde_json::json!({"theta": {"k": 2.0}}));
        let e = check_consistent(dir.path()).unwrap_err().to_string();
        assert!(e.ends_with("hyper.json: its Theta is not the one the results were fitted with: it is left from another run; remove it (or run again into an empty folder)"), "{e}");
        write(
            RUN,
            serde_json::json!({"run_id": "a", "theta": {"k": 2.0}, "files": []}),
        );
        let e = check_consistent(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("hyper.json: not among the files run.json lists ()"),
            "{e}"
        );
        write(
            RUN,
            serde_json::json!({"run_id": "a", "files": [HYPER, REGIONS]}),
        );
        let e = check_consistent(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("run.json lists regions.parquet, which is missing"),
            "{e}"
        );
        // run.json of 0.1.0 (no files list): an audit it does not mention is refused.
        std::fs::remove_file(dir.path().join(HYPER)).unwrap();
        write(
            RUN,
            serde_json::json!({"theta": {"k": 2.0}, "mcmc_check": null}),
        );
        std::fs::write(dir.path().join(MCMC), "x").unwrap();
        let e = check_consistent(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("mcmc_check.parquet: run.json says the run made no MCMC audit"),
            "{e}"
        );
    }
}
