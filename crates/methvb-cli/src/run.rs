//! `methvb run` (pass 1 + pass 2 into an output directory), `methvb hyper` (pass 1 only) and
//! `methvb fit` (pass 2 with a given Theta, optionally on some chromosomes: one shard of a
//! workflow). With the same Theta and seed, the rows of `fit` shards equal those of `run`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use methvb_model::{HyperFit, Theta};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::audit::{self, AuditArgs, AuditPicker};
use crate::inputs::InputArgs;
use crate::pipeline::{self, FitSummary, HyperArgs, ModelArgs, PassSummary, RegionArgs, Samples};

/// Version of the statistical model written to the outputs (bump when results change meaning).
pub const MODEL_VERSION: &str = "1";

/// Arguments of `methvb run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    regions: RegionArgs,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    hyper: HyperArgs,
    #[command(flatten)]
    audit: AuditArgs,
    /// Use this Theta (a hyper.json) instead of learning it in pass 1.
    #[arg(long, value_name = "JSON")]
    hyper_json: Option<PathBuf>,
    /// Output directory: regions.parquet, hyper.json, run.json.
    #[arg(long, short, value_name = "DIR")]
    out: PathBuf,
}

/// Arguments of `methvb hyper`.
#[derive(Debug, Args)]
pub struct HyperCmdArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    regions: RegionArgs,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    hyper: HyperArgs,
    /// Output JSON (Theta and how it was learned).
    #[arg(long, short, value_name = "JSON")]
    out: PathBuf,
}

/// Arguments of `methvb fit`.
#[derive(Debug, Args)]
pub struct FitArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    regions: RegionArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// Theta from `methvb hyper` (or a run's hyper.json).
    #[arg(long, value_name = "JSON")]
    hyper: PathBuf,
    /// Only fit regions on these chromosomes (repeat or comma-separate); default: all.
    #[arg(long, value_name = "CHROM", value_delimiter = ',')]
    chrom: Vec<String>,
    /// Output Parquet file (`called` is the FDR call within this file; `methvb gather`
    /// recomputes it over all shards).
    #[arg(long, short, value_name = "FILE.parquet")]
    out: PathBuf,
}

/// `hyper.json`: Theta and how it was learned.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct HyperFile {
    /// The hyperparameters (keys as in MODEL.md).
    pub theta: Theta,
    /// methvb version that learned it.
    pub version: String,
    /// Seed of the reservoir sample and the local fits.
    pub seed: u64,
    /// Regions in the reservoir sample.
    pub regions_sampled: u64,
    /// Regions seen in pass 1.
    pub regions_seen: u64,
    /// Epochs of stochastic empirical Bayes and whether they converged.
    pub epochs: u32,
    /// Whether the convergence rule fired.
    pub converged: bool,
    /// Theta after each epoch.
    pub history: Vec<Theta>,
}

impl HyperFile {
    fn new(fit: &HyperFit, seed: u64, sampled: usize, seen: u64) -> Self {
        Self {
            theta: fit.theta,
            version: env!("CARGO_PKG_VERSION").to_string(),
            seed,
            regions_sampled: sampled as u64,
            regions_seen: seen,
            epochs: fit.epochs,
            converged: fit.converged,
            history: fit.history.clone(),
        }
    }

    /// Reads a hyper.json, or a bare Theta object.
    pub fn read_theta(path: &Path) -> Result<Theta> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        if let Ok(file) = serde_json::from_str::<HyperFile>(&text) {
            return Ok(file.theta);
        }
        serde_json::from_str::<Theta>(&text).with_context(|| {
            format!(
                "{}: neither a hyper.json nor a Theta object",
                path.display()
            )
        })
    }
}

/// One input file and its checksum, for provenance.
#[derive(Debug, Serialize)]
struct InputFile {
    sample: String,
    group: String,
    path: PathBuf,
    bytes: u64,
    sha256: String,
}

/// `run.json`.
#[derive(Debug, Serialize)]
struct RunFile<'a> {
    version: &'static str,
    model_version: &'static str,
    command: String,
    seed: u64,
    sample_sheet: &'a Path,
    inputs: Vec<InputFile>,
    groups: &'a [String],
    theta: Theta,
    fit_options: methvb_model::FitOptions,
    fdr: f64,
    pass1: Option<PassSummary>,
    pass2: &'a FitSummary,
    /// Pooled agreement of VB with NUTS on the audited regions (absent when off).
    mcmc_check: Option<methvb_mcmc::AuditSummary>,
    seconds_total: f64,
}

/// Key-value metadata of a results Parquet file.
fn results_metadata(model: &ModelArgs, theta: &Theta) -> Vec<(String, String)> {
    vec![
        ("methvb.version".into(), env!("CARGO_PKG_VERSION").into()),
        ("methvb.model_version".into(), MODEL_VERSION.into()),
        ("methvb.command".into(), crate::command_line()),
        ("methvb.seed".into(), model.seed.to_string()),
        (
            "methvb.theta".into(),
            serde_json::to_string(theta).unwrap_or_default(),
        ),
        ("methvb.delta0".into(), model.delta0.to_string()),
        ("methvb.fdr".into(), model.fdr.to_string()),
        ("methvb.family".into(), model.family().name().into()),
    ]
}

fn sha256_file(path: &Path) -> Result<(u64, String)> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        hasher.update(&buf[..n]);
    }
    let hex = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((bytes, hex))
}

