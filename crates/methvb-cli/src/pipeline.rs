//! The two passes of a run, shared by `run`, `hyper` and `fit`:
//! pass 1 streams every region once, keeps a seeded reservoir sample and learns Theta from it by
//! empirical Bayes; pass 2 streams the regions again, fits them in rayon-parallel minibatches
//! with Theta fixed, and writes the results in genomic order. Memory is bounded by the reservoir
//! and one minibatch, whatever the genome size.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use methvb_io::merge::MergeStats;
use methvb_io::parquet_out::AtomicParquetWriter;
use methvb_io::regions::{
    BedRegions, DEFAULT_CLUSTER_MIN_SITES, DEFAULT_MAX_GAP, Region, RegionBuilder, RegionFilters,
    RegionSpec, RegionStats, RegionStream,
};
use methvb_io::sheet::SampleSheet;
use methvb_model::{EbOptions, Family, FitOptions, HyperFit, RegionData, RegionFit, Theta};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;
use serde::Serialize;

use crate::audit::AuditPicker;
use crate::inputs::InputArgs;
use crate::results::ResultsLayout;

/// How sites are grouped into regions, and which sites and regions are kept.
#[derive(Debug, Clone, Args, Serialize, serde::Deserialize)]
pub struct RegionArgs {
    /// Regions from a BED file (name column = region id, else chrom:start-end; a name shared by
    /// several regions becomes name@chrom:start-end, so that ids are unique).
    #[arg(long, value_name = "BED", conflicts_with_all = ["tile", "max_gap"])]
    pub regions: Option<PathBuf>,
    /// Fixed tiles of this many bp instead of CpG clusters.
    #[arg(long, value_name = "BP", conflicts_with = "max_gap")]
    pub tile: Option<u64>,
    /// Distance between tile starts (default: the tile size).
    #[arg(long, value_name = "BP", requires = "tile")]
    pub step: Option<u64>,
    /// CpG clusters (the default): largest gap in bp between consecutive sites of a cluster.
    #[arg(long, value_name = "BP")]
    pub max_gap: Option<u64>,
    /// CpG clusters: fewest sites a cluster needs.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CLUSTER_MIN_SITES)]
    pub cluster_min_sites: usize,
    /// Cells (site x sample) with fewer reads count as missing.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub min_cov: u32,
    /// A site needs coverage in at least this many samples of every group.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub min_samples_per_group: usize,
    /// A region needs at least this many sites (after the site filters).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub min_sites: usize,
}

impl RegionArgs {
    fn spec(&self) -> Result<RegionSpec> {
        Ok(if let Some(bed) = &self.regions {
            RegionSpec::Bed(BedRegions::from_path(bed)?)
        } else if let Some(size) = self.tile {
            RegionSpec::Tile {
                size,
                step: self.step.unwrap_or(size),
            }
        } else {
            RegionSpec::Cluster {
                max_gap: self.max_gap.unwrap_or(DEFAULT_MAX_GAP),
                min_sites: self.cluster_min_sites,
            }
        })
    }

    fn filters(&self) -> RegionFilters {
        RegionFilters {
            min_cov: self.min_cov,
            min_samples_per_group: self.min_samples_per_group,
            min_sites: self.min_sites,
        }
    }
}

/// Variational family, as named on the command line.
#[derive(Debug, Clone, Copy, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FamilyArg {
    /// Dense covariance over the region-level parameters, diagonal site effects.
    Structured,
    /// Fully diagonal (faster, under-states variance).
    MeanField,
}

