//! `methvb dmr`: de-novo DMR discovery at CpG resolution.
//!
//! 1. Theta by empirical Bayes over the CpG clusters, as `run`'s pass 1 (or a given
//!    hyper.json).
//! 2. One more stream of the clusters: in each, the per-CpG evidence of a difference and the
//!    scan for the stretches where it is strongest (`methvb-scan`: the maximum-likelihood
//!    stretch of one common difference, binary segmentation for more), using the
//!    replicate dispersion of Theta (`phi = 1 / (1 + exp(mu_k))`). Every CpG goes to
//!    `cpgs.parquet` with its evidence and the candidate holding it.
//! 3. Every candidate stretch is fitted as a region with the model's posterior (rayon
//!    minibatches, Theta fixed, the same seed rule as `run`), and the DMRs are called by the
//!    Bayesian FDR over all candidates' PEPs: `dmrs.parquet` (the columns of
//!    `regions.parquet`), `dmrs.bed` (BED9 of the called DMRs) and `run.json`.
//!
//! The DMR's PEP is the larger of the model's for the stretch and the scan's local false
//! discovery rate at its score ([`methvb_scan::Calibration`]): the model sees a stretch chosen
//! for its difference as if it had been given, and so over-states the evidence of the best
//! stretch of a cluster with no difference; the scan's null, drawn for every cluster of the
//! genome, accounts for the choice.
//!
//! Memory is one cluster, one minibatch of candidates and one PEP per candidate. With `chrom`
//! only the candidates of those contigs are fitted and written, but every cluster of the genome
//! is scanned into the calibration, so that the rows of a shard equal those of a whole run (one
//! shard of a workflow: `methvb hyper` once, `dmr --hyper-json --chrom` per contig,
//! `methvb gather` of the `dmrs.parquet` files for the genome-wide calls).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::builder::{Float64Builder, StringBuilder, UInt32Builder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use methvb_io::parquet_out::AtomicParquetWriter;
use methvb_io::regions::Region;
use methvb_model::Theta;
use methvb_scan::{
    Calibration, ScanOptions, Scanner, Segment, SiteEvidence, run_dispersion, site_evidence,
};
use serde::{Deserialize, Serialize};

use crate::commands::{Analysis, RunProvenance, create_out, write_json_atomic};
use crate::config::HyperConfig;
use crate::error::{Result, bail};
use crate::pass1::{HyperFile, learn_hyper};
use crate::pass2::{FittedFile, fit_stream_unpublished, warn_missing_contigs};
use crate::progress::Progress;
use crate::resume;
use crate::run_folder;
use crate::samples::{PassSummary, Samples, region_stream};
use crate::schema::{RESULTS_ROW_GROUP_ROWS, cpg_schema, files};

/// Default regions of `dmr`'s pass 1 (`run`: 2,000).
pub const DEFAULT_HYPER_REGIONS: usize = 500;

/// How candidate stretches are found (the scan's options but the dispersion, which comes from
/// Theta). Defaults: see `methvb_scan`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScanConfig {
    /// Fewest CpGs of a DMR.
    pub min_sites: usize,
    /// Most CpGs of a DMR.
    pub max_sites: usize,
    /// Smallest scan score `|T|` of a candidate.
    pub min_score: f64,
    /// Levels in the variance are clamped to `[level_floor, 1 - level_floor]`.
    pub level_floor: f64,
}

impl Default for ScanConfig {
    fn default() -> Self {
        let d = ScanOptions::default();
        Self {
            min_sites: d.min_sites,
            max_sites: d.max_sites,
            min_score: d.min_score,
            level_floor: d.level_floor,
        }
    }
}

impl ScanConfig {
    /// The scan's options with the replicate dispersion of `theta`.
    pub fn options(&self, theta: &Theta) -> ScanOptions {
        ScanOptions {
            dispersion: 1.0 / (1.0 + theta.mu_k.exp()),
            level_floor: self.level_floor,
            min_sites: self.min_sites,
            max_sites: self.max_sites,
            min_score: self.min_score,
        }
    }
}

/// `methvb dmr`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DmrJob {
    /// The shared settings (its regions must be CpG clusters: the runs of CpGs scanned).
    pub analysis: Analysis,
    /// Pass 1 settings.
    pub hyper: HyperConfig,
    /// Use this Theta (a hyper.json) instead of learning it.
    pub hyper_json: Option<PathBuf>,
    /// How candidates are found.
    pub scan: ScanConfig,
    /// Only scan these contigs (empty: all).
    pub chrom: Vec<String>,
    /// The output folder.
    pub out: PathBuf,
}

