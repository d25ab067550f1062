//! The jobs: [`run`] (pass 1 + pass 2 into a run folder, one shard per contig gathered into
//! `regions.parquet`; `resume` reuses the valid work of an interrupted run), [`hyper`] (pass 1
//! only) and [`fit`] (pass 2 with a given Theta, optionally on some chromosomes: one shard of a
//! workflow). With the same Theta and seed, the rows of `fit` shards equal those of `run`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use methvb_mcmc::AuditSummary;
use methvb_model::{StartModel, Theta};
use serde::{Deserialize, Serialize};

use crate::MODEL_VERSION;
use crate::audit::{AuditPicker, run_audit};
use crate::config::{AuditConfig, FitConfig, HyperConfig, InputConfig, ModelConfig, RegionConfig};
use crate::design::DesignRecord;
use crate::error::{Context, Result, bail};
use crate::gather::{GatherMetadata, gather};
use crate::pass1::{HyperFile, Pass1, learn_hyper};
use crate::pass2::{FitSummary, Pass2, ShardPlan, fit_to_file, fit_to_shards};
use crate::progress::Progress;
use crate::resume::{self, InputFile, Key};
use crate::run_folder;
use crate::samples::Samples;
use crate::schema::{ResultsLayout, files};
use crate::shards::{self, Rejected};

/// The settings every job shares: the inputs, how regions are made, the model, and how pass 2
/// fits and calls them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// The inputs.
    pub input: InputConfig,
    /// How sites are grouped into regions.
    pub regions: RegionConfig,
    /// Seed and family.
    pub model: ModelConfig,
    /// Per-region fit settings.
    pub fit: FitConfig,
    /// Target Bayesian FDR of the region calls.
    pub fdr: f64,
    /// Regions fitted in parallel per minibatch (changes no result).
    pub minibatch: usize,
    /// The command line, recorded in the outputs.
    pub command: String,
}

impl Analysis {
    /// The analysis of `input` with every other setting at its default.
    pub fn new(input: InputConfig) -> Self {
        Self {
            input,
            regions: RegionConfig::default(),
            model: ModelConfig::default(),
            fit: FitConfig::default(),
            fdr: crate::config::DEFAULT_FDR,
            minibatch: crate::config::DEFAULT_MINIBATCH,
            command: String::new(),
        }
    }

    pub(crate) fn pass1<'a>(&'a self, hyper: &'a HyperConfig) -> Pass1<'a> {
        Pass1 {
            input: &self.input,
            regions: &self.regions,
            model: &self.model,
            hyper,
        }
    }

    pub(crate) fn pass2<'a>(
        &'a self,
        samples: &'a Samples,
        theta: &'a Theta,
        start: Option<&'a StartModel>,
    ) -> Pass2<'a> {
        Pass2 {
            input: &self.input,
            regions: &self.regions,
            model: &self.model,
            fit: &self.fit,
            fdr: self.fdr,
            minibatch: self.minibatch,
            samples,
            theta,
            start,
        }
    }

    /// Key-value metadata of a results Parquet file of run `run_id` (`inputs`:
    /// [`InputConfig::provenance`]).
    pub(crate) fn results_metadata(
        &self,
        theta: &Theta,
        samples: &Samples,
        inputs: &serde_json::Value,
        run_id: &str,
    ) -> Vec<(String, String)> {
        let mut metadata: Vec<(String, String)> = vec![
            ("methvb.version".into(), env!("CARGO_PKG_VERSION").into()),
            (run_folder::RUN_ID_KEY.into(), run_id.into()),
            ("methvb.model_version".into(), MODEL_VERSION.into()),
            ("methvb.command".into(), self.command.clone()),
            ("methvb.seed".into(), self.model.seed.to_string()),
            (
                "methvb.theta".into(),
                serde_json::to_string(theta).unwrap_or_default(),
            ),
            ("methvb.delta0".into(), self.fit.delta0.to_string()),
            ("methvb.fdr".into(), self.fdr.to_string()),
            ("methvb.family".into(), self.model.family.name().into()),
            (
                "methvb.fit_options".into(),
                serde_json::to_string(&self.fit_options(samples)).unwrap_or_default(),
            ),
            ("methvb.input_options".into(), inputs.to_string()),
            (
                "methvb.region_options".into(),
                serde_json::to_string(&self.regions).unwrap_or_default(),
            ),
        ];
        if let Some(design) = &samples.design {
            metadata.push((
                "methvb.design".into(),
                serde_json::to_string(&design.record).unwrap_or_default(),
            ));
        }
        metadata
    }

    fn fit_options(&self, samples: &Samples) -> methvb_model::FitOptions {
        self.fit.fit_options(&self.model, samples.model_reference())
    }

    /// The part of every resume key these settings make.
    pub(crate) fn base_key(&self, samples: &Samples, files: &[InputFile]) -> Result<Key> {
        resume::base_key(&self.input, &self.regions, &self.model, samples, files)
    }
}