/// Options of the model fit.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Master seed: every region's random stream derives from (seed, region id).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Variational family.
    #[arg(long, value_enum, default_value = "structured")]
    pub family: FamilyArg,
    /// Effect size of interest: prob_dm = P(|delta| > delta0), delta being a difference of
    /// methylation levels (0 < delta0 < 1).
    #[arg(long, default_value_t = 0.1, value_parser = delta0_value)]
    pub delta0: f64,
    /// Target Bayesian FDR of the region calls (0 < FDR < 1).
    #[arg(long, default_value_t = 0.05, value_parser = fdr_value)]
    pub fdr: f64,
    /// Importance draws of each region's posterior behind its summaries and its PSIS verdict
    /// (one log-density evaluation each; the k-hat threshold is min(1 - 1/log10(N), 0.7)).
    #[arg(long, default_value_t = FitOptions::default().n_draws, value_parser = clap::value_parser!(u32).range(100..))]
    pub draws: u32,
    /// Refit rungs for regions whose importance sampling is unreliable (0: report the first
    /// fit; each rung costs about as much as the first fit and doubles the draws).
    #[arg(long, default_value_t = FitOptions::default().max_refit)]
    pub max_refit: u8,
    /// Regions fitted in parallel per minibatch (at least 1).
    #[arg(long, default_value_t = 512, value_parser = at_least_one)]
    pub minibatch: usize,
    /// Show a progress bar even when stderr is not a terminal.
    #[arg(long)]
    pub progress: bool,
}

/// A number strictly between 0 and 1 for option `what`, or the reason it is not.
fn open_unit_interval(text: &str, what: &str) -> std::result::Result<f64, String> {
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if v > 0.0 && v < 1.0 {
        Ok(v)
    } else {
        Err(format!(
            "{what} must be between 0 and 1 (exclusive), got {v}"
        ))
    }
}

/// A count option that 0 would turn into nonsense (`--minibatch`, `--hyper-regions`, ...).
pub fn at_least_one(text: &str) -> std::result::Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a whole number")),
    }
}

/// `--spike-sd`: MODEL.md keeps sd_b0 above 0.05 so that the spike cannot degenerate.
fn spike_sd_value(text: &str) -> std::result::Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.05 => Ok(v),
        Ok(v) => Err(format!(
            "the spike width must be at least 0.05 (logit scale), got {v}"
        )),
        Err(_) => Err(format!("{text:?} is not a number")),
    }
}

/// `--fdr`: 0 would call nothing and 1 everything.
pub fn fdr_value(text: &str) -> std::result::Result<f64, String> {
    open_unit_interval(text, "the FDR target (e.g. 0.05)")
}

/// `--delta0`: |delta| never exceeds 1, so 1 or more calls nothing; 0 makes every region
/// "differentially methylated".
fn delta0_value(text: &str) -> std::result::Result<f64, String> {
    open_unit_interval(
        text,
        "the effect size delta0, a difference of methylation levels (e.g. 0.1)",
    )
}

impl ModelArgs {
    /// The per-region fit options, contrasts taken from the model's group `reference`.
    pub fn fit_options(&self, reference: usize) -> FitOptions {
        let mut opts = FitOptions {
            reference,
            n_draws: self.draws,
            max_refit: self.max_refit,
            delta0: self.delta0,
            ..FitOptions::default()
        };
        opts.vb.family = self.family();
        opts
    }

    pub fn family(&self) -> Family {
        match self.family {
            FamilyArg::Structured => Family::Structured,
            FamilyArg::MeanField => Family::MeanField,
        }
    }
}

/// Options of pass 1 (learning Theta).
#[derive(Debug, Clone, Args)]
pub struct HyperArgs {
    /// Regions sampled genome-wide (reservoir sampling) to learn Theta from (at least 1).
    #[arg(long, default_value_t = 2000, value_name = "N", value_parser = at_least_one)]
    pub hyper_regions: usize,
    /// Standard deviation (logit scale, >= 0.05) of the "no difference" component of the prior
    /// of group effects (default: chosen by empirical Bayes among 0.05-0.2); the effect grid
    /// above it is fixed, its weights learned.
    #[arg(long, value_name = "SD", value_parser = spike_sd_value)]
    pub spike_sd: Option<f64>,
}

/// The sheet and the group of each sample, as the outputs and the model number them.
///
/// Outputs list the groups reference first (`groups`, `sample_group`). The model numbers them
/// by name (`model_group`), whatever the reference and the order of the sheet: its fit is
/// symmetric in the groups, so choosing another reference then runs exactly the same
/// computation and only the reported contrasts change sign.
#[derive(Debug)]
pub struct Samples {
    /// The sample sheet.
    pub sheet: SampleSheet,
    /// Group index of each sample in `groups` (0 = reference).
    pub sample_group: Vec<usize>,
    /// Group names, reference first.
    pub groups: Vec<String>,
    /// The model's group index of each sample (groups numbered in sorted name order).
    pub model_group: Vec<usize>,
    /// The model's index of each group of `groups`.
    pub model_index: Vec<usize>,
    /// Sample names in sheet order.
    pub names: Vec<String>,
}