/// What the scan found.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ScanSummary {
    /// CpG clusters scanned.
    pub clusters: u64,
    /// CpGs written to cpgs.parquet.
    pub cpgs: u64,
    /// Candidate DMRs fitted.
    pub candidates: u64,
    /// DMRs called at the FDR target.
    pub called: u64,
    /// Candidates the verdict flags (reliable = false).
    pub unreliable: u64,
    /// Candidates whose optimiser did not meet the convergence rule.
    pub not_converged: u64,
}

/// `run.json` of a `dmr` folder.
#[derive(Debug, Serialize)]
struct DmrRunFile<'a> {
    #[serde(flatten)]
    run: RunProvenance<'a>,
    command_name: &'static str,
    /// The scan's options, with the dispersion taken from Theta.
    scan: ScanOptions,
    chrom: &'a [String],
    pass1: Option<serde_json::Value>,
    pass2: &'a PassSummary,
    dmr: ScanSummary,
    /// The scan's calibration: observed and expected null stretches and the local FDR by
    /// score.
    scan_calibration: Vec<methvb_scan::CalibrationBin>,
    seconds_total: f64,
}

/// What [`dmr`] did.
#[derive(Debug, Clone)]
pub struct DmrOutcome {
    /// The counts.
    pub summary: ScanSummary,
    /// The DMR table written.
    pub dmrs: PathBuf,
}

/// Runs `methvb dmr` (see the module docs).
pub fn dmr(job: &DmrJob, progress: &dyn Progress) -> Result<DmrOutcome> {
    let started = Instant::now();
    let analysis = &job.analysis;
    let regions = &analysis.regions;
    if regions.regions.is_some() || regions.tile.is_some() {
        bail!(
            "dmr scans CpG clusters (--max-gap, --cluster-min-sites); it takes no --regions or \
             --tile: use `methvb run --regions` to test given regions"
        );
    }
    let samples = Samples::load(&analysis.input, regions)?;
    if samples.groups.len() != 2 {
        bail!(
            "{}: dmr compares two groups, the sheet has {} ({}); keep two groups in the sheet",
            samples.sheet.path().display(),
            samples.groups.len(),
            samples.groups.join(", ")
        );
    }
    if let Some(why) = (ScanOptions {
        dispersion: 0.0,
        ..job.scan.options(&Theta::default())
    })
    .invalid()
    {
        bail!("dmr scan options (--min-cpgs, --max-cpgs, --min-score): {why}");
    }
    let inputs = resume::input_files(&samples)?;
    let provenance = analysis.input.provenance(&samples.sheet)?;
    let base = analysis.base_key(&samples, &inputs)?;
    let (theta, start, pass1, hyper_written) = match &job.hyper_json {
        Some(path) => {
            let (theta, start) = HyperFile::read(path)?;
            samples.check_theta(&theta, path)?;
            create_out(&job.out, &[], progress)?;
            (theta, start, None, false)
        }
        None => {
            let (mut file, _) = learn_hyper(analysis.pass1(&job.hyper), &samples, progress)?;
            file.resume_key = Some(resume::hyper_key(base.clone(), &job.hyper)?);
            file.input_options = Some(provenance.clone());
            create_out(&job.out, &[], progress)?;
            write_json_atomic(&job.out.join(files::HYPER), &file)?;
            (file.theta, file.start, file.pass1, true)
        }
    };
    let opts = job.scan.options(&theta);
    let start = analysis.fit.start(start.as_ref());
    let mut rows_key = resume::rows_key(base, &theta, start, &analysis.fit)?;
    rows_key.insert("dmr_scan".into(), serde_json::to_value(opts)?);
    let run_id = run_folder::run_id(&serde_json::Value::Object(rows_key));
    let mut metadata = analysis.results_metadata(&theta, &samples, &provenance, &run_id);
    metadata.push(("methvb.dmr_scan".into(), serde_json::to_string(&opts)?));

    let pass_started = Instant::now();
    let mut clusters = region_stream(&analysis.input, regions, &samples)?;
    let cpgs = CpgWriter::create(
        &job.out.join(files::CPGS),
        &samples.groups,
        metadata.clone(),
    )?;
    let keep = |chrom: &str| job.chrom.is_empty() || job.chrom.iter().any(|c| c == chrom);
    let mut candidates = Candidates {
        clusters: &mut clusters,
        keep: &keep,
        groups: &samples.sample_group,
        n_samples: samples.sample_group.len(),
        opts,
        seed: analysis.model.seed,
        scanner: Scanner::default(),
        evidence: Vec::new(),
        segments: Vec::new(),
        null: Vec::new(),
        ready: VecDeque::new(),
        scores: Vec::new(),
        calibration: Calibration::default(),
        cpgs,
        summary: ScanSummary::default(),
    };
    let dmrs = job.out.join(files::DMRS);
    let pass = analysis.pass2(&samples, &theta, start);
    let rows = fit_stream_unpublished(&pass, &mut candidates, |_| true, &dmrs, progress)?;
    let Candidates {
        cpgs,
        mut summary,
        mut calibration,
        scores,
        ..
    } = candidates;
    summary.cpgs = cpgs.finish()?;
    // The DMR's PEP: the model's for the stretch, or the scan's local FDR at its score if that
    // is larger (the model sees a stretch chosen for its difference; the scan's null accounts
    // for the choice).
    calibration.finish();
    let fitted: FittedFile = rows.publish(analysis.fdr, metadata, &|row, pep| {
        scores
            .get(row)
            .map_or(pep, |&score| pep.max(calibration.lfdr(score)))
    })?;
    if job.chrom.is_empty() && summary.clusters == 0 {
        bail!("no CpG cluster to scan: {}", clusters.why_no_regions());
    }
    warn_missing_contigs(&clusters, &job.chrom, progress);
    summary.candidates = fitted.regions;
    summary.called = fitted.called;
    summary.unreliable = fitted.unreliable;
    summary.not_converged = fitted.not_converged;
    let pass2 = PassSummary::of(&clusters, &samples, summary.clusters, pass_started);
    if job.hyper_json.is_some() {
        pass2.report_warnings(progress);
    }

    let table = crate::export::read_table(&dmrs)?;
    let bed = methvb_io::browser::calls_bed(&table, &crate::export::folder_label(&job.out));
    crate::export::publish(&job.out, files::DMRS_BED, &bed, &table.contigs, false)?;

    let mut written = vec![files::DMRS, files::DMRS_BED, files::CPGS];
    if hyper_written {
        written.push(files::HYPER);
    }
    let run_file = DmrRunFile {
        run: RunProvenance::new(
            analysis,
            &samples,
            &run_id,
            written,
            inputs,
            &provenance,
            &theta,
        ),
        command_name: "dmr",
        scan: opts,
        chrom: &job.chrom,
        pass1,
        pass2: &pass2,
        dmr: summary,
        scan_calibration: calibration.table(),
        seconds_total: started.elapsed().as_secs_f64(),
    };
    write_json_atomic(&job.out.join(files::RUN), &run_file)?;
    Ok(DmrOutcome { summary, dmrs })
}

