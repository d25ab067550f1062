//! `methvb run` (pass 1 + pass 2 into an output directory, one shard per contig gathered into
//! `regions.parquet`; `--resume` reuses the valid work of an interrupted run), `methvb hyper`
//! (pass 1 only) and `methvb fit` (pass 2 with a given Theta, optionally on some chromosomes: one
//! shard of a workflow). With the same Theta and seed, the rows of `fit` shards equal those of
//! `run`.

use std::collections::HashMap;
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
use crate::pipeline::{
    self, ContigRegions, FitSummary, HyperArgs, ModelArgs, PassSummary, RegionArgs, Samples,
    ShardPlan,
};
use crate::run_folder;
use crate::shards::{self, Rejected};

/// Version of the statistical model written to the outputs (bump when results change meaning).
pub const MODEL_VERSION: &str = "2";

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
    /// Output directory: regions.parquet, hyper.json, run.json (and shards/ while running). The
    /// outputs of an earlier run there are removed before this run writes its own.
    #[arg(long, short, value_name = "DIR")]
    out: PathBuf,
    /// Continue an interrupted run into the same --out: reuse DIR/hyper.json if it was learned
    /// from the same inputs and settings (else learn Theta again), and every complete shard in
    /// DIR/shards/ whose inputs, settings and Theta match this run's and whose rows check out;
    /// fit only the other contigs. The result equals that of an uninterrupted run. Without
    /// --resume a run starts afresh and removes old shards.
    #[arg(long)]
    resume: bool,
    /// Keep DIR/shards/ (one Parquet file per contig, as `methvb fit --chrom` writes) after a
    /// successful run; by default it is removed once regions.parquet is written.
    #[arg(long)]
    keep_shards: bool,
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
    /// Regions per contig seen in pass 1, in stream order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions_per_contig: Vec<ContigRegions>,
    /// The counts of pass 1 (as in run.json), so that a resumed run can report them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass1: Option<serde_json::Value>,
    /// The input options (paths absolute) and each BAM sample's call threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_options: Option<serde_json::Value>,
    /// `methvb run` only: the inputs and settings Theta was learned from; `run --resume` reuses
    /// this file only when they equal its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_key: Option<serde_json::Value>,
}

