//! `dmr` through the library on the simulator's realistic data (3 vs 3 at 15x, DMR effects on
//! the probability scale over a contiguous 60-100% of a region's CpGs, outlier CpGs, smooth
//! site levels): the DMRs it calls are right, most true DMRs are found with their ends, its
//! files are what docs/output.md says, and a sharded workflow gives the same rows.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::{Array, RecordBatch};
use methvb_pipeline::Silent;
use methvb_pipeline::commands::Analysis;
use methvb_pipeline::config::{HyperConfig, InputConfig};
use methvb_pipeline::dmr::{DEFAULT_HYPER_REGIONS, DmrJob, ScanConfig, dmr};
use methvb_sim::{SimConfig, SimData};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const REGIONS: usize = 800;

/// 3 vs 3 realistic data at 15x under `dir`: its sheet and truth.
fn simulate(dir: &Path) -> (PathBuf, SimData) {
    let cfg = SimConfig {
        n_regions: REGIONS,
        samples_per_group: vec![3, 3],
        mean_coverage: 15.0,
        mode: methvb_sim::SimMode::Realistic,
        seed: 5,
        ..SimConfig::default()
    };
    let data = methvb_sim::try_simulate(&cfg).unwrap();
    let opts = methvb_sim::WriteOptions {
        split_strands: false,
        split_seed: 5,
        bgzip: false,
    };
    let sheet = methvb_sim::write_dataset(&data, dir, &opts)
        .unwrap()
        .sample_sheet;
    (sheet, data)
}

fn job(sheet: &Path, out: &Path) -> DmrJob {
    DmrJob {
        analysis: Analysis::new(InputConfig::new(sheet)),
        hyper: HyperConfig {
            hyper_regions: DEFAULT_HYPER_REGIONS,
            spike_sd: None,
        },
        hyper_json: None,
        scan: ScanConfig::default(),
        chrom: Vec::new(),
        out: out.to_path_buf(),
    }
}

fn batches(path: &Path) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).unwrap();
    ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .with_batch_size(1 << 20)
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// (chrom, start, end) of the called rows of a results table.
fn called(path: &Path) -> Vec<(String, u64, u64)> {
    let mut out = Vec::new();
    for b in batches(path) {
        let chrom = b
            .column_by_name("chrom")
            .unwrap()
            .as_string::<i32>()
            .clone();
        let start = b
            .column_by_name("start")
            .unwrap()
            .as_primitive::<UInt64Type>()
            .clone();
        let end = b
            .column_by_name("end")
            .unwrap()
            .as_primitive::<UInt64Type>()
            .clone();
        let called = b.column_by_name("called").unwrap().as_boolean().clone();
        for i in 0..b.num_rows() {
            if called.value(i) {
                out.push((chrom.value(i).to_string(), start.value(i), end.value(i)));
            }
        }
    }
    out
}

/// The truth at CpG resolution: every simulated CpG per contig (sorted), and each DMR's effect
/// window as (chrom, first position, last position).
struct Truth {
    cpgs: BTreeMap<String, Vec<u64>>,
    windows: Vec<(String, u64, u64)>,
}

fn truth(data: &SimData) -> Truth {
    let mut cpgs: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut windows = Vec::new();
    for r in &data.regions {
        cpgs.entry(r.chrom.clone())
            .or_default()
            .extend(&r.positions);
        if let Some(w) = &r.effect_sites {
            windows.push((
                r.chrom.clone(),
                r.positions[w.start],
                r.positions[w.end - 1],
            ));
        }
    }
    for p in cpgs.values_mut() {
        p.sort_unstable();
    }
    Truth { cpgs, windows }
}

impl Truth {
    /// Indices (into the contig's CpGs) of the CpGs in `[start, end]`, 0-based, both inclusive.
    fn span(&self, chrom: &str, start: u64, last: u64) -> std::ops::Range<usize> {
        let p = &self.cpgs[chrom];
        p.partition_point(|&x| x < start)..p.partition_point(|&x| x <= last)
    }
}

/// The scores: recall (a true DMR is found when one call covers >= 50% of its CpGs),
/// precision (a call is right when >= 50% of its CpGs lie in true DMRs), and the mean end error
/// in CpGs of the found DMRs against their best call.
struct Score {
    recall: f64,
    precision: f64,
    calls: usize,
    found: usize,
    end_error: f64,
}