impl Samples {
    /// Reads the sheet named by `input` and checks its groups against the `regions` filters.
    pub fn load(input: &InputArgs, regions: &RegionArgs) -> Result<Self> {
        let sheet = input.sheet()?;
        sheet.check_samples_per_group(regions.min_samples_per_group)?;
        let sample_group = sheet.group_of_samples();
        let groups = sheet.groups().to_vec();
        let mut sorted: Vec<&String> = groups.iter().collect();
        sorted.sort();
        let model_index: Vec<usize> = groups
            .iter()
            .map(|g| sorted.iter().position(|s| *s == g).unwrap_or(0))
            .collect();
        let model_group = sample_group.iter().map(|&g| model_index[g]).collect();
        Ok(Self {
            names: sheet.sample_names(),
            sheet,
            sample_group,
            groups,
            model_group,
            model_index,
        })
    }

    /// The model's view of one region.
    pub fn data<'a>(&'a self, r: &'a Region) -> RegionData<'a> {
        RegionData {
            n_sites: r.n_sites(),
            n_samples: self.model_group.len(),
            sample_group: &self.model_group,
            n_groups: self.groups.len(),
            methylated: &r.methylated,
            coverage: &r.coverage,
        }
    }

    /// The model's index of the reference group.
    pub fn model_reference(&self) -> usize {
        self.model_index[0]
    }
}

/// Counts of one streaming pass over the regions.
#[derive(Debug, Clone, Serialize)]
pub struct PassSummary {
    /// Merge counts (sites per sample, rows, rows without coverage).
    pub merge: MergeStats,
    /// Region building counts (each filter's drops).
    pub regions: RegionStats,
    /// Regions handed on (to the reservoir or to the fit).
    pub regions_used: u64,
    /// What the pass dropped or renamed that deserves a look ([`RegionStream::warnings`]).
    pub warnings: Vec<String>,
    /// Wall time of the pass in seconds.
    pub seconds: f64,
}

impl PassSummary {
    /// The counts of `stream` once it has ended; the warnings are the sheet's design warnings
    /// (said after the pass, so that an input error comes first) and the stream's.
    fn of(stream: &RegionStream, samples: &Samples, regions_used: u64, started: Instant) -> Self {
        let design = samples
            .sheet
            .design_warnings()
            .into_iter()
            .map(|w| w.message);
        Self {
            merge: stream.merge_stats().clone(),
            regions: stream.region_stats().clone(),
            regions_used,
            warnings: design.chain(stream.warnings()).collect(),
            seconds: started.elapsed().as_secs_f64(),
        }
    }

    /// Prints the warnings (unless `quiet`).
    pub fn print_warnings(&self, quiet: bool) {
        if !quiet {
            for w in &self.warnings {
                eprintln!("methvb: warning: {w}");
            }
        }
    }
}

/// Fewer regions than this make a warning in pass 1: Theta's spike weight alone is then known
/// to no better than about ±0.05 (the binomial sd of a proportion near 1/2 from 100 regions),
/// and the prior it sets drives every region's answer.
const FEW_REGIONS_FOR_EB: u64 = 100;

/// The regions of the inputs, as pass 1 and pass 2 stream them.
pub fn region_stream(
    input: &InputArgs,
    regions: &RegionArgs,
    samples: &Samples,
) -> Result<RegionStream> {
    let merger = input.open_merger(&samples.sheet)?;
    let builder = RegionBuilder::new(
        regions.spec()?,
        regions.filters(),
        samples.sample_group.clone(),
    )?;
    Ok(RegionStream::new(merger, builder, input.batch_size))
}