/// `methvb run`: pass 1 and pass 2 into a run folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The shared settings.
    pub analysis: Analysis,
    /// Pass 1 settings.
    pub hyper: HyperConfig,
    /// The MCMC audit.
    pub audit: AuditConfig,
    /// Use this Theta (a hyper.json) instead of learning it in pass 1.
    pub hyper_json: Option<PathBuf>,
    /// The run folder.
    pub out: PathBuf,
    /// Reuse the valid work of an interrupted run in `out`.
    pub resume: bool,
    /// Keep `out/shards/` after a successful run.
    pub keep_shards: bool,
}

/// `methvb hyper`: pass 1 into a hyper.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HyperJob {
    /// The shared settings (pass 2's are not used).
    pub analysis: Analysis,
    /// Pass 1 settings.
    pub hyper: HyperConfig,
    /// The hyper.json written.
    pub out: PathBuf,
}

/// `methvb fit`: pass 2 with a given Theta into one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitJob {
    /// The shared settings.
    pub analysis: Analysis,
    /// Theta (a hyper.json or a bare Theta object).
    pub hyper: PathBuf,
    /// Only fit regions on these chromosomes (empty: all).
    pub chrom: Vec<String>,
    /// The Parquet file written.
    pub out: PathBuf,
}

/// What every `run.json` (of `run` and of `dmr`) says first: the versions, the run and its
/// files, and what it was made from.
#[derive(Debug, Serialize)]
pub(crate) struct RunProvenance<'a> {
    version: &'static str,
    model_version: &'static str,
    /// The run id, also in the metadata of the run's Parquet files ([`run_folder`]).
    run_id: &'a str,
    /// The files of the folder this run wrote (or, for a reused hyper.json, took over).
    files: Vec<&'static str>,
    command: &'a str,
    seed: u64,
    sample_sheet: &'a Path,
    inputs: Vec<InputFile>,
    /// The input options (paths absolute; BAM filters) and each BAM sample's call threshold.
    input_options: &'a serde_json::Value,
    /// How sites were grouped into regions and filtered.
    region_options: &'a RegionConfig,
    groups: &'a [String],
    /// Covariates and pairs, and where delta is evaluated (absent without a design).
    #[serde(skip_serializing_if = "Option::is_none")]
    design: Option<&'a DesignRecord>,
    theta: &'a Theta,
    fit_options: methvb_model::FitOptions,
    fdr: f64,
}

impl<'a> RunProvenance<'a> {
    /// The provenance of run `run_id` of `analysis` on `samples` (`inputs`, `input_options`:
    /// [`resume::input_files`], [`InputConfig::provenance`]) with Theta `theta`, which wrote
    /// `files`.
    pub(crate) fn new(
        analysis: &'a Analysis,
        samples: &'a Samples,
        run_id: &'a str,
        files: Vec<&'static str>,
        inputs: Vec<InputFile>,
        input_options: &'a serde_json::Value,
        theta: &'a Theta,
    ) -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION"),
            model_version: MODEL_VERSION,
            run_id,
            files,
            command: &analysis.command,
            seed: analysis.model.seed,
            sample_sheet: samples.sheet.path(),
            inputs,
            input_options,
            region_options: &analysis.regions,
            groups: &samples.groups,
            design: samples.design.as_ref().map(|d| &d.record),
            theta,
            fit_options: analysis.fit_options(samples),
            fdr: analysis.fdr,
        }
    }
}

/// `run.json` of `run`.
#[derive(Debug, Serialize)]
struct RunFile<'a> {
    #[serde(flatten)]
    run: RunProvenance<'a>,
    pass1: Option<serde_json::Value>,
    pass2: &'a FitSummary,
    /// What `--resume` reused.
    resume: &'a ResumeReport,
    /// Pooled agreement of VB with NUTS on the audited regions (absent when off).
    mcmc_check: Option<AuditSummary>,
    seconds_total: f64,
}