/// Writes `value` as pretty JSON to `path` through a temporary file and a rename.
pub fn write_json_atomic(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, text + "\n").with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// Runs `methvb run`.
pub fn run(args: &RunArgs, quiet: bool) -> Result<()> {
    let started = Instant::now();
    let samples = Samples::load(&args.input)?;
    // The output folder is made only once the inputs have streamed through pass 1, so an input
    // error leaves nothing behind.
    let create_out = || {
        std::fs::create_dir_all(&args.out)
            .with_context(|| format!("creating {}", args.out.display()))
    };
    let (theta, pass1) = match &args.hyper_json {
        Some(path) => {
            let theta = HyperFile::read_theta(path)?;
            create_out()?;
            (theta, None)
        }
        None => {
            let (file, pass1) = learn_hyper_file(
                &args.input,
                &args.regions,
                &args.model,
                &args.hyper,
                &samples,
                quiet,
            )?;
            create_out()?;
            write_json_atomic(&args.out.join("hyper.json"), &file)?;
            (file.theta, Some(pass1))
        }
    };
    let expected = pass1.as_ref().map(|p| p.regions_used);
    let out = args.out.join("regions.parquet");
    let mut picker = AuditPicker::new(&args.audit, args.model.seed);
    let summary = pipeline::fit_all(
        &args.input,
        &args.regions,
        &args.model,
        &samples,
        &theta,
        &[],
        expected,
        &out,
        results_metadata(&args.model, &theta),
        Some(&mut picker),
        quiet,
    )?;
    let mcmc = audit::run_audit(
        picker,
        &samples,
        &theta,
        args.model.seed,
        args.model.delta0,
        &args.out.join("mcmc_check.parquet"),
        results_metadata(&args.model, &theta),
    )?;
    let inputs = samples
        .sheet
        .samples
        .iter()
        .map(|s| {
            let (bytes, sha256) = sha256_file(&s.path)?;
            Ok(InputFile {
                sample: s.name.clone(),
                group: s.group.clone(),
                path: s.path.clone(),
                bytes,
                sha256,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let run_file = RunFile {
        version: env!("CARGO_PKG_VERSION"),
        model_version: MODEL_VERSION,
        command: crate::command_line(),
        seed: args.model.seed,
        sample_sheet: samples.sheet.path(),
        inputs,
        groups: &samples.groups,
        theta,
        fit_options: args.model.fit_options(),
        fdr: args.model.fdr,
        pass1,
        pass2: &summary,
        mcmc_check: mcmc.clone(),
        seconds_total: started.elapsed().as_secs_f64(),
    };
    write_json_atomic(&args.out.join("run.json"), &run_file)?;
    if !quiet {
        report(&summary, &out);
        if let Some(m) = &mcmc {
            eprintln!(
                "methvb: MCMC audit of {} regions: median |z_bias| {:.3} (worst {:.2}), median sd ratio {:.2}, {} regions with R-hat > {}",
                m.n_regions,
                m.median_abs_z_bias,
                m.worst_abs_z_bias,
                m.median_sd_ratio,
                m.regions_rhat_above,
                m.rhat_threshold
            );
        }
    }
    Ok(())
}

fn report(summary: &FitSummary, out: &Path) {
    eprintln!(
        "methvb: {} regions fitted in {:.1} s ({} called, {} unreliable by PSIS, {} not converged) -> {}",
        summary.pass.regions_used,
        summary.pass.seconds,
        summary.regions_called,
        summary.regions_unreliable,
        summary.regions_not_converged,
        out.display()
    );
}

/// Pass 1, and the `hyper.json` that records it.
fn learn_hyper_file(
    input: &InputArgs,
    regions: &RegionArgs,
    model: &ModelArgs,
    hyper: &HyperArgs,
    samples: &Samples,
    quiet: bool,
) -> Result<(HyperFile, PassSummary)> {
    let (fit, pass1) = pipeline::learn_hyper(input, regions, model, hyper, samples, quiet)?;
    let sampled = hyper.hyper_regions.min(pass1.regions_used as usize);
    Ok((
        HyperFile::new(&fit, model.seed, sampled, pass1.regions_used),
        pass1,
    ))
}

/// Runs `methvb hyper`.
pub fn hyper(args: &HyperCmdArgs, quiet: bool) -> Result<()> {
    let samples = Samples::load(&args.input)?;
    let (file, pass1) = learn_hyper_file(
        &args.input,
        &args.regions,
        &args.model,
        &args.hyper,
        &samples,
        quiet,
    )?;
    write_json_atomic(&args.out, &file)?;
    if !quiet {
        eprintln!(
            "methvb: Theta learned from {} of {} regions in {} epochs -> {}",
            file.regions_sampled,
            pass1.regions_used,
            file.epochs,
            args.out.display()
        );
    }
    Ok(())
}

/// Runs `methvb fit`.
pub fn fit(args: &FitArgs, quiet: bool) -> Result<()> {
    let samples = Samples::load(&args.input)?;
    let theta = HyperFile::read_theta(&args.hyper)?;
    let summary = pipeline::fit_all(
        &args.input,
        &args.regions,
        &args.model,
        &samples,
        &theta,
        &args.chrom,
        None,
        &args.out,
        results_metadata(&args.model, &theta),
        None,
        quiet,
    )?;
    if !quiet {
        report(&summary, &args.out);
    }
    Ok(())
}