/// A progress bar on stderr: drawn on a terminal (or with `--progress`), hidden otherwise.
pub fn progress_bar(total: Option<u64>, what: &str, quiet: bool, force: bool) -> ProgressBar {
    use std::io::IsTerminal;
    let visible = !quiet && (force || std::io::stderr().is_terminal());
    let bar = match total {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    if !visible {
        bar.set_draw_target(ProgressDrawTarget::hidden());
        return bar;
    }
    if force && !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(1));
    }
    let template = if total.is_some() {
        "{msg} [{elapsed_precise}] {bar:40} {pos}/{len} regions ({per_sec}, ETA {eta})"
    } else {
        "{msg} [{elapsed_precise}] {spinner} {pos} regions ({per_sec})"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar
}

/// Regions on one contig (pass 1 counts them; `run --resume` checks shards against them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ContigRegions {
    /// Contig name.
    pub contig: String,
    /// Regions that passed the filters on it.
    pub regions: u64,
}

/// Pass 1: a seeded reservoir sample of regions, genome-wide, and Theta learned from it; also
/// the regions per contig, in stream order.
pub fn learn_hyper(
    input: &InputArgs,
    regions: &RegionArgs,
    model: &ModelArgs,
    hyper: &HyperArgs,
    samples: &Samples,
    quiet: bool,
) -> Result<(HyperFit, PassSummary, Vec<ContigRegions>)> {
    let started = Instant::now();
    let mut stream = region_stream(input, regions, samples)?;
    let bar = progress_bar(None, "pass 1: sampling regions", quiet, model.progress);
    let capacity = hyper.hyper_regions.max(1);
    let mut reservoir: Vec<Region> = Vec::with_capacity(capacity.min(1 << 16));
    let mut rng = StdRng::seed_from_u64(model.seed);
    let mut seen = 0u64;
    let mut per_contig: Vec<ContigRegions> = Vec::new();
    for region in stream.by_ref() {
        let region = region?;
        match per_contig.last_mut() {
            Some(last) if last.contig == region.chrom => last.regions += 1,
            _ => per_contig.push(ContigRegions {
                contig: region.chrom.clone(),
                regions: 1,
            }),
        }
        if reservoir.len() < capacity {
            reservoir.push(region);
        } else {
            let j = rng.random_range(0..=seen);
            if let Some(slot) = usize::try_from(j).ok().and_then(|j| reservoir.get_mut(j)) {
                *slot = region;
            }
        }
        seen += 1;
        bar.inc(1);
    }
    bar.finish_and_clear();
    if reservoir.is_empty() {
        bail!("no region to fit: {}", stream.why_no_regions());
    }
    let mut summary = PassSummary::of(&stream, samples, seen, started);
    if seen < FEW_REGIONS_FOR_EB {
        summary.warnings.push(format!(
            "Theta is learned from only {seen} region{}: empirical Bayes needs hundreds to pin \
             the genome-wide prior down, and with fewer the prior drives every region's answer; \
             use more regions (the default CpG clusters, --tile, a larger BED) or a Theta learned \
             on a larger data set (--hyper-json)",
            if seen == 1 { "" } else { "s" }
        ));
    }
    summary.print_warnings(quiet);
    // Genomic order, so the learned Theta does not depend on the reservoir's replacement order.
    reservoir.sort_by_key(|r| r.id.clone());
    let data: Vec<(&str, RegionData)> = reservoir
        .iter()
        .map(|r| (r.id.as_str(), samples.data(r)))
        .collect();
    let mut eb = EbOptions {
        spike_sd: hyper.spike_sd,
        ..EbOptions::default()
    };
    eb.vb.family = model.family();
    if !quiet {
        eprintln!(
            "methvb: learning Theta from {} of {seen} regions ({} groups, {} samples)",
            data.len(),
            samples.groups.len(),
            samples.sample_group.len()
        );
    }
    let fit = methvb_model::fit_hyper(&data, &Theta::default(), &eb, model.seed)
        .context("learning the hyperparameters")?;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok((fit, summary, per_contig))
}

/// What pass 2 wrote.
#[derive(Debug, Clone, Serialize)]
pub struct FitSummary {
    /// Streaming counts.
    pub pass: PassSummary,
    /// Regions called at the FDR target.
    pub regions_called: u64,
    /// Regions the verdict flags (reliable = false) after refits.
    pub regions_unreliable: u64,
    /// Regions whose optimiser did not meet the convergence rule.
    pub regions_not_converged: u64,
}