/// The candidate stretches of a stream of CpG clusters, as regions to fit; writes every
/// scanned CpG to `cpgs.parquet` on the way.
struct Candidates<'a, I> {
    clusters: &'a mut I,
    keep: &'a dyn Fn(&str) -> bool,
    groups: &'a [usize],
    n_samples: usize,
    /// The options; the dispersion is the prior of each cluster's own.
    opts: ScanOptions,
    seed: u64,
    scanner: Scanner,
    evidence: Vec<SiteEvidence>,
    segments: Vec<Segment>,
    null: Vec<f64>,
    ready: VecDeque<Region>,
    /// The scan score of each candidate handed on, in order.
    scores: Vec<f64>,
    calibration: Calibration,
    cpgs: CpgWriter,
    summary: ScanSummary,
}

/// Weight of the prior dispersion in a cluster's own, in typical (CpG, group) cells.
const PRIOR_CELLS: f64 = 20.0;
/// Null copies of each cluster in the scan's calibration.
const NULL_DRAWS: usize = 10;

impl<I, E> Candidates<'_, I>
where
    I: Iterator<Item = std::result::Result<Region, E>>,
{
    /// Scans one cluster into the calibration; if `emit`, its candidates go into `ready` and
    /// its CpGs into the writer.
    fn scan(&mut self, cluster: &Region, emit: bool) -> Result<()> {
        let opts = ScanOptions {
            dispersion: run_dispersion(
                &cluster.methylated,
                &cluster.coverage,
                self.groups,
                self.opts.dispersion,
                PRIOR_CELLS,
            ),
            ..self.opts
        };
        site_evidence(
            &cluster.methylated,
            &cluster.coverage,
            self.groups,
            &opts,
            &mut self.evidence,
        );
        self.scanner.scan(&self.evidence, &opts, &mut self.segments);
        self.null.clear();
        let null_seed = methvb_model::region_seed(self.seed, &format!("scan null {}", cluster.id));
        self.scanner
            .null_scores(&self.evidence, &opts, NULL_DRAWS, null_seed, &mut self.null);
        for &score in &self.null {
            self.calibration.null(score, 1.0 / NULL_DRAWS as f64);
        }
        for seg in &self.segments {
            self.calibration.observe(seg.score);
        }
        if !emit {
            return Ok(());
        }
        self.summary.clusters += 1;
        let s = self.n_samples;
        let mut next_segment = 0;
        for (j, (&pos, e)) in cluster.positions.iter().zip(&self.evidence).enumerate() {
            while next_segment < self.segments.len() && self.segments[next_segment].end <= j {
                next_segment += 1;
            }
            let holder = self
                .segments
                .get(next_segment)
                .filter(|seg| seg.first <= j)
                .map(|seg| candidate_id(cluster, seg));
            self.cpgs
                .push(&cluster.chrom, pos, &cluster.id, holder.as_deref(), e)?;
        }
        for seg in &self.segments {
            self.scores.push(seg.score);
            let (first, end) = (seg.first, seg.end);
            self.ready.push_back(Region {
                id: candidate_id(cluster, seg),
                chrom: cluster.chrom.clone(),
                start: cluster.positions[first],
                end: cluster.positions[end - 1] + 1,
                positions: cluster.positions[first..end].to_vec(),
                methylated: cluster.methylated[first * s..end * s].to_vec(),
                coverage: cluster.coverage[first * s..end * s].to_vec(),
            });
        }
        Ok(())
    }
}