fn score(truth: &Truth, calls: &[(String, u64, u64)]) -> Score {
    let spans: Vec<(&str, std::ops::Range<usize>)> = calls
        .iter()
        .map(|(c, s, e)| (c.as_str(), truth.span(c, *s, e - 1)))
        .collect();
    let windows: Vec<(&str, std::ops::Range<usize>)> = truth
        .windows
        .iter()
        .map(|(c, s, l)| (c.as_str(), truth.span(c, *s, *l)))
        .collect();
    let overlap = |a: &std::ops::Range<usize>, b: &std::ops::Range<usize>| {
        a.end.min(b.end).saturating_sub(a.start.max(b.start))
    };
    let (mut found, mut end_error) = (0usize, 0usize);
    for (chrom, w) in &windows {
        let best = spans
            .iter()
            .filter(|(c, _)| c == chrom)
            .max_by_key(|(_, s)| overlap(s, w));
        if let Some((_, s)) = best
            && 2 * overlap(s, w) >= w.len()
        {
            found += 1;
            end_error += s.start.abs_diff(w.start) + s.end.abs_diff(w.end);
        }
    }
    let right = spans
        .iter()
        .filter(|(chrom, s)| {
            let inside: usize = windows
                .iter()
                .filter(|(c, _)| c == chrom)
                .map(|(_, w)| overlap(s, w))
                .sum();
            2 * inside >= s.len()
        })
        .count();
    Score {
        recall: found as f64 / windows.len() as f64,
        precision: right as f64 / calls.len().max(1) as f64,
        calls: calls.len(),
        found,
        end_error: end_error as f64 / (2 * found.max(1)) as f64,
    }
}

/// The calls are right, most DMRs are found, their ends are within a CpG on average.
///
/// Bounds, from the sizes here (about 75 true DMRs, 50 calls): precision is at least 0.95
/// less 3 binomial sd at the number of calls (the target; measured 0.99 at 2,000
/// regions in benches/compare/dmr.sh); recall at least 0.6 less 3 sd at the number of DMRs
/// (measured 0.62; DSS's callDMR 0.51); the mean end error at most 1 CpG (measured 0.57).
#[test]
fn dmr_calls_right_stretches_with_their_ends() {
    let dir = tempfile::tempdir().unwrap();
    let (sheet, data) = simulate(&dir.path().join("sim"));
    let out = dir.path().join("dmr");
    let outcome = dmr(&job(&sheet, &out), &Silent).unwrap();
    let truth = truth(&data);
    let calls = called(&outcome.dmrs);
    let s = score(&truth, &calls);
    let sd = |p: f64, n: usize| (p * (1.0 - p) / n as f64).sqrt();
    eprintln!(
        "recall {:.3} ({} of {}), precision {:.3} of {} calls, end error {:.2}",
        s.recall,
        s.found,
        truth.windows.len(),
        s.precision,
        s.calls,
        s.end_error
    );
    assert!(s.calls >= 20, "{} calls", s.calls);
    assert!(
        s.precision >= 0.95 - 3.0 * sd(0.95, s.calls),
        "precision {}",
        s.precision
    );
    assert!(
        s.recall >= 0.6 - 3.0 * sd(0.6, truth.windows.len()),
        "recall {}",
        s.recall
    );
    assert!(s.end_error <= 1.0, "end error {}", s.end_error);
    assert_eq!(outcome.summary.called as usize, calls.len());

    // The files: cpgs.parquet has every CpG of the clusters, dmrs.bed the calls.
    let cpg_rows: usize = batches(&out.join("cpgs.parquet"))
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    assert_eq!(cpg_rows as u64, outcome.summary.cpgs);
    let simulated: usize = truth.cpgs.values().map(Vec::len).sum();
    assert!(cpg_rows <= simulated && cpg_rows * 100 >= simulated * 95);
    let bed = std::fs::read_to_string(out.join("dmrs.bed")).unwrap();
    assert!(bed.starts_with("track "));
    assert_eq!(bed.lines().count(), calls.len() + 1);
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["command_name"], "dmr");
    assert!(out.join("hyper.json").is_file());
    methvb_pipeline::run_folder::check_consistent(&out).unwrap();

    // The CpGs of each called DMR carry its id in cpgs.parquet.
    let mut holders: HashMap<String, usize> = HashMap::new();
    for b in batches(&out.join("cpgs.parquet")) {
        let ids = b
            .column_by_name("dmr_id")
            .unwrap()
            .as_string::<i32>()
            .clone();
        for i in 0..b.num_rows() {
            if ids.is_valid(i) {
                *holders.entry(ids.value(i).to_string()).or_default() += 1;
            }
        }
    }
    for b in batches(&outcome.dmrs) {
        let ids = b
            .column_by_name("region_id")
            .unwrap()
            .as_string::<i32>()
            .clone();
        let n = b
            .column_by_name("n_sites")
            .unwrap()
            .as_primitive::<arrow_array::types::UInt32Type>()
            .clone();
        for i in 0..b.num_rows() {
            assert_eq!(
                holders[ids.value(i)],
                n.value(i) as usize,
                "{}",
                ids.value(i)
            );
        }
    }
}

