//! `methvb pileup`: per-position modification counts from a BAM/SAM (MM/ML tags or Bismark XM)
//! as modkit-style 18-column bedMethyl.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use methvb_bam::bedmethyl::BedMethylWriter;
use methvb_bam::{BamOptions, CpgFilter, PileupOptions, pileup_file};

use methvb_pipeline::inputs::resolve_bam_filter;

use crate::args::BamFilterArgs;

/// Arguments of `methvb pileup`.
#[derive(Debug, Args)]
pub struct PileupArgs {
    /// Input BAM or SAM (coordinate-sorted BAMs are streamed with bounded memory; unsorted
    /// inputs, e.g. Bismark's paired output, are held in memory).
    #[arg(value_name = "BAM")]
    pub(crate) bam: PathBuf,
    /// Output bedMethyl (`.gz`/`.bgz`: BGZF-compressed), written to a temporary file and
    /// renamed; `-` writes plain text to standard output.
    #[arg(long, short, value_name = "OUT.bed[.gz]|-")]
    pub(crate) out: PathBuf,
    /// Reference genome FASTA, indexed (.fai beside it), for CpG context (with --cpg).
    #[arg(long, value_name = "FASTA", alias = "reference")]
    fasta: Option<PathBuf>,
    /// Only CpG positions: from --fasta if given, else from the read sequence.
    #[arg(long)]
    cpg: bool,
    /// Sum the + strand C and the − strand C of each CpG into one row at the + position (what
    /// a sheet's BAM samples do unless --no-combine-strands).
    #[arg(long)]
    combine_strands: bool,
    #[command(flatten)]
    filters: BamFilterArgs,
    /// Single spaces between columns 10-18 (modkit's default layout) instead of tabs.
    #[arg(long)]
    pub(crate) mixed_delim: bool,
    /// With a .bai/.csi index and more than one thread: bases per region processed in
    /// parallel.
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) chunk_size: u64,
    /// One sequential pass even when an index is present.
    #[arg(long, conflicts_with = "region")]
    pub(crate) sequential: bool,
    /// Only this region: `CHROM`, `CHROM:START-END` (1-based, inclusive, as samtools) or
    /// `CHROM:START`. Needs a coordinate-sorted BAM with an index beside it (`x.bam.bai`,
    /// `x.bam.csi` or Picard's `x.bai`; `samtools index x.bam` makes one).
    #[arg(long, value_name = "CHROM[:START-END]")]
    pub(crate) region: Option<String>,
}

/// The pileup's options for `args` (before the call filter is resolved on the BAM).
pub(crate) fn options(args: &PileupArgs) -> Result<BamOptions> {
    if args.fasta.is_some() && !args.cpg {
        bail!("--fasta is only used with --cpg");
    }
    let cpg = match (&args.fasta, args.cpg) {
        (Some(fa), true) => CpgFilter::Reference(fa.clone()),
        (None, true) => CpgFilter::Read,
        _ => CpgFilter::Any,
    };
    let mut opts = BamOptions {
        pileup: PileupOptions {
            cpg,
            combine_strands: args.combine_strands,
            ..PileupOptions::default()
        },
        ..BamOptions::default()
    };
    args.filters.config().apply(&mut opts)?;
    Ok(opts)
}

/// Runs `methvb pileup`.
pub fn run(args: &PileupArgs, quiet: bool) -> Result<()> {
    let opts = options(args)?;
    let (opts, threshold) = resolve_bam_filter(&args.bam, &opts)?;
    let to_stdout = args.out.as_os_str() == "-";
    let mut writer = if to_stdout {
        BedMethylWriter::stdout(args.mixed_delim)
    } else {
        BedMethylWriter::create(&args.out, args.mixed_delim)
            .with_context(|| format!("creating {}", args.out.display()))?
    };
    let parallel =
        !args.sequential && rayon::current_num_threads() > 1 && methvb_bam::has_index(&args.bam);
    let stats = if let Some(region) = &args.region {
        methvb_bam::pileup_region(&args.bam, &opts, region, args.chunk_size, |row, contig| {
            writer.write(row, contig)
        })?
    } else if parallel {
        methvb_bam::pileup_file_indexed(&args.bam, &opts, args.chunk_size, |row, contig| {
            writer.write(row, contig)
        })?
    } else {
        pileup_file(&args.bam, &opts, |row, contig| writer.write(row, contig))?
    };
    writer
        .finish()
        .with_context(|| format!("writing {}", args.out.display()))?;
    if !quiet {
        let threshold = match threshold {
            None => "none".to_string(),
            Some(t) => format!("{t:.4}"),
        };
        eprintln!(
            "methvb pileup: {} records ({} with calls), {} calls, {} rows, threshold {threshold} -> {}",
            stats.records,
            stats.records_with_calls,
            stats.calls,
            stats.rows,
            if to_stdout {
                "standard output".to_string()
            } else {
                args.out.display().to_string()
            }
        );
        if stats.skipped.total() > 0 {
            eprintln!(
                "methvb pileup: skipped records: {}",
                stats.skipped.summary()
            );
        }
    }
    Ok(())
}