/// `chrom:start-end` of a candidate (0-based half-open, as a cluster's id).
fn candidate_id(cluster: &Region, seg: &Segment) -> String {
    format!(
        "{}:{}-{}",
        cluster.chrom,
        cluster.positions[seg.first],
        cluster.positions[seg.end - 1] + 1
    )
}

impl<I, E> Iterator for Candidates<'_, I>
where
    I: Iterator<Item = std::result::Result<Region, E>>,
    E: Into<crate::Error>,
{
    type Item = Result<Region>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(region) = self.ready.pop_front() {
                return Some(Ok(region));
            }
            let cluster = match self.clusters.next()? {
                Ok(cluster) => cluster,
                Err(e) => return Some(Err(e.into())),
            };
            let emit = (self.keep)(&cluster.chrom);
            if let Err(e) = self.scan(&cluster, emit) {
                return Some(Err(e));
            }
        }
    }
}

/// `cpgs.parquet`, written a row group at a time.
struct CpgWriter {
    schema: SchemaRef,
    writer: AtomicParquetWriter,
    chrom: StringBuilder,
    pos: UInt64Builder,
    cluster: StringBuilder,
    dmr: StringBuilder,
    coverage: [UInt32Builder; 2],
    level: [Float64Builder; 2],
    diff: Float64Builder,
    se: Float64Builder,
    z: Float64Builder,
    rows: usize,
}

impl CpgWriter {
    fn create(path: &Path, groups: &[String], metadata: Vec<(String, String)>) -> Result<Self> {
        let schema = cpg_schema(groups);
        let writer =
            AtomicParquetWriter::create(path, schema.clone(), metadata, RESULTS_ROW_GROUP_ROWS)?;
        Ok(Self {
            schema,
            writer,
            chrom: StringBuilder::new(),
            pos: UInt64Builder::new(),
            cluster: StringBuilder::new(),
            dmr: StringBuilder::new(),
            coverage: [UInt32Builder::new(), UInt32Builder::new()],
            level: [Float64Builder::new(), Float64Builder::new()],
            diff: Float64Builder::new(),
            se: Float64Builder::new(),
            z: Float64Builder::new(),
            rows: 0,
        })
    }

    fn push(
        &mut self,
        chrom: &str,
        pos: u64,
        cluster: &str,
        dmr: Option<&str>,
        e: &SiteEvidence,
    ) -> Result<()> {
        let finite = |x: f64| x.is_finite().then_some(x);
        self.chrom.append_value(chrom);
        self.pos.append_value(pos);
        self.cluster.append_value(cluster);
        self.dmr.append_option(dmr);
        let tested = e.se.is_finite();
        for g in 0..2 {
            self.coverage[g].append_value(e.coverage[g]);
            self.level[g].append_option(finite(e.level[g]));
        }
        self.diff.append_option(tested.then_some(e.diff));
        self.se.append_option(tested.then_some(e.se));
        self.z.append_option(tested.then_some(e.z));
        self.rows += 1;
        if self.rows >= RESULTS_ROW_GROUP_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let [c0, c1] = &mut self.coverage;
        let [l0, l1] = &mut self.level;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.chrom.finish()),
            Arc::new(self.pos.finish()),
            Arc::new(self.cluster.finish()),
            Arc::new(self.dmr.finish()),
            Arc::new(c0.finish()),
            Arc::new(c1.finish()),
            Arc::new(l0.finish()),
            Arc::new(l1.finish()),
            Arc::new(self.diff.finish()),
            Arc::new(self.se.finish()),
            Arc::new(self.z.finish()),
        ];
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        self.writer.write(&batch)?;
        self.rows = 0;
        Ok(())
    }

    /// Publishes the file; returns its rows.
    fn finish(mut self) -> Result<u64> {
        self.flush()?;
        Ok(self.writer.finish()?)
    }
}