/// Pass 2: fits every region (optionally only those on `chroms`) with Theta fixed and writes
/// `out` (Parquet, atomically) with `metadata` as key-value metadata.
#[allow(clippy::too_many_arguments)]
pub fn fit_all(
    input: &InputArgs,
    regions: &RegionArgs,
    model: &ModelArgs,
    samples: &Samples,
    theta: &Theta,
    chroms: &[String],
    expected_regions: Option<u64>,
    out: &Path,
    metadata: Vec<(String, String)>,
    quiet: bool,
) -> Result<FitSummary> {
    let started = Instant::now();
    let layout = ResultsLayout::new(&samples.groups, &samples.names);
    let opts = model.fit_options(samples.model_reference());
    let mut stream = region_stream(input, regions, samples)?;
    // Pass 2 writes the fitted rows to a hidden intermediate file; the published file adds the
    // `called` column, which needs every region's PEP.
    let fitted_path = hidden_sibling(out, "fitted");
    if let Some(name) = out.file_name().and_then(|n| n.to_str()) {
        remove_stale_temporaries(parent_dir(out), |owner| owner == name);
    }
    let mut fitted = AtomicParquetWriter::create(
        &fitted_path,
        layout.fitted_schema(),
        Vec::new(),
        crate::results::RESULTS_ROW_GROUP_ROWS,
    )?;
    let bar = progress_bar(expected_regions, "pass 2: fitting", quiet, model.progress);
    let mut peps: Vec<f64> = Vec::new();
    let mut unreliable = 0u64;
    let mut not_converged = 0u64;
    let mut chunk: Vec<Region> = Vec::with_capacity(model.minibatch.max(1));
    let mut used = 0u64;
    let mut flush = |chunk: &mut Vec<Region>| -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let fits = fit_chunk(chunk, samples, theta, &opts, model.seed)?;
        for f in &fits {
            peps.push(f.pep);
            unreliable += u64::from(!f.reliable);
            not_converged += u64::from(!f.converged);
        }
        let batch = layout.batch(chunk, &fits, &samples.sample_group, &samples.model_index)?;
        fitted.write(&batch)?;
        bar.inc(chunk.len() as u64);
        chunk.clear();
        Ok(())
    };
    for region in stream.by_ref() {
        let region = region?;
        if !chroms.is_empty() && !chroms.contains(&region.chrom) {
            continue;
        }
        used += 1;
        chunk.push(region);
        if chunk.len() >= model.minibatch.max(1) {
            flush(&mut chunk)?;
        }
    }
    flush(&mut chunk)?;
    if chroms.is_empty() && used == 0 {
        bail!("no region to fit: {}", stream.why_no_regions());
    }
    for chrom in chroms {
        if !stream.merger().contigs_visited().any(|c| c == chrom) {
            eprintln!(
                "methvb: warning: contig {chrom} is not in the inputs; no regions fitted there"
            );
        }
    }
    fitted.finish()?;
    bar.finish_and_clear();
    let called = publish_with_calls(&fitted_path, out, &layout, &peps, model.fdr, metadata);
    // The intermediate file is complete but private: remove it whatever happened.
    let _ = std::fs::remove_file(&fitted_path);
    let regions_called = called?;
    let pass = PassSummary::of(&stream, samples, used, started);
    pass.print_warnings(quiet);
    Ok(FitSummary {
        pass,
        regions_called,
        regions_unreliable: unreliable,
        regions_not_converged: not_converged,
    })
}

/// Fits a minibatch of regions in parallel (rayon); the fits in the order of `chunk`. Every
/// region's random stream derives from (seed, region id), so neither the thread count nor the
/// minibatch changes a fit.
fn fit_chunk(
    chunk: &[Region],
    samples: &Samples,
    theta: &Theta,
    opts: &FitOptions,
    seed: u64,
) -> Result<Vec<RegionFit>> {
    chunk
        .par_iter()
        .map(|r| fit_one(r, samples, theta, opts, seed))
        .collect()
}

fn fit_one(
    r: &Region,
    samples: &Samples,
    theta: &Theta,
    opts: &FitOptions,
    seed: u64,
) -> Result<RegionFit> {
    methvb_model::fit_region(&samples.data(r), theta, opts, seed, &r.id)
        .with_context(|| format!("fitting region {}", r.id))
}