impl HyperFile {
    fn new(
        fit: &HyperFit,
        seed: u64,
        sampled: usize,
        pass1: &PassSummary,
        per_contig: Vec<ContigRegions>,
    ) -> Self {
        Self {
            theta: fit.theta.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            seed,
            regions_sampled: sampled as u64,
            regions_seen: pass1.regions_used,
            epochs: fit.epochs,
            converged: fit.converged,
            history: fit.history.clone(),
            regions_per_contig: per_contig,
            pass1: serde_json::to_value(pass1).ok(),
            input_options: None,
            resume_key: None,
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
#[derive(Debug, Clone, Serialize)]
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
    /// The run id, also in the metadata of the run's Parquet files ([`run_folder`]).
    run_id: &'a str,
    /// The files of the folder this run wrote (or, for a reused hyper.json, took over).
    files: Vec<&'static str>,
    command: String,
    seed: u64,
    sample_sheet: &'a Path,
    inputs: Vec<InputFile>,
    /// The input options (paths absolute; BAM filters) and each BAM sample's call threshold.
    input_options: &'a serde_json::Value,
    /// How sites were grouped into regions and filtered.
    region_options: &'a RegionArgs,
    groups: &'a [String],
    theta: Theta,
    fit_options: methvb_model::FitOptions,
    fdr: f64,
    pass1: Option<serde_json::Value>,
    pass2: &'a FitSummary,
    /// What `--resume` reused.
    resume: &'a ResumeReport,
    /// Pooled agreement of VB with NUTS on the audited regions (absent when off).
    mcmc_check: Option<methvb_mcmc::AuditSummary>,
    seconds_total: f64,
}

/// Key-value metadata of a results Parquet file of run `run_id` (`inputs`:
/// [`InputArgs::provenance`]).
fn results_metadata(
    model: &ModelArgs,
    theta: &Theta,
    samples: &Samples,
    inputs: &serde_json::Value,
    regions: &RegionArgs,
    run_id: &str,
) -> Vec<(String, String)> {
    vec![
        ("methvb.version".into(), env!("CARGO_PKG_VERSION").into()),
        (run_folder::RUN_ID_KEY.into(), run_id.into()),
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
        (
            "methvb.fit_options".into(),
            serde_json::to_string(&model.fit_options(samples.model_reference()))
                .unwrap_or_default(),
        ),
        ("methvb.input_options".into(), inputs.to_string()),
        (
            "methvb.region_options".into(),
            serde_json::to_string(regions).unwrap_or_default(),
        ),
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
    methvb_io::atomic::write_atomic(path, (text + "\n").as_bytes())?;
    Ok(())
}

/// What `run --resume` reused (in run.json).
#[derive(Debug, Default, Serialize)]
struct ResumeReport {
    /// `--resume` was given.
    requested: bool,
    /// hyper.json of the earlier run was reused (pass 1 skipped).
    hyper_reused: bool,
    /// Contigs whose shards were reused, in genomic order.
    contigs_reused: Vec<String>,
    /// Regions in the reused shards.
    regions_reused: u64,
    /// Contigs fitted in this run.
    contigs_fitted: Vec<String>,
    /// Shards found but not reused, and why.
    shards_rejected: Vec<Rejected>,
    /// DIR/shards/ was kept (`--keep-shards`).
    shards_kept: bool,
}

/// SHA-256 (hex) of a file named by an option, or null without the option.
fn file_digest(path: Option<&PathBuf>) -> Result<serde_json::Value> {
    Ok(match path {
        Some(p) => serde_json::Value::String(sha256_file(p)?.1),
        None => serde_json::Value::Null,
    })
}

/// What the regions of a run depend on besides the input files: the input and region options
/// (files named by options by their SHA-256).
fn options_key(
    input: &crate::inputs::InputArgs,
    regions: &RegionArgs,
) -> Result<serde_json::Value> {
    Ok(serde_json::json!({
        "reference_group": input.reference_group,
        "contigs": file_digest(input.contigs.as_ref())?,
        "mod_code": input.mod_code,
        "any_mod": input.any_mod,
        "no_strand_merge": input.no_combine_strands,
        "exclude_contigs": input.exclude_contigs,
        "fasta": file_digest(input.fasta.as_ref())?,
        "bam": serde_json::to_value(&input.bam)?,
        "regions": file_digest(regions.regions.as_ref())?,
        "tile": regions.tile,
        "step": regions.step,
        "max_gap": regions.max_gap,
        "cluster_min_sites": regions.cluster_min_sites,
        "min_cov": regions.min_cov,
        "min_samples_per_group": regions.min_samples_per_group,
        "min_sites": regions.min_sites,
    }))
}

/// The part of the resume keys shared by hyper.json and the shards.
fn base_key(
    input: &InputArgs,
    regions: &RegionArgs,
    model: &ModelArgs,
    samples: &Samples,
    inputs: &[InputFile],
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let inputs: Vec<serde_json::Value> = samples
        .sheet
        .samples
        .iter()
        .zip(inputs)
        .map(|(entry, file)| {
            serde_json::json!({
                "sample": file.sample,
                "group": file.group,
                "format": entry.format.map(|f| format!("{f:?}")),
                "bytes": file.bytes,
                "sha256": file.sha256,
            })
        })
        .collect();
    let value = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "model_version": MODEL_VERSION,
        "seed": model.seed,
        "family": model.family().name(),
        "groups": samples.groups,
        "inputs": inputs,
        "options": options_key(input, regions)?,
    });
    match value {
        serde_json::Value::Object(map) => Ok(map),
        _ => anyhow::bail!("resume key is not a JSON object"),
    }
}

/// Everything the rows of a results table depend on but the contigs fitted and the FDR target
/// (which `gather` applies anew): the base key, Theta and the fit options. Its digest is the
/// run id.
fn rows_key(
    mut base: serde_json::Map<String, serde_json::Value>,
    model: &ModelArgs,
    theta: &Theta,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    base.insert("theta".into(), serde_json::to_value(theta)?);
    base.insert("delta0".into(), serde_json::json!(model.delta0));
    base.insert("draws".into(), serde_json::json!(model.draws));
    base.insert("max_refit".into(), serde_json::json!(model.max_refit));
    Ok(base)
}

/// hyper.json of an earlier run into `path`, if it was learned with `key`; says why not
/// otherwise (unless `quiet`).
fn reusable_hyper(path: &Path, key: &serde_json::Value, quiet: bool) -> Option<HyperFile> {
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
                shards::differing_keys(found, key).join(", ")
            ),
            None => "it does not record the inputs and settings it was learned from".into(),
        },
        Err(e) => format!("unreadable ({e})"),
    };
    if !quiet {
        eprintln!(
            "methvb: --resume: not reusing {}: {why}; learning Theta again",
            path.display()
        );
    }
    None
}