/// Writes `value` as pretty JSON to `path` through a temporary file and a rename.
pub fn write_json_atomic(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    methvb_io::atomic::write_atomic(path, (text + "\n").as_bytes())?;
    Ok(())
}

/// What `run --resume` reused (in run.json).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ResumeReport {
    /// `--resume` was given.
    pub requested: bool,
    /// hyper.json of the earlier run was reused (pass 1 skipped).
    pub hyper_reused: bool,
    /// Contigs whose shards were reused, in genomic order.
    pub contigs_reused: Vec<String>,
    /// Regions in the reused shards.
    pub regions_reused: u64,
    /// Contigs fitted in this run.
    pub contigs_fitted: Vec<String>,
    /// Shards found but not reused, and why.
    pub shards_rejected: Vec<Rejected>,
    /// DIR/shards/ was kept (`--keep-shards`).
    pub shards_kept: bool,
}

/// What [`run`] did.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Pass 2's counts.
    pub summary: FitSummary,
    /// The results table written.
    pub regions: PathBuf,
    /// What `resume` reused.
    pub resume: ResumeReport,
    /// The audit's pooled agreement (`None`: no audit).
    pub mcmc: Option<AuditSummary>,
}

/// hyper.json of an earlier run into `path`, if it was learned with `key`; says why not
/// otherwise.
fn reusable_hyper(
    path: &Path,
    key: &serde_json::Value,
    progress: &dyn Progress,
) -> Option<HyperFile> {
    if !path.exists() {
        return None;
    }
    let why = match std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str::<HyperFile>(&t).map_err(|e| e.to_string()))
    {
        Ok(file) => match &file.resume_key {
            Some(found) if found == key => return Some(file),
            Some(found) => format!(
                "learned with other settings or inputs (differs in: {})",
                resume::differing_keys(found, key).join(", ")
            ),
            None => "it does not record the inputs and settings it was learned from".into(),
        },
        Err(e) => format!("unreadable ({e})"),
    };
    progress.note(&format!(
        "--resume: not reusing {}: {why}; learning Theta again",
        path.display()
    ));
    None
}

/// "1 contig", "2 contigs".
pub fn contigs_count(n: usize) -> String {
    format!("{n} contig{}", if n == 1 { "" } else { "s" })
}

/// Whether `a` and `b` name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Theta of a run and what pass 1 left for pass 2.
struct Learned {
    theta: Theta,
    start: Option<StartModel>,
    pass1: Option<serde_json::Value>,
    regions_per_contig: Option<HashMap<String, u64>>,
    regions_seen: Option<u64>,
}

/// Makes the run folder and clears the outputs of an earlier run there, except `keep`.
pub(crate) fn create_out(out: &Path, keep: &[&str], progress: &dyn Progress) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let removed = run_folder::clear_earlier_outputs(out, keep)?;
    if !removed.is_empty() {
        progress.note(&format!(
            "removed the outputs of an earlier run from {}: {}",
            out.display(),
            removed.join(", ")
        ));
    }
    Ok(())
}

/// Pass 1 of `run` (or the given Theta, or a reusable hyper.json). The output folder is made
/// only once the inputs have streamed through pass 1, so an input error leaves nothing behind;
/// the outputs of an earlier run there go before this run writes any of its own, so that none
/// of them can pass for this run's.
fn learn_or_reuse(
    config: &RunConfig,
    samples: &Samples,
    base: &Key,
    provenance: &serde_json::Value,
    resume: &mut ResumeReport,
    progress: &dyn Progress,
) -> Result<Learned> {
    let hyper_path = config.out.join(files::HYPER);
    if let Some(path) = &config.hyper_json {
        let (theta, start) = HyperFile::read(path)?;
        samples.check_theta(&theta, path)?;
        // `--hyper-json OUT/hyper.json` names this run's Theta: it stays.
        let keep: &[&str] = if same_file(path, &hyper_path) {
            &[files::HYPER]
        } else {
            &[]
        };
        create_out(&config.out, keep, progress)?;
        return Ok(Learned {
            theta,
            start,
            pass1: None,
            regions_per_contig: None,
            regions_seen: None,
        });
    }
    let key = resume::hyper_key(base.clone(), &config.hyper)?;
    let reused = if config.resume {
        reusable_hyper(&hyper_path, &key, progress)
    } else {
        None
    };
    let file = match reused {
        Some(file) => {
            resume.hyper_reused = true;
            create_out(&config.out, &[files::HYPER], progress)?;
            file
        }
        None => {
            let (mut file, _) =
                learn_hyper(config.analysis.pass1(&config.hyper), samples, progress)?;
            file.resume_key = Some(key);
            file.input_options = Some(provenance.clone());
            create_out(&config.out, &[], progress)?;
            write_json_atomic(&hyper_path, &file)?;
            file
        }
    };
    Ok(Learned {
        regions_per_contig: Some(
            file.regions_per_contig
                .iter()
                .map(|c| (c.contig.clone(), c.regions))
                .collect(),
        ),
        regions_seen: Some(file.regions_seen),
        theta: file.theta,
        start: file.start,
        pass1: file.pass1,
    })
}