/// The directory of `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// For a hidden temporary of an output `X` (`.X.tmp-<pid>`, `.X.fitted`,
/// `.X.fitted.tmp-<pid>`): `X` and the pid of the writer, if the name has one.
fn temporary_of(file: &str) -> Option<(&str, Option<u32>)> {
    let rest = file.strip_prefix('.')?;
    let (rest, pid) = match rest.rsplit_once(".tmp-") {
        Some((rest, pid)) => (rest, Some(pid.parse::<u32>().ok()?)),
        None => (rest, None),
    };
    match rest.strip_suffix(".fitted") {
        Some(owner) => Some((owner, pid)),
        None if pid.is_some() => Some((rest, pid)),
        None => None,
    }
}

/// Removes from `dir` the hidden temporaries that killed earlier runs left for the outputs that
/// `owned` accepts (by file name), sparing those of a process that is still running.
pub fn remove_stale_temporaries(dir: &Path, owned: impl Fn(&str) -> bool) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some((owner, pid)) = file.to_str().and_then(temporary_of) else {
            continue;
        };
        let alive = pid.is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if owned(owner) && !alive {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// `dir/.name.<tag>` for a file `dir/name`.
fn hidden_sibling(out: &Path, tag: &str) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!(".{name}.{tag}"))
}

/// Copies the fitted rows of `fitted` to `out`, adding the FDR calls over all rows; returns the
/// number of regions called.
pub fn publish_with_calls(
    fitted: &Path,
    out: &Path,
    layout: &ResultsLayout,
    peps: &[f64],
    fdr: f64,
    metadata: Vec<(String, String)>,
) -> Result<u64> {
    let calls = if layout.has_contrast() {
        methvb_model::call_by_pep(peps, fdr)
    } else {
        Vec::new()
    };
    let file =
        std::fs::File::open(fitted).with_context(|| format!("reopening {}", fitted.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)?
        .with_batch_size(65_536)
        .build()?;
    let mut writer = AtomicParquetWriter::create(
        out,
        layout.called_schema(),
        metadata,
        crate::results::RESULTS_ROW_GROUP_ROWS,
    )?;
    let mut offset = 0usize;
    for batch in reader {
        let batch = batch?;
        let rows = batch.num_rows();
        let batch = if layout.has_contrast() {
            layout.with_calls(&batch, &calls[offset..offset + rows])?
        } else {
            batch
        };
        writer.write(&batch)?;
        offset += rows;
    }
    writer.finish()?;
    Ok(calls.iter().filter(|&&c| c).count() as u64)
}

/// Where `run`'s pass 2 writes its per-contig shards, and which shards it reuses.
#[derive(Debug)]
pub struct ShardPlan<'a> {
    /// Folder of the shards (`OUT/shards`).
    pub dir: &'a Path,
    /// Key-value metadata of every shard (`methvb.contig` is added per shard).
    pub metadata: Vec<(String, String)>,
    /// Contigs whose shards are reused, with their files (checked by [`crate::shards`]).
    pub reuse: HashMap<String, PathBuf>,
}

/// One contig's shard, in stream order.
#[derive(Debug, Clone, Serialize)]
pub struct ShardFile {
    /// Contig.
    pub contig: String,
    /// The shard file.
    pub path: PathBuf,
    /// Regions (rows) in it.
    pub rows: u64,
    /// Reused from an earlier run (`--resume`) rather than fitted now.
    pub reused: bool,
}

/// What [`fit_shards`] did.
#[derive(Debug, Clone)]
pub struct ShardedPass {
    /// Streaming counts; `regions_used` counts reused regions too.
    pub pass: PassSummary,
    /// Every shard, in stream (genomic) order.
    pub shards: Vec<ShardFile>,
    /// Regions the verdict flags after refits (reused ones included).
    pub regions_unreliable: u64,
    /// Regions whose optimiser did not meet the convergence rule (reused ones included).
    pub regions_not_converged: u64,
}

