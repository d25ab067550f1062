//! Pass 2 and `--resume` through the library, no binary spawned: the one pass-2 loop gives the
//! same rows whether it writes one file (`fit`) or per-contig shards (`run`), whatever the
//! minibatch; a resumed run reuses exactly what its key allows and says why it reuses nothing
//! else.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use arrow_array::RecordBatch;
use methvb_pipeline::commands::{self, Analysis, FitJob, HyperJob, RunConfig};
use methvb_pipeline::config::{AuditConfig, HyperConfig, InputConfig};
use methvb_pipeline::{Progress, Silent};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Notes and warnings, kept.
#[derive(Default)]
struct Messages(Mutex<Vec<String>>);

impl Progress for Messages {
    fn note(&self, message: &str) {
        self.0.lock().unwrap().push(message.to_string());
    }
    fn warn(&self, message: &str) {
        self.0.lock().unwrap().push(message.to_string());
    }
}

impl Messages {
    fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}

/// A simulated data set of `regions` regions on three contigs; its sample sheet.
fn simulate(dir: &Path, regions: usize) -> PathBuf {
    let cfg = methvb_sim::SimConfig {
        n_regions: regions,
        seed: 11,
        ..methvb_sim::SimConfig::default()
    };
    let data = methvb_sim::try_simulate(&cfg).unwrap();
    let opts = methvb_sim::WriteOptions {
        split_strands: false,
        split_seed: 11,
        bgzip: false,
    };
    methvb_sim::write_dataset(&data, dir, &opts)
        .unwrap()
        .sample_sheet
}

/// Every row of a Parquet file as one batch (small files), without its metadata (which names
/// the command), so that files whose batch boundaries differ compare equal.
fn rows(path: &Path) -> RecordBatch {
    let file = std::fs::File::open(path).unwrap();
    let mut reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .with_batch_size(1 << 20)
        .build()
        .unwrap();
    let batch = reader.next().unwrap().unwrap();
    assert!(reader.next().is_none(), "{} is not small", path.display());
    let plain = arrow_schema::Schema::new(batch.schema().fields().clone());
    batch.with_schema(std::sync::Arc::new(plain)).unwrap()
}

fn analysis(sheet: &Path) -> Analysis {
    Analysis::new(InputConfig::new(sheet))
}

fn run_config(sheet: &Path, out: &Path) -> RunConfig {
    RunConfig {
        analysis: analysis(sheet),
        hyper: HyperConfig::default(),
        audit: AuditConfig {
            mcmc_check: 2,
            ..AuditConfig::default()
        },
        hyper_json: None,
        out: out.to_path_buf(),
        resume: false,
        keep_shards: true,
    }
}