/// SHA-256 of every input of the sheet (in parallel), in sheet order.
fn input_files(samples: &Samples) -> Result<Vec<InputFile>> {
    use rayon::prelude::*;
    samples
        .sheet
        .samples
        .par_iter()
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
        .collect()
}

/// "1 contig", "2 contigs".
fn contigs_count(n: usize) -> String {
    format!("{n} contig{}", if n == 1 { "" } else { "s" })
}

/// Runs `methvb run`.
pub fn run(args: &RunArgs, quiet: bool) -> Result<()> {
    let started = Instant::now();
    let samples = Samples::load(&args.input, &args.regions)?;
    let inputs = input_files(&samples)?;
    let provenance = args.input.provenance(&samples.sheet)?;
    let base = base_key(&args.input, &args.regions, &args.model, &samples, &inputs)?;
    let hyper_path = args.out.join("hyper.json");
    // The output folder is made only once the inputs have streamed through pass 1, so an input
    // error leaves nothing behind; the outputs of an earlier run there go before this run
    // writes any of its own, so that none of them can pass for this run's. `keep` is a
    // hyper.json that this run takes over.
    let create_out = |keep: &[&str]| -> Result<()> {
        std::fs::create_dir_all(&args.out)
            .with_context(|| format!("creating {}", args.out.display()))?;
        let removed = run_folder::clear_earlier_outputs(&args.out, keep)?;
        if !quiet && !removed.is_empty() {
            eprintln!(
                "methvb: removed the outputs of an earlier run from {}: {}",
                args.out.display(),
                removed.join(", ")
            );
        }
        Ok(())
    };
    let mut resume = ResumeReport {
        requested: args.resume,
        shards_kept: args.keep_shards,
        ..ResumeReport::default()
    };
    let (theta, pass1, per_contig, seen) = match &args.hyper_json {
        Some(path) => {
            let theta = HyperFile::read_theta(path)?;
            // `--hyper-json OUT/hyper.json` names this run's Theta: it stays.
            let given_here = same_file(path, &hyper_path);
            create_out(if given_here { &["hyper.json"] } else { &[] })?;
            (theta, None, None, None)
        }
        None => {
            let mut key = base.clone();
            // Every pass-1 option (`--hyper-regions`, ...), whatever options are added later.
            key.insert(
                "hyper_options".into(),
                serde_json::json!(format!("{:?}", args.hyper)),
            );
            let key = serde_json::Value::Object(key);
            let reused = if args.resume {
                reusable_hyper(&hyper_path, &key, quiet)
            } else {
                None
            };
            let file = match reused {
                Some(file) => {
                    resume.hyper_reused = true;
                    create_out(&["hyper.json"])?;
                    file
                }
                None => {
                    let (mut file, _) = learn_hyper_file(
                        &args.input,
                        &args.regions,
                        &args.model,
                        &args.hyper,
                        &samples,
                        quiet,
                    )?;
                    file.resume_key = Some(key);
                    file.input_options = Some(provenance.clone());
                    create_out(&[])?;
                    write_json_atomic(&hyper_path, &file)?;
                    file
                }
            };
            let per_contig: HashMap<String, u64> = file
                .regions_per_contig
                .iter()
                .map(|c| (c.contig.clone(), c.regions))
                .collect();
            (
                file.theta,
                file.pass1,
                Some(per_contig),
                Some(file.regions_seen),
            )
        }
    };
    pipeline::remove_stale_temporaries(&args.out, |name| {
        [
            "regions.parquet",
            "mcmc_check.parquet",
            "hyper.json",
            "run.json",
        ]
        .contains(&name)
    });

    // Pass 2: one shard per contig under OUT/shards, reusing valid ones with --resume.
    let shard_dir = args.out.join(shards::SHARDS_DIR);
    let layout = crate::results::ResultsLayout::new(&samples.groups, &samples.names);
    let mut shard_key = rows_key(base, &args.model, &theta)?;
    let run_id = run_folder::run_id(&serde_json::Value::Object(shard_key.clone()));
    let metadata = || {
        results_metadata(
            &args.model,
            &theta,
            &samples,
            &provenance,
            &args.regions,
            &run_id,
        )
    };
    shard_key.insert("fdr".into(), serde_json::json!(args.model.fdr));
    let shard_key = serde_json::Value::Object(shard_key);
    let reuse = if args.resume {
        pipeline::remove_stale_temporaries(&shard_dir, |name| name.ends_with(".parquet"));
        let (reuse, rejected) = shards::find_reusable(
            &shard_dir,
            &shard_key,
            &layout.called_schema(),
            per_contig.as_ref(),
        )?;
        if !quiet {
            for r in &rejected {
                eprintln!(
                    "methvb: --resume: not reusing {}: {}",
                    r.file.display(),
                    r.reason
                );
            }
        }
        resume.shards_rejected = rejected;
        reuse
    } else {
        shards::remove_all(&shard_dir)?;
        HashMap::new()
    };
    if args.resume && !quiet {
        let mut contigs: Vec<&String> = reuse.keys().collect();
        contigs.sort();
        eprintln!(
            "methvb: --resume: {} hyper.json; reusing the shards of {}{}",
            if resume.hyper_reused {
                "reusing"
            } else {
                "not reusing"
            },
            contigs_count(contigs.len()),
            if contigs.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    contigs
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
    }
    std::fs::create_dir_all(&shard_dir)
        .with_context(|| format!("creating {}", shard_dir.display()))?;
    let mut shard_metadata = metadata();
    shard_metadata.push((shards::RESUME_KEY.into(), shard_key.to_string()));
    let plan = ShardPlan {
        dir: &shard_dir,
        metadata: shard_metadata,
        reuse,
    };
    let mut picker = AuditPicker::new(&args.audit, args.model.seed);
    let sharded = pipeline::fit_shards(
        &args.input,
        &args.regions,
        &args.model,
        &samples,
        &theta,
        &plan,
        seen,
        &mut picker,
        quiet,
    )?;
    for shard in &sharded.shards {
        if shard.reused {
            resume.contigs_reused.push(shard.contig.clone());
            resume.regions_reused += shard.rows;
        } else {
            resume.contigs_fitted.push(shard.contig.clone());
        }
    }
    if args.hyper_json.is_some() {
        // Without pass 1, pass 2 is the one that read the inputs.
        sharded.pass.print_warnings(quiet);
    }
    let out = args.out.join("regions.parquet");
    let paths: Vec<PathBuf> = sharded.shards.iter().map(|s| s.path.clone()).collect();
    let gathered = crate::gather::gather(&paths, args.model.fdr, &out, Some(metadata()))?;
    if gathered.rows != sharded.pass.regions_used {
        anyhow::bail!(
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
    let mcmc = audit::run_audit(
        picker,
        &samples,
        &theta,
        args.model.seed,
        args.model.delta0,
        &args.out.join("mcmc_check.parquet"),
        metadata(),
    )?;
    let mut files = vec!["regions.parquet"];
    if args.hyper_json.is_none() || hyper_path.is_file() {
        files.push("hyper.json");
    }
    if mcmc.is_some() {
        files.push("mcmc_check.parquet");
    }
    let run_file = RunFile {
        version: env!("CARGO_PKG_VERSION"),
        model_version: MODEL_VERSION,
        run_id: &run_id,
        files,
        command: crate::command_line(),
        seed: args.model.seed,
        sample_sheet: samples.sheet.path(),
        inputs,
        input_options: &provenance,
        region_options: &args.regions,
        groups: &samples.groups,
        theta,
        fit_options: args.model.fit_options(samples.model_reference()),
        fdr: args.model.fdr,
        pass1,
        pass2: &summary,
        resume: &resume,
        mcmc_check: mcmc.clone(),
        seconds_total: started.elapsed().as_secs_f64(),
    };
    write_json_atomic(&args.out.join("run.json"), &run_file)?;
    if !args.keep_shards {
        shards::remove_all(&shard_dir)?;
    }
    if !quiet {
        if args.resume {
            eprintln!(
                "methvb: --resume: reused {} regions on {} ({}), fitted {}",
                resume.regions_reused,
                contigs_count(resume.contigs_reused.len()),
                resume.contigs_reused.join(", "),
                contigs_count(resume.contigs_fitted.len())
            );
        }
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
        "methvb: {} regions fitted in {:.1} s ({} called, {} unreliable, {} not converged) -> {}",
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
    let (fit, pass1, per_contig) =
        pipeline::learn_hyper(input, regions, model, hyper, samples, quiet)?;
    let sampled = hyper.hyper_regions.min(pass1.regions_used as usize);
    Ok((
        HyperFile::new(&fit, model.seed, sampled, &pass1, per_contig),
        pass1,
    ))
}

/// Whether `a` and `b` name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Runs `methvb hyper`.
pub fn hyper(args: &HyperCmdArgs, quiet: bool) -> Result<()> {
    let samples = Samples::load(&args.input, &args.regions)?;
    let (mut file, pass1) = learn_hyper_file(
        &args.input,
        &args.regions,
        &args.model,
        &args.hyper,
        &samples,
        quiet,
    )?;
    file.input_options = Some(args.input.provenance(&samples.sheet)?);
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
    let samples = Samples::load(&args.input, &args.regions)?;
    let theta = HyperFile::read_theta(&args.hyper)?;
    let provenance = args.input.provenance(&samples.sheet)?;
    // The run id of the whole workflow: every shard of it has the same, whatever its contigs.
    let inputs = input_files(&samples)?;
    let base = base_key(&args.input, &args.regions, &args.model, &samples, &inputs)?;
    let run_id = run_folder::run_id(&serde_json::Value::Object(rows_key(
        base,
        &args.model,
        &theta,
    )?));
    let summary = pipeline::fit_all(
        &args.input,
        &args.regions,
        &args.model,
        &samples,
        &theta,
        &args.chrom,
        None,
        &args.out,
        results_metadata(
            &args.model,
            &theta,
            &samples,
            &provenance,
            &args.regions,
            &run_id,
        ),
        quiet,
    )?;
    if !quiet {
        report(&summary, &args.out);
    }
    Ok(())
}