/// A shard being written: its fitted rows go to a hidden intermediate file; the shard itself is
/// published (with `called` within the shard) once its contig is complete.
struct OpenShard {
    slot: usize,
    contig: String,
    path: PathBuf,
    fitted_path: PathBuf,
    writer: AtomicParquetWriter,
    peps: Vec<f64>,
}

/// The state of [`fit_shards`]: shards open for writing and the counters.
struct Sharder<'a> {
    layout: ResultsLayout,
    samples: &'a Samples,
    theta: &'a Theta,
    opts: FitOptions,
    seed: u64,
    fdr: f64,
    plan: &'a ShardPlan<'a>,
    open: VecDeque<OpenShard>,
    shards: Vec<ShardFile>,
    unreliable: u64,
    not_converged: u64,
}

impl Sharder<'_> {
    /// Starts the shard of `contig` (at index `slot` of `self.shards`).
    fn open_shard(&mut self, contig: &str) -> Result<()> {
        let path = self.plan.dir.join(crate::shards::file_name(contig));
        let fitted_path = hidden_sibling(&path, "fitted");
        let writer = AtomicParquetWriter::create(
            &fitted_path,
            self.layout.fitted_schema(),
            Vec::new(),
            crate::results::RESULTS_ROW_GROUP_ROWS,
        )?;
        self.open.push_back(OpenShard {
            slot: self.shards.len(),
            contig: contig.to_string(),
            path: path.clone(),
            fitted_path,
            writer,
            peps: Vec::new(),
        });
        self.shards.push(ShardFile {
            contig: contig.to_string(),
            path,
            rows: 0,
            reused: false,
        });
        Ok(())
    }

    /// Fits the minibatch `chunk` (stream indices in `index`) and writes its rows to the shards
    /// of their contigs.
    fn flush(
        &mut self,
        chunk: &mut Vec<Region>,
        index: &mut Vec<u64>,
        audit: &mut AuditPicker,
        bar: &ProgressBar,
    ) -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let fits = fit_chunk(chunk, self.samples, self.theta, &self.opts, self.seed)?;
        for ((&i, region), fit) in index.iter().zip(chunk.iter()).zip(&fits) {
            audit.offer(i, region, fit);
            self.unreliable += u64::from(!fit.reliable);
            self.not_converged += u64::from(!fit.converged);
        }
        let mut start = 0;
        while start < chunk.len() {
            let contig = chunk[start].chrom.as_str();
            let end = start
                + chunk[start..]
                    .iter()
                    .take_while(|r| r.chrom == contig)
                    .count();
            let shard = self
                .open
                .iter_mut()
                .find(|s| s.contig == contig)
                .with_context(|| format!("no open shard for contig {contig}"))?;
            let batch = self.layout.batch(
                &chunk[start..end],
                &fits[start..end],
                &self.samples.sample_group,
                &self.samples.model_index,
            )?;
            shard.writer.write(&batch)?;
            shard.peps.extend(fits[start..end].iter().map(|f| f.pep));
            start = end;
        }
        bar.inc(chunk.len() as u64);
        chunk.clear();
        index.clear();
        Ok(())
    }

    /// Publishes the open shards whose contig is complete: not the one `streaming`, and none
    /// with rows still waiting in `chunk`.
    fn publish_complete(&mut self, chunk: &[Region], streaming: Option<&str>) -> Result<()> {
        while let Some(front) = self.open.front() {
            if streaming == Some(front.contig.as_str())
                || chunk.iter().any(|r| r.chrom == front.contig)
            {
                break;
            }
            let Some(shard) = self.open.pop_front() else {
                break;
            };
            let rows = shard.writer.finish()?;
            let mut metadata = self.plan.metadata.clone();
            metadata.push((crate::shards::CONTIG_KEY.into(), shard.contig.clone()));
            let called = publish_with_calls(
                &shard.fitted_path,
                &shard.path,
                &self.layout,
                &shard.peps,
                self.fdr,
                metadata,
            );
            // The intermediate file is complete but private: remove it whatever happened.
            let _ = std::fs::remove_file(&shard.fitted_path);
            called?;
            self.shards[shard.slot].rows = rows;
        }
        Ok(())
    }
}