#[test]
fn one_file_and_shards_hold_the_same_rows_whatever_the_minibatch() {
    let tmp = tempfile::tempdir().unwrap();
    let sheet = simulate(&tmp.path().join("sim"), 40);
    let run_dir = tmp.path().join("run");
    let outcome = commands::run(&run_config(&sheet, &run_dir), &Silent).unwrap();
    assert_eq!(outcome.summary.pass.regions_used, 40);
    let shards: Vec<String> = std::fs::read_dir(run_dir.join("shards"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(shards.len() >= 2, "one shard per contig: {shards:?}");

    // `fit` with the run's Theta and a minibatch of 3 (minibatches then span contigs).
    let mut fit_analysis = analysis(&sheet);
    fit_analysis.minibatch = 3;
    let job = FitJob {
        analysis: fit_analysis,
        hyper: run_dir.join("hyper.json"),
        chrom: Vec::new(),
        out: tmp.path().join("fit.parquet"),
    };
    let summary = commands::fit(&job, &Silent).unwrap();
    assert_eq!(summary.pass.regions_used, 40);
    assert_eq!(summary.regions_called, outcome.summary.regions_called);
    assert_eq!(rows(&job.out), rows(&outcome.regions));

    // `hyper` alone learns the run's Theta.
    let hyper = HyperJob {
        analysis: analysis(&sheet),
        hyper: HyperConfig::default(),
        out: tmp.path().join("hyper.json"),
    };
    let file = commands::hyper(&hyper, &Silent).unwrap();
    let run_theta = methvb_pipeline::pass1::HyperFile::read(&run_dir.join("hyper.json"))
        .map(|(theta, _)| theta);
    assert_eq!(file.theta, run_theta.unwrap());
}

/// `methvb hyper` on `regions` simulated regions in `dir`: the sample sheet, the job (its
/// `out` is `dir/hyper.json`) and the file it wrote.
fn pass_one(dir: &Path, regions: usize) -> (PathBuf, HyperJob, methvb_pipeline::pass1::HyperFile) {
    let sheet = simulate(&dir.join("sim"), regions);
    let hyper = HyperJob {
        analysis: analysis(&sheet),
        hyper: HyperConfig::default(),
        out: dir.join("hyper.json"),
    };
    let file = commands::hyper(&hyper, &Silent).unwrap();
    (sheet, hyper, file)
}

/// Pass 1 learns the amortised start model (`hyper.json`'s `start`) and pass 2 starts its fits
/// from it; `--data-start`, and a Theta without a start model, start from the data instead:
/// those two give the same rows, and rows different from the learned start's.
#[test]
fn the_start_model_is_learned_in_pass_one_and_used_unless_turned_off() {
    let tmp = tempfile::tempdir().unwrap();
    let (sheet, hyper, file) = pass_one(tmp.path(), 150);
    let model = file
        .start
        .as_ref()
        .expect("150 regions are enough to learn a start model");
    assert_eq!(model.regions, 150);
    let bare = tmp.path().join("theta.json");
    std::fs::write(&bare, serde_json::to_string(&file.theta).unwrap()).unwrap();
    let fit = |hyper: &Path, data_start: bool, name: &str| {
        let mut analysis = analysis(&sheet);
        analysis.fit.data_start = data_start;
        let job = FitJob {
            analysis,
            hyper: hyper.to_path_buf(),
            chrom: Vec::new(),
            out: tmp.path().join(name),
        };
        commands::fit(&job, &Silent).unwrap();
        rows(&job.out)
    };
    let learned = fit(&hyper.out, false, "learned.parquet");
    let data_start = fit(&hyper.out, true, "data_start.parquet");
    let bare_theta = fit(&bare, false, "bare.parquet");
    let column = |b: &RecordBatch, name: &str| {
        b.column_by_name(name)
            .unwrap()
            .as_any()
            .downcast_ref::<arrow_array::Float64Array>()
            .unwrap()
            .values()
            .to_vec()
    };
    assert_eq!(column(&data_start, "elbo"), column(&bare_theta, "elbo"));
    assert_eq!(
        column(&data_start, "delta_mean"),
        column(&bare_theta, "delta_mean")
    );
    assert_ne!(column(&learned, "elbo"), column(&data_start, "elbo"));
}

#[test]
fn resume_reuses_what_its_key_allows_and_says_why_not_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let sheet = simulate(&tmp.path().join("sim"), 30);
    let dir = tmp.path().join("run");
    let first = commands::run(&run_config(&sheet, &dir), &Silent).unwrap();
    let clean = rows(&first.regions);

    let mut again = run_config(&sheet, &dir);
    again.resume = true;
    let messages = Messages::default();
    let resumed = commands::run(&again, &messages).unwrap();
    assert!(resumed.resume.hyper_reused, "{}", messages.text());
    assert!(resumed.resume.contigs_fitted.is_empty());
    assert_eq!(resumed.resume.regions_reused, 30);
    assert_eq!(rows(&resumed.regions), clean);

    // Another seed: neither hyper.json nor any shard is this run's, and the notes say so.
    let mut other = again.clone();
    other.analysis.model.seed = 2;
    let messages = Messages::default();
    let reseeded = commands::run(&other, &messages).unwrap();
    let text = messages.text();
    assert!(!reseeded.resume.hyper_reused);
    assert!(reseeded.resume.contigs_reused.is_empty());
    assert!(
        text.contains("not reusing") && text.contains("model.seed"),
        "{text}"
    );
    assert!(
        reseeded
            .resume
            .shards_rejected
            .iter()
            .all(|r| r.reason.contains("model.seed") && r.reason.contains("theta")),
        "{:?}",
        reseeded.resume.shards_rejected
    );

    // A setting that changes no result (the minibatch) is in no key: a run with another
    // minibatch reuses the work of this one.
    let mut minibatch = again.clone();
    minibatch.analysis.minibatch = 2;
    let after = commands::run(&minibatch, &Silent).unwrap();
    assert!(
        after.resume.contigs_reused.is_empty(),
        "seed-2 shards were left"
    );
    let back = commands::run(&again, &Silent).unwrap();
    assert!(back.resume.hyper_reused && back.resume.contigs_fitted.is_empty());
    assert_eq!(rows(&back.regions), clean);
}

/// A hyper.json whose start model has the wrong shape is refused with the reason and the line,
/// never used (pass 2 indexes its rows).
#[test]
fn a_malformed_start_model_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, hyper, _) = pass_one(tmp.path(), 120);
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&hyper.out).unwrap()).unwrap();
    json["start"]["site"] = serde_json::json!([[0.0, 1.0]]);
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    let err = methvb_pipeline::pass1::HyperFile::read(&bad).unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("bad.json")
            && text.contains("2 rows of 11 finite site coefficients")
            && text.contains("line"),
        "{text}"
    );
}