/// The shards of an earlier run that this one can reuse (with `resume`); else removes them.
fn plan_reuse(
    config: &RunConfig,
    shard_dir: &Path,
    shard_key: &serde_json::Value,
    layout: &ResultsLayout,
    learned: &Learned,
    resume: &mut ResumeReport,
    progress: &dyn Progress,
) -> Result<HashMap<String, PathBuf>> {
    if !config.resume {
        shards::remove_all(shard_dir)?;
        return Ok(HashMap::new());
    }
    crate::pass2::remove_stale_temporaries(shard_dir, |name| name.ends_with(".parquet"));
    let (reuse, rejected) = shards::find_reusable(
        shard_dir,
        shard_key,
        &layout.called_schema(),
        learned.regions_per_contig.as_ref(),
    )?;
    for r in &rejected {
        progress.note(&format!(
            "--resume: not reusing {}: {}",
            r.file.display(),
            r.reason
        ));
    }
    resume.shards_rejected = rejected;
    let mut contigs: Vec<&str> = reuse.keys().map(String::as_str).collect();
    contigs.sort();
    progress.note(&format!(
        "--resume: {} hyper.json; reusing the shards of {}{}",
        if resume.hyper_reused {
            "reusing"
        } else {
            "not reusing"
        },
        contigs_count(contigs.len()),
        if contigs.is_empty() {
            String::new()
        } else {
            format!(" ({})", contigs.join(", "))
        }
    ));
    Ok(reuse)
}

