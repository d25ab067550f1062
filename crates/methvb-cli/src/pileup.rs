//! `methvb pileup`: per-position modification counts from a BAM/SAM (MM/ML tags or Bismark XM)
//! as modkit-style 18-column bedMethyl.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use methvb_bam::bedmethyl::BedMethylWriter;
use methvb_bam::{
    BadModTags, BamOptions, CallSource, CpgFilter, FilterChoice, PileupOptions, pileup_file,
};

/// Where calls come from.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Source {
    /// MM/ML if a record has them, else Bismark XM.
    Auto,
    /// Only MM/ML (and legacy Mm/Ml).
    Mm,
    /// Only Bismark XM.
    Bismark,
}

/// Arguments of `methvb pileup`.
#[derive(Debug, Args)]
pub struct PileupArgs {
    /// Input BAM or SAM (coordinate-sorted BAMs are streamed with bounded memory; unsorted
    /// inputs, e.g. Bismark's paired output, are held in memory).
    #[arg(value_name = "BAM")]
    bam: PathBuf,
    /// Output bedMethyl (`.gz`/`.bgz`: BGZF-compressed); written to a temporary file and renamed.
    #[arg(long, short, value_name = "OUT.bed[.gz]")]
    out: PathBuf,
    /// Indexed reference FASTA (.fai) for CpG context (with --cpg).
    #[arg(long, value_name = "FA")]
    reference: Option<PathBuf>,
    /// Only CpG positions: from --reference if given, else from the read sequence.
    #[arg(long)]
    cpg: bool,
    /// Sum the + strand C and the − strand C of each CpG into one row at the + position.
    #[arg(long)]
    combine_strands: bool,
    /// Fixed pass threshold on the probability of the called state.
    #[arg(long, value_name = "X", conflicts_with = "no_filtering")]
    filter_threshold: Option<f32>,
    /// Count every call (no threshold).
    #[arg(long)]
    no_filtering: bool,
    /// Without --filter-threshold / --no-filtering: the threshold is this quantile of the
    /// called-state probabilities of the first --sample-reads records (modkit: 0.1).
    #[arg(long, default_value_t = 0.1)]
    filter_percentile: f64,
    /// Records used to estimate the threshold.
    #[arg(long, default_value_t = 10_042)]
    sample_reads: usize,
    /// Where calls come from.
    #[arg(long, value_enum, default_value_t = Source::Auto)]
    source: Source,
    /// One row per canonical base counting all modifications together (code `C`), like
    /// modkit --combine-mods.
    #[arg(long)]
    combine_mods: bool,
    /// Read legacy MM groups without a mode character (PacBio `C+m`) as explicit `?`: unlisted
    /// Cs are no-calls, not canonical (what `modkit update-tags --mode ambiguous` does).
    #[arg(long)]
    legacy_as_explicit: bool,
    /// Minimum mapping quality.
    #[arg(long, default_value_t = 0)]
    min_mapq: u8,
    /// Keep supplementary alignments.
    #[arg(long)]
    include_supplementary: bool,
    /// Keep duplicate-flagged records.
    #[arg(long)]
    include_duplicates: bool,
    /// Bismark paired-end: count read 2's calls where it overlaps read 1 (default: dropped,
    /// like bismark_methylation_extractor --no_overlap).
    #[arg(long)]
    include_overlap: bool,
    /// Bismark: minimum base quality of a call.
    #[arg(long, default_value_t = 0)]
    min_base_qual: u8,
    /// Single spaces between columns 10-18 (modkit's default layout) instead of tabs.
    #[arg(long)]
    mixed_delim: bool,
    /// With a .bai/.csi index and more than one thread: bases per region processed in
    /// parallel.
    #[arg(long, default_value_t = 1_000_000)]
    chunk_size: u64,
    /// One sequential pass even when an index is present.
    #[arg(long, conflicts_with = "region")]
    sequential: bool,
    /// Only this region: `CHROM`, `CHROM:START-END` (1-based, inclusive, as samtools) or
    /// `CHROM:START`. Needs a coordinate-sorted BAM with an index beside it (`x.bam.bai`,
    /// `x.bam.csi` or Picard's `x.bai`; `samtools index x.bam` makes one).
    #[arg(long, value_name = "CHROM[:START-END]")]
    region: Option<String>,
    /// Skip (and count) records whose MM/ML (or XM/XG) tags are malformed, as modkit does,
    /// instead of stopping with an error that names the record.
    #[arg(long)]
    skip_bad_mod_tags: bool,
}

/// Runs `methvb pileup`.
pub fn run(args: &PileupArgs, quiet: bool) -> Result<()> {
    if !(0.0..1.0).contains(&args.filter_percentile) {
        bail!("--filter-percentile must be in [0, 1)");
    }
    if args.reference.is_some() && !args.cpg {
        bail!("--reference is only used with --cpg");
    }
    let cpg = match (&args.reference, args.cpg) {
        (Some(fa), true) => CpgFilter::Reference(fa.clone()),
        (None, true) => CpgFilter::Read,
        _ => CpgFilter::Any,
    };
    let filter = if args.no_filtering {
        FilterChoice::NoFiltering
    } else if let Some(t) = args.filter_threshold {
        FilterChoice::Threshold(t)
    } else {
        FilterChoice::Estimate {
            reads: args.sample_reads,
            percentile: args.filter_percentile,
        }
    };
    let opts = BamOptions {
        pileup: PileupOptions {
            source: match args.source {
                Source::Auto => CallSource::Auto,
                Source::Mm => CallSource::ModTags,
                Source::Bismark => CallSource::Bismark,
            },
            cpg,
            combine_strands: args.combine_strands,
            combine_mods: args.combine_mods,
            legacy_as_explicit: args.legacy_as_explicit,
            min_mapq: args.min_mapq,
            include_supplementary: args.include_supplementary,
            include_duplicates: args.include_duplicates,
            no_overlap: !args.include_overlap,
            min_base_qual: args.min_base_qual,
            bad_mod_tags: if args.skip_bad_mod_tags {
                BadModTags::Skip
            } else {
                BadModTags::Error
            },
            require_calls: true,
            ..PileupOptions::default()
        },
        filter,
        ..BamOptions::default()
    };
    let filter_used = methvb_bam::resolve_filter(&args.bam, &opts)?;
    let opts = BamOptions {
        filter: match filter_used {
            methvb_bam::Filter::None => FilterChoice::NoFiltering,
            methvb_bam::Filter::Threshold(t) => FilterChoice::Threshold(t),
        },
        ..opts
    };
    let mut writer = BedMethylWriter::create(&args.out, args.mixed_delim)
        .with_context(|| format!("creating {}", args.out.display()))?;
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
        let threshold = match filter_used {
            methvb_bam::Filter::None => "none".to_string(),
            methvb_bam::Filter::Threshold(t) => format!("{t:.4}"),
        };
        eprintln!(
            "methvb pileup: {} records ({} with calls), {} calls, {} rows, threshold {threshold} -> {}",
            stats.records,
            stats.records_with_calls,
            stats.calls,
            stats.rows,
            args.out.display()
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
