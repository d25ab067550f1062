//! Designs through the library: a batch partly confounded with the group makes wrong calls
//! unless it is a covariate, and pairing by donor beats ignoring the pairs. The data are the
//! simulator's realistic mode (not the model's), 4 vs 4, with the truth known per region.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow_array::{Array, BooleanArray, Float64Array, RecordBatch, StringArray};
use methvb_pipeline::Silent;
use methvb_pipeline::commands::{self, Analysis, RunConfig};
use methvb_pipeline::config::{AuditConfig, HyperConfig, InputConfig};
use methvb_pipeline::design::DesignConfig;
use methvb_sim::{BatchParams, PairedParams, SimConfig, SimData};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const REGIONS: usize = 500;

/// 4 vs 4 realistic data at 15x with 20% DMRs, written under `dir`; its sheet and truth.
fn simulate(dir: &Path, design: impl FnOnce(&mut SimConfig)) -> (PathBuf, SimData) {
    let mut cfg = SimConfig {
        n_regions: REGIONS,
        samples_per_group: vec![4, 4],
        dmr_fraction: 0.2,
        mean_coverage: 15.0,
        mode: methvb_sim::SimMode::Realistic,
        seed: 23,
        ..SimConfig::default()
    };
    design(&mut cfg);
    let data = methvb_sim::try_simulate(&cfg).unwrap();
    let opts = methvb_sim::WriteOptions {
        split_strands: false,
        split_seed: 23,
        bgzip: false,
    };
    let sheet = methvb_sim::write_dataset(&data, dir, &opts)
        .unwrap()
        .sample_sheet;
    (sheet, data)
}

/// One region's result.
struct Row {
    prob_dm: f64,
    called: bool,
    q025: f64,
    q975: f64,
}

/// `methvb run` on `sheet` with the regions of the simulation and `design`; rows by region id.
fn run(sheet: &Path, out: &Path, design: DesignConfig) -> HashMap<String, Row> {
    let mut input = InputConfig::new(sheet);
    input.design = design;
    let mut analysis = Analysis::new(input);
    analysis.regions.regions = Some(sheet.with_file_name("regions.bed").into());
    let config = RunConfig {
        analysis,
        hyper: HyperConfig::default(),
        audit: AuditConfig::OFF,
        hyper_json: None,
        out: out.to_path_buf(),
        resume: false,
        keep_shards: false,
    };
    let outcome = commands::run(&config, &Silent).unwrap();
    let file = std::fs::File::open(&outcome.regions).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .with_batch_size(1 << 20)
        .build()
        .unwrap();
    let mut rows = HashMap::new();
    for batch in reader {
        let batch: RecordBatch = batch.unwrap();
        let col = |name: &str| batch.column_by_name(name).unwrap().clone();
        let f64s = |name: &str| {
            col(name)
                .as_any()
                .downcast_ref::<Float64Array>()
                .unwrap()
                .clone()
        };
        let ids = col("region_id");
        let ids = ids.as_any().downcast_ref::<StringArray>().unwrap();
        let called = col("called");
        let called = called.as_any().downcast_ref::<BooleanArray>().unwrap();
        let (p, lo, hi) = (f64s("prob_dm"), f64s("delta_q025"), f64s("delta_q975"));
        for i in 0..batch.num_rows() {
            rows.insert(
                ids.value(i).to_string(),
                Row {
                    prob_dm: p.value(i),
                    called: called.value(i),
                    q025: lo.value(i),
                    q975: hi.value(i),
                },
            );
        }
    }
    assert_eq!(rows.len(), REGIONS);
    rows
}

/// Scores against the truth as `benches/compare/score.py` does: a true DMR is a region the
/// simulator gave a group effect; coverage is that of its true delta (at the reference batch,
/// donor effect 0).
struct Score {
    auprc: f64,
    calls: usize,
    false_calls: usize,
    coverage: f64,
    dmrs: usize,
}

fn score(data: &SimData, rows: &HashMap<String, Row>) -> Score {
    let truth: Vec<(bool, &Row, f64)> = data
        .regions
        .iter()
        .map(|r| (r.is_dmr, &rows[&r.id], r.true_delta[0]))
        .collect();
    let mut ranked: Vec<&(bool, &Row, f64)> = truth.iter().collect();
    ranked.sort_by(|a, b| b.1.prob_dm.total_cmp(&a.1.prob_dm));
    let positives = truth.iter().filter(|t| t.0).count();
    let (mut hits, mut auprc) = (0usize, 0.0);
    for (k, t) in ranked.iter().enumerate() {
        if t.0 {
            hits += 1;
            auprc += hits as f64 / (k + 1) as f64;
        }
    }
    let calls = truth.iter().filter(|t| t.1.called).count();
    let false_calls = truth.iter().filter(|t| t.1.called && !t.0).count();
    let dmrs: Vec<_> = truth.iter().filter(|t| t.0).collect();
    let covered = dmrs
        .iter()
        .filter(|t| t.1.q025 <= t.2 && t.2 <= t.1.q975)
        .count();
    Score {
        auprc: auprc / positives.max(1) as f64,
        calls,
        false_calls,
        coverage: covered as f64 / dmrs.len().max(1) as f64,
        dmrs: dmrs.len(),
    }
}