/// Runs `methvb run`: learns Theta (or takes it), fits every region into per-contig shards
/// (reusing valid ones with `resume`), gathers them into `regions.parquet`, audits a sample
/// with NUTS and writes `run.json`.
pub fn run(config: &RunConfig, progress: &dyn Progress) -> Result<RunOutcome> {
    let started = Instant::now();
    let analysis = &config.analysis;
    let samples = Samples::load(&analysis.input, &analysis.regions)?;
    let inputs = resume::input_files(&samples)?;
    let provenance = analysis.input.provenance(&samples.sheet)?;
    let base = analysis.base_key(&samples, &inputs)?;
    let mut resume = ResumeReport {
        requested: config.resume,
        shards_kept: config.keep_shards,
        ..ResumeReport::default()
    };
    let learned = learn_or_reuse(config, &samples, &base, &provenance, &mut resume, progress)?;
    crate::pass2::remove_stale_temporaries(&config.out, |name| {
        [files::REGIONS, files::MCMC, files::HYPER, files::RUN].contains(&name)
    });

    // Pass 2: one shard per contig under OUT/shards, reusing valid ones with --resume.
    let theta = &learned.theta;
    let shard_dir = config.out.join(shards::SHARDS_DIR);
    let layout = ResultsLayout::new(&samples.groups, &samples.names);
    let start = analysis.fit.start(learned.start.as_ref());
    let rows_key = resume::rows_key(base, theta, start, &analysis.fit)?;
    let run_id = run_folder::run_id(&serde_json::Value::Object(rows_key.clone()));
    let metadata = || analysis.results_metadata(theta, &samples, &provenance, &run_id);
    let shard_key = resume::shard_key(rows_key, analysis.fdr);
    let reuse = plan_reuse(
        config,
        &shard_dir,
        &shard_key,
        &layout,
        &learned,
        &mut resume,
        progress,
    )?;
    std::fs::create_dir_all(&shard_dir)
        .with_context(|| format!("creating {}", shard_dir.display()))?;
    let mut shard_metadata = metadata();
    shard_metadata.push((shards::RESUME_KEY.into(), shard_key.to_string()));
    let plan = ShardPlan {
        dir: &shard_dir,
        metadata: shard_metadata,
        reuse,
    };
    let mut picker = AuditPicker::new(&config.audit, analysis.model.seed);
    let pass = analysis.pass2(&samples, theta, start);
    let sharded = fit_to_shards(&pass, &plan, learned.regions_seen, &mut picker, progress)?;
    for shard in &sharded.shards {
        if shard.reused {
            resume.contigs_reused.push(shard.contig.clone());
            resume.regions_reused += shard.rows;
        } else {
            resume.contigs_fitted.push(shard.contig.clone());
        }
    }
    if config.hyper_json.is_some() {
        // Without pass 1, pass 2 is the one that read the inputs.
        sharded.pass.report_warnings(progress);
    }
    let out = config.out.join(files::REGIONS);
    let paths: Vec<PathBuf> = sharded.shards.iter().map(|s| s.path.clone()).collect();
    let gathered = gather(
        &paths,
        analysis.fdr,
        &out,
        GatherMetadata::Given(metadata()),
    )?;
    if gathered.rows != sharded.pass.regions_used {
        bail!(
            "{}: {} rows gathered from the shards, but {} regions were streamed",
            out.display(),
            gathered.rows,
            sharded.pass.regions_used
        );
    }
    let summary = FitSummary {
        pass: sharded.pass,
        regions_called: gathered.called,
        regions_unreliable: sharded.regions_unreliable,
        regions_not_converged: sharded.regions_not_converged,
    };
    let mcmc = run_audit(
        picker,
        &samples,
        theta,
        analysis.model.seed,
        analysis.fit.delta0,
        &config.out.join(files::MCMC),
        metadata(),
    )?;
    let mut written = vec![files::REGIONS];
    if config.hyper_json.is_none() || config.out.join(files::HYPER).is_file() {
        written.push(files::HYPER);
    }
    if mcmc.is_some() {
        written.push(files::MCMC);
    }
    let run_file = RunFile {
        run: RunProvenance::new(
            analysis,
            &samples,
            &run_id,
            written,
            inputs,
            &provenance,
            theta,
        ),
        pass1: learned.pass1.clone(),
        pass2: &summary,
        resume: &resume,
        mcmc_check: mcmc.clone(),
        seconds_total: started.elapsed().as_secs_f64(),
    };
    write_json_atomic(&config.out.join(files::RUN), &run_file)?;
    if !config.keep_shards {
        shards::remove_all(&shard_dir)?;
    }
    Ok(RunOutcome {
        summary,
        regions: out,
        resume,
        mcmc,
    })
}

/// Runs `methvb hyper`: pass 1, written to `job.out`; returns what it wrote.
pub fn hyper(job: &HyperJob, progress: &dyn Progress) -> Result<HyperFile> {
    let analysis = &job.analysis;
    let samples = Samples::load(&analysis.input, &analysis.regions)?;
    let (mut file, _) = learn_hyper(analysis.pass1(&job.hyper), &samples, progress)?;
    file.input_options = Some(analysis.input.provenance(&samples.sheet)?);
    write_json_atomic(&job.out, &file)?;
    Ok(file)
}

/// Runs `methvb fit`: pass 2 with the Theta of `job.hyper` into `job.out`.
pub fn fit(job: &FitJob, progress: &dyn Progress) -> Result<FitSummary> {
    let analysis = &job.analysis;
    let samples = Samples::load(&analysis.input, &analysis.regions)?;
    let (theta, learned_start) = HyperFile::read(&job.hyper)?;
    samples.check_theta(&theta, &job.hyper)?;
    let start = analysis.fit.start(learned_start.as_ref());
    let provenance = analysis.input.provenance(&samples.sheet)?;
    // The run id of the whole workflow: every shard of it has the same, whatever its contigs.
    let inputs = resume::input_files(&samples)?;
    let base = analysis.base_key(&samples, &inputs)?;
    let run_id = run_folder::run_id(&serde_json::Value::Object(resume::rows_key(
        base,
        &theta,
        start,
        &analysis.fit,
    )?));
    let metadata = analysis.results_metadata(&theta, &samples, &provenance, &run_id);
    fit_to_file(
        &analysis.pass2(&samples, &theta, start),
        &job.chrom,
        &job.out,
        metadata,
        progress,
    )
}