/// Pass 2 of `run`: fits every region with Theta fixed, in rayon-parallel minibatches (which may
/// span contigs), and writes one shard per contig into `plan.dir` as the stream leaves the
/// contig (see [`crate::shards`]). Contigs in `plan.reuse` are not fitted: their regions stream
/// past, checked against the reused shard's rows, and are offered to the audit without a fit
/// unless the audit picks them. Memory: one minibatch and the PEPs of the open shards.
#[allow(clippy::too_many_arguments)]
pub fn fit_shards(
    input: &InputArgs,
    regions: &RegionArgs,
    model: &ModelArgs,
    samples: &Samples,
    theta: &Theta,
    plan: &ShardPlan,
    expected_regions: Option<u64>,
    audit: &mut AuditPicker,
    quiet: bool,
) -> Result<ShardedPass> {
    let started = Instant::now();
    let mut stream = region_stream(input, regions, samples)?;
    let bar = progress_bar(expected_regions, "pass 2: fitting", quiet, model.progress);
    let mut sharder = Sharder {
        layout: ResultsLayout::new(&samples.groups, &samples.names),
        samples,
        theta,
        opts: model.fit_options(samples.model_reference()),
        seed: model.seed,
        fdr: model.fdr,
        plan,
        open: VecDeque::new(),
        shards: Vec::new(),
        unreliable: 0,
        not_converged: 0,
    };
    let minibatch = model.minibatch.max(1);
    let mut chunk: Vec<Region> = Vec::with_capacity(minibatch);
    let mut chunk_index: Vec<u64> = Vec::with_capacity(minibatch);
    let mut reusing: Option<(usize, crate::shards::ShardCursor)> = None;
    let mut contigs_seen: HashSet<String> = HashSet::new();
    let mut next_index = 0u64;
    for region in stream.by_ref() {
        let region = region?;
        let new_contig = sharder
            .shards
            .last()
            .is_none_or(|s| s.contig != region.chrom);
        if new_contig {
            if let Some((slot, cursor)) = reusing.take() {
                sharder.shards[slot].rows = cursor.finish()?;
            }
            if !contigs_seen.insert(region.chrom.clone()) {
                bail!(
                    "regions of contig {} come again after other contigs",
                    region.chrom
                );
            }
            match plan.reuse.get(&region.chrom) {
                Some(path) => {
                    reusing = Some((
                        sharder.shards.len(),
                        crate::shards::ShardCursor::open(path)?,
                    ));
                    sharder.shards.push(ShardFile {
                        contig: region.chrom.clone(),
                        path: path.clone(),
                        rows: 0,
                        reused: true,
                    });
                }
                None => sharder.open_shard(&region.chrom)?,
            }
            sharder.publish_complete(&chunk, Some(&region.chrom))?;
        }
        let index = next_index;
        next_index += 1;
        if let Some((_, cursor)) = reusing.as_mut() {
            let (reliable, converged) = cursor.next(&region.id)?;
            sharder.unreliable += u64::from(!reliable);
            sharder.not_converged += u64::from(!converged);
            audit.offer_lazy(index, &region, reliable, || {
                fit_one(&region, samples, theta, &sharder.opts, model.seed)
            })?;
            bar.inc(1);
            continue;
        }
        chunk.push(region);
        chunk_index.push(index);
        if chunk.len() >= minibatch {
            sharder.flush(&mut chunk, &mut chunk_index, audit, &bar)?;
            let streaming = sharder.shards.last().map(|s| s.contig.clone());
            sharder.publish_complete(&chunk, streaming.as_deref())?;
        }
    }
    if let Some((slot, cursor)) = reusing.take() {
        sharder.shards[slot].rows = cursor.finish()?;
    }
    sharder.flush(&mut chunk, &mut chunk_index, audit, &bar)?;
    sharder.publish_complete(&chunk, None)?;
    bar.finish_and_clear();
    if next_index == 0 {
        // Only possible with --hyper-json: pass 1 stops on this before.
        bail!("no region to fit: {}", stream.why_no_regions());
    }
    Ok(ShardedPass {
        pass: PassSummary::of(&stream, samples, next_index, started),
        shards: sharder.shards,
        regions_unreliable: sharder.unreliable,
        regions_not_converged: sharder.not_converged,
    })
}