/// The largest realised FDR consistent with a target of 0.05 at `calls` calls: three binomial
/// sds above the target (a bound one sd above would fail every sixth run).
fn fdr_bound(calls: usize) -> f64 {
    0.05 + 3.0 * (0.05 * 0.95 / calls.max(1) as f64).sqrt()
}

/// Three binomial sds of a proportion near `p` over `n` trials.
fn three_sd(p: f64, n: usize) -> f64 {
    3.0 * (p * (1.0 - p) / n.max(1) as f64).sqrt()
}

#[test]
fn a_confounded_batch_is_wrong_without_the_covariate_and_right_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (sheet, data) = simulate(&tmp.path().join("sim"), |cfg| {
        let labels = ["A", "A", "A", "B", "A", "B", "B", "B"];
        let mut batch = BatchParams::new(labels.iter().map(|l| l.to_string()).collect());
        batch.fraction = 0.4;
        cfg.realistic.batch = Some(batch);
    });
    let ignored = score(
        &data,
        &run(&sheet, &tmp.path().join("plain"), DesignConfig::default()),
    );
    let adjusted = score(
        &data,
        &run(
            &sheet,
            &tmp.path().join("batch"),
            DesignConfig {
                covariates: vec!["batch".into()],
                pair_by: None,
            },
        ),
    );
    let fdr = |s: &Score| s.false_calls as f64 / s.calls.max(1) as f64;
    eprintln!(
        "batch ignored: AUPRC {:.3}, {} calls, FDR {:.3}, coverage {:.3}; adjusted: AUPRC {:.3}, \
         {} calls, FDR {:.3}, coverage {:.3} of {} DMRs",
        ignored.auprc,
        ignored.calls,
        fdr(&ignored),
        ignored.coverage,
        adjusted.auprc,
        adjusted.calls,
        fdr(&adjusted),
        adjusted.coverage,
        adjusted.dmrs
    );
    // Without the batch, batch-affected null regions are called: the realised FDR is far above
    // what the target allows.
    assert!(
        fdr(&ignored) > fdr_bound(ignored.calls),
        "ignoring the batch should make false calls"
    );
    assert!(fdr(&adjusted) <= fdr_bound(adjusted.calls));
    assert!(adjusted.auprc > ignored.auprc + 0.05);
    // The batch effect is on the probability scale, the model's on the logit scale: the
    // intervals of batch-affected DMRs cover less than the others (docs/model.md, "Designs"),
    // but far more than with the batch ignored.
    assert!(adjusted.coverage >= 0.8 - three_sd(0.8, adjusted.dmrs));
    assert!(adjusted.coverage > ignored.coverage);
    // Most DMRs are still found.
    assert!(adjusted.calls - adjusted.false_calls >= adjusted.dmrs / 2);
}

#[test]
fn pairing_by_donor_beats_ignoring_the_pairs() {
    let tmp = tempfile::tempdir().unwrap();
    let (sheet, data) = simulate(&tmp.path().join("sim"), |cfg| {
        // Donor effects of one logit unit: methylation levels that differ between people by
        // ~20 points at 50%, which a model without the pairs can only take for dispersion.
        cfg.realistic.paired = Some(PairedParams { donor_sd: 1.0 });
    });
    let ignored = score(
        &data,
        &run(&sheet, &tmp.path().join("plain"), DesignConfig::default()),
    );
    let paired = score(
        &data,
        &run(
            &sheet,
            &tmp.path().join("paired"),
            DesignConfig {
                covariates: Vec::new(),
                pair_by: Some("donor".into()),
            },
        ),
    );
    let fdr = |s: &Score| s.false_calls as f64 / s.calls.max(1) as f64;
    eprintln!(
        "pairs ignored: AUPRC {:.3}, {} calls, FDR {:.3}; paired: AUPRC {:.3}, {} calls, FDR \
         {:.3}, coverage {:.3} of {} DMRs",
        ignored.auprc,
        ignored.calls,
        fdr(&ignored),
        paired.auprc,
        paired.calls,
        fdr(&paired),
        paired.coverage,
        paired.dmrs
    );
    assert!(paired.auprc > ignored.auprc + 0.02);
    assert!(fdr(&paired) <= fdr_bound(paired.calls));
    assert!(paired.coverage > ignored.coverage + three_sd(0.8, paired.dmrs));
}
