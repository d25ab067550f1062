//! `methvb check`: a pre-flight report on the inputs of a run (the logic lives in
//! [`methvb_doctor`]; this prints its report). Exit code 0 with warnings, 1 when a problem would
//! stop a run or corrupt its results.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use methvb_doctor::{CheckOptions, check};
use methvb_io::sample::ReaderOptions;
use methvb_pipeline::config::InputConfig;

use crate::args::{BamFilterArgs, DesignArgs};

/// Arguments of `methvb check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Sample sheet (TSV or CSV with columns sample, group, path and optionally format).
    #[arg(long, value_name = "SHEET")]
    pub(crate) samples: PathBuf,
    /// Regions BED to compare with the samples' contigs.
    #[arg(long, value_name = "BED")]
    regions: Option<PathBuf>,
    /// Reference FASTA index (.fai) or sequence dictionary (.dict): contig set and order.
    #[arg(long, value_name = "FAI|DICT")]
    contigs: Option<PathBuf>,
    /// Reference genome FASTA (plain, gzip or BGZF; the file `run --fasta` takes): tells
    /// whether positions sit on CpGs or one base off (0- vs 1-based coordinates); streamed once.
    /// BAM/SAM samples take their CpG context from it, as in `run` (it then needs its .fai).
    #[arg(long, value_name = "FASTA")]
    fasta: Option<PathBuf>,
    /// Contigs to leave out (comma-separated), as `run --exclude-contigs` would.
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    exclude_contigs: Vec<String>,
    /// Reference group (default: the group of the first sample); an unknown group is an error.
    #[arg(long, value_name = "GROUP", alias = "reference")]
    reference_group: Option<String>,
    /// The design `run` would fit (as for `run`): a missing or constant column, a covariate
    /// confounded with the group, a pair of one sample or a missing value is an error.
    #[command(flatten)]
    pub(crate) design: DesignArgs,
    /// Modification code counted as methylated, in bedMethyl rows and BAM/SAM calls (as for
    /// `run`).
    #[arg(long, default_value = "m", value_name = "CODE")]
    mod_code: String,
    /// Count any modification as methylated (as for `run`).
    #[arg(long)]
    any_mod: bool,
    /// Keep the two strands of a CpG apart (as for `run`).
    #[arg(long, alias = "no-strand-merge")]
    no_combine_strands: bool,
    /// Samples with coverage needed in every group (as for `run`): a smaller group is an error.
    #[arg(long, default_value_t = 1, value_name = "N")]
    min_samples_per_group: usize,
    /// Groups the analysis needs (2 for a contrast): fewer is an error.
    #[arg(long, default_value_t = 1, value_name = "N")]
    min_groups: usize,
    /// Read only the first N lines of each sample file, records of a BAM/SAM (quick look at
    /// large files).
    #[arg(long, value_name = "N")]
    max_lines: Option<u64>,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    bam: BamFilterArgs,
}

/// The doctor's options for `args`: BAM samples are read as `run` reads them (the same
/// settings, the same options).
pub(crate) fn options(args: &CheckArgs) -> Result<CheckOptions> {
    let bam = InputConfig {
        mod_code: args.mod_code.clone(),
        any_mod: args.any_mod,
        no_combine_strands: args.no_combine_strands,
        fasta: args.fasta.clone().map(Into::into),
        bam: args.bam.config(),
        ..InputConfig::new(&args.samples)
    }
    .bam_options()?;
    Ok(CheckOptions {
        reader: ReaderOptions {
            mod_code: args.mod_code.clone(),
            any_mod: args.any_mod,
            merge_strands: !args.no_combine_strands,
            ..ReaderOptions::default()
        },
        bam,
        exclude_contigs: args
            .exclude_contigs
            .iter()
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect(),
        max_lines: args.max_lines,
        regions: args.regions.clone(),
        contigs: args.contigs.clone(),
        reference: args.reference_group.clone(),
        min_samples_per_group: args.min_samples_per_group,
        min_groups: args.min_groups,
        fasta: args.fasta.clone(),
    })
}

/// The design of `args` checked against the sheet (`None` when none is asked for).
fn design_check(
    args: &CheckArgs,
) -> std::result::Result<Option<methvb_pipeline::design::DesignRecord>, methvb_pipeline::Error> {
    let input = InputConfig {
        reference_group: args.reference_group.clone(),
        design: args.design.config(),
        ..InputConfig::new(&args.samples)
    };
    methvb_pipeline::design::check_sheet(&input)
}

/// Runs `methvb check`: prints the report to stdout, fails (exit code 1) on errors.
pub fn run(args: &CheckArgs, quiet: bool) -> Result<()> {
    let opts = options(args)?;
    let report = check(&args.samples, &opts);
    let design = design_check(args);
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        if let (Some(map), Ok(Some(record))) = (value.as_object_mut(), &design) {
            map.insert("design".into(), serde_json::to_value(record)?);
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else if !quiet {
        print!("{}", report.render());
        if let Ok(Some(record)) = &design {
            println!(
                "design: columns {}; delta is the {}",
                record.columns.join(", "),
                record.delta_at
            );
        }
    }
    let design_error = design.err().map(|e| format!("design: {e}"));
    let mut errors = report.error_messages();
    errors.extend(design_error.as_deref());
    if !errors.is_empty() {
        bail!(
            "check found {} problem{} that would stop or corrupt a run:\n  {}",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" },
            errors.join("\n  ")
        );
    }
    Ok(())
}