/// One contig at a time (`--hyper-json`, `--chrom`, one thread) and `gather` give the rows of a
/// whole run on two threads, bit for bit.
#[test]
fn shards_and_threads_give_the_rows_of_a_whole_run() {
    let dir = tempfile::tempdir().unwrap();
    let (sheet, data) = simulate(&dir.path().join("sim"));
    let whole = dir.path().join("whole");
    let two = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let outcome = two.install(|| dmr(&job(&sheet, &whole), &Silent)).unwrap();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut contigs: Vec<&str> = data.regions.iter().map(|r| r.chrom.as_str()).collect();
    contigs.dedup();
    assert!(contigs.len() >= 2);
    let mut shards = Vec::new();
    for contig in &contigs {
        let mut shard = job(&sheet, &dir.path().join(contig));
        shard.hyper_json = Some(whole.join("hyper.json"));
        shard.chrom = vec![contig.to_string()];
        shards.push(one.install(|| dmr(&shard, &Silent)).unwrap().dmrs);
    }
    let gathered = dir.path().join("gathered.parquet");
    methvb_pipeline::gather::gather(
        &shards,
        0.05,
        &gathered,
        methvb_pipeline::gather::GatherMetadata::FromShards {
            command: "test".into(),
        },
    )
    .unwrap();
    // Both tables are one row group, so one batch each.
    let (a, b) = (batches(&outcome.dmrs), batches(&gathered));
    assert_eq!((a.len(), b.len()), (1, 1));
    assert!(a[0].num_rows() >= 20);
    assert_eq!(a[0].schema().fields(), b[0].schema().fields());
    assert_eq!(a[0].columns(), b[0].columns());
}

/// Relabelling the reference group gives the same DMRs, PEPs and calls, with Δ negated.
#[test]
fn the_reference_group_changes_only_the_sign() {
    let dir = tempfile::tempdir().unwrap();
    let (sheet, data) = simulate(&dir.path().join("sim"));
    let a = dmr(&job(&sheet, &dir.path().join("a")), &Silent).unwrap();
    let mut swapped = job(&sheet, &dir.path().join("b"));
    swapped.analysis.input.reference_group = Some(data.group_names[1].clone());
    let b = dmr(&swapped, &Silent).unwrap();
    let (a, b) = (batches(&a.dmrs), batches(&b.dmrs));
    assert!(a[0].num_rows() >= 20);
    for name in ["region_id", "start", "end", "pep", "prob_dm", "called"] {
        assert_eq!(
            a[0].column_by_name(name).unwrap(),
            b[0].column_by_name(name).unwrap(),
            "{name}"
        );
    }
    let delta = |t: &[RecordBatch]| {
        t[0].column_by_name("delta_mean")
            .unwrap()
            .as_primitive::<arrow_array::types::Float64Type>()
            .values()
            .to_vec()
    };
    for (x, y) in delta(&a).iter().zip(delta(&b)) {
        assert!((x + y).abs() < 1e-12, "{x} vs {y}");
    }
}

/// `dmr` refuses what it cannot do, saying what to do instead.
#[test]
fn dmr_refuses_given_regions_and_other_than_two_groups() {
    let dir = tempfile::tempdir().unwrap();
    let (sheet, _) = simulate(&dir.path().join("sim"));
    let mut given = job(&sheet, &dir.path().join("a"));
    given.analysis.regions.regions = Some(sheet.with_file_name("regions.bed").into());
    let error = dmr(&given, &Silent).unwrap_err().chain();
    assert!(error.contains("takes no --regions"), "{error}");
    assert!(!dir.path().join("a").exists());

    // One group: the sheet with the control samples only.
    let text = std::fs::read_to_string(&sheet).unwrap();
    let one: String = text
        .lines()
        .filter(|l| !l.contains("treated"))
        .map(|l| format!("{l}\n"))
        .collect();
    let single = sheet.with_file_name("control.tsv");
    std::fs::write(&single, one).unwrap();
    let error = dmr(&job(&single, &dir.path().join("b")), &Silent)
        .unwrap_err()
        .chain();
    assert!(
        error.contains("control.tsv: dmr compares two groups, the sheet has 1"),
        "{error}"
    );

    let mut sizes = job(&sheet, &dir.path().join("c"));
    sizes.scan.min_sites = 10;
    sizes.scan.max_sites = 5;
    let error = dmr(&sizes, &Silent).unwrap_err().chain();
    assert!(
        error.contains("(--min-cpgs, --max-cpgs, --min-score): stretch sizes 10..=5"),
        "{error}"
    );
}
