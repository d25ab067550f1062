//! `methvb simulate`: a dataset with known truth, drawn from the model (or with the departures
//! real data show), written as bedMethyl files plus a sample sheet, regions and truth table.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use methvb_sim::{
    BatchParams, PairedParams, SimConfig, SimMode, WriteOptions, try_simulate, write_dataset,
};

/// Generation mode.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    /// Exactly the model's generative process.
    Model,
    /// The model plus partial effects, smooth trends, outlier sites and library-size differences.
    Realistic,
}

/// Arguments of `methvb simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Output directory (created if needed).
    #[arg(long, short, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Full simulation settings as JSON (the `sim.json` of an earlier run); the flags below
    /// override its fields.
    #[arg(long, value_name = "JSON")]
    config: Option<PathBuf>,
    /// Number of regions.
    #[arg(long)]
    regions: Option<usize>,
    /// Generation mode.
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// Fraction of regions that are differentially methylated.
    #[arg(long)]
    dmr_fraction: Option<f64>,
    /// Samples per group, comma-separated (e.g. 3,3).
    #[arg(long, value_delimiter = ',')]
    samples_per_group: Option<Vec<usize>>,
    /// Group names, comma-separated, reference first (e.g. control,treated).
    #[arg(long, value_delimiter = ',')]
    groups: Option<Vec<String>>,
    /// Mean reads per site and sample.
    #[arg(long)]
    mean_coverage: Option<f64>,
    /// Batch label of every sample, comma-separated, in sample order (each group's samples in
    /// turn, reference group first; e.g. A,A,A,B,A,B,B,B for 4 vs 4); the first label is the
    /// reference batch. Some regions get a batch effect in the other batches (realistic mode).
    #[arg(long, value_delimiter = ',', value_name = "LABELS")]
    batch: Option<Vec<String>>,
    /// Share of regions with a batch effect, chosen independently of DMR status (default
    /// 0.3; needs --batch).
    #[arg(long, value_name = "F")]
    batch_fraction: Option<f64>,
    /// Range of the absolute batch effect on the probability scale, LO,HI (default
    /// 0.15,0.35; needs --batch).
    #[arg(long, value_delimiter = ',', value_name = "LO,HI")]
    batch_effect: Option<Vec<f64>>,
    /// Paired samples: sample k of every group is donor_k, with one donor effect per region on
    /// the logit scale (realistic mode; equal group sizes).
    #[arg(long)]
    paired: bool,
    /// Standard deviation of the donor effect on the logit scale (default 0.5; needs
    /// --paired).
    #[arg(long, value_name = "SD")]
    donor_sd: Option<f64>,
    /// Write each CpG as a + strand record at p and a − strand record at p+1.
    #[arg(long)]
    split_strands: bool,
    /// Compress the bedMethyl files with BGZF (`<sample>.bed.gz`).
    #[arg(long)]
    bgzip: bool,
    /// Random seed.
    #[arg(long)]
    seed: Option<u64>,
}

/// The simulation settings and write options of `args`: `--config` (or the defaults), then
/// the flags over it.
pub(crate) fn settings(args: &SimulateArgs) -> Result<(SimConfig, WriteOptions)> {
    let mut cfg = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str::<SimConfig>(&text)
                .with_context(|| format!("parsing {}", path.display()))?
        }
        None => SimConfig::default(),
    };
    if let Some(n) = args.regions {
        cfg.n_regions = n;
    }
    if let Some(mode) = args.mode {
        cfg.mode = match mode {
            Mode::Model => SimMode::Model,
            Mode::Realistic => SimMode::Realistic,
        };
    }
    if let Some(f) = args.dmr_fraction {
        cfg.dmr_fraction = f;
    }
    if let Some(spg) = &args.samples_per_group {
        cfg.samples_per_group = spg.clone();
    }
    if let Some(groups) = &args.groups {
        cfg.group_names = groups.clone();
    }
    if cfg.group_names.len() != cfg.samples_per_group.len() {
        bail!(
            "{} group names but {} entries in --samples-per-group",
            cfg.group_names.len(),
            cfg.samples_per_group.len()
        );
    }
    if let Some(c) = args.mean_coverage {
        cfg.mean_coverage = c;
    }
    if let Some(seed) = args.seed {
        cfg.seed = seed;
    }
    design(args, &mut cfg)?;
    if args.config.is_none() {
        lengthen_contigs_to_fit(&mut cfg);
    }
    let opts = WriteOptions {
        split_strands: args.split_strands,
        split_seed: cfg.seed,
        bgzip: args.bgzip,
    };
    Ok((cfg, opts))
}

/// The batch and paired designs of `args` over those of `cfg` (from `--config`): a flag that
/// tunes a design needs the design, from its flag or the config.
fn design(args: &SimulateArgs, cfg: &mut SimConfig) -> Result<()> {
    let r = &mut cfg.realistic;
    if let Some(labels) = &args.batch {
        match &mut r.batch {
            Some(batch) => batch.labels = labels.clone(),
            None => r.batch = Some(BatchParams::new(labels.clone())),
        }
    }
    if let Some(fraction) = args.batch_fraction {
        let Some(batch) = &mut r.batch else {
            bail!("--batch-fraction needs --batch (one batch label per sample)");
        };
        batch.fraction = fraction;
    }
    if let Some(effect) = &args.batch_effect {
        let Some(batch) = &mut r.batch else {
            bail!("--batch-effect needs --batch (one batch label per sample)");
        };
        let &[lo, hi] = effect.as_slice() else {
            bail!(
                "--batch-effect takes two numbers, LO,HI (e.g. 0.15,0.35), not {}",
                effect.len()
            );
        };
        batch.effect = (lo, hi);
    }
    if args.paired && r.paired.is_none() {
        r.paired = Some(PairedParams::default());
    }
    if let Some(sd) = args.donor_sd {
        let Some(paired) = &mut r.paired else {
            bail!("--donor-sd needs --paired");
        };
        paired.donor_sd = sd;
    }
    Ok(())
}

/// Runs `methvb simulate`.
pub fn run(args: &SimulateArgs, quiet: bool) -> Result<()> {
    let (cfg, opts) = settings(args)?;
    let data = try_simulate(&cfg)?;
    let written = write_dataset(&data, &args.out, &opts)?;
    if !quiet {
        let dmrs = data.regions.iter().filter(|r| r.is_dmr).count();
        let batch = data.regions.iter().filter(|r| r.has_batch_effect).count();
        let batch = if data.batch_levels.is_empty() {
            String::new()
        } else {
            format!(", {batch} with a batch effect")
        };
        eprintln!(
            "methvb simulate: {} regions ({dmrs} DMRs{batch}), {} samples -> {} (sheet {})",
            data.regions.len(),
            data.samples.len(),
            written.dir.display(),
            written.sample_sheet.display()
        );
    }
    Ok(())
}

/// Makes each default contig long enough for its share of the regions at their largest extent
/// (most sites × widest CpG spacing + widest gap), so `--regions` can grow without a config
/// file. The layout does not depend on the contig lengths, only its validity does.
fn lengthen_contigs_to_fit(cfg: &mut SimConfig) {
    let contigs = cfg.contigs.len().max(1);
    let widest_region = cfg.sites_per_region.1 as u64 * cfg.cpg_spacing.1 + cfg.region_gap.1 + 2;
    let needed = cfg.n_regions.div_ceil(contigs) as u64 * widest_region + 1_000;
    for (_, length) in &mut cfg.contigs {
        *length = (*length).max(needed);
    }
}
