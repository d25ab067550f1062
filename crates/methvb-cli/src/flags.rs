//! One test case per flag of every `methvb` command, and of the global flags: the flag parsed
//! from a command line lands where it belongs, in the library's configuration that the command
//! builds or, where a command has none, in its arguments. A flag shared by several commands (one
//! clap struct flattened into each) is checked through every command that has it.
//!
//! [`every_flag_has_a_case`] fails when a flag is added anywhere without a case here, and
//! [`every_case_is_a_flag`] when a case names a flag that a command of its section lacks.
//! [`bad_values_are_refused`] holds the values the parsers refuse, and
//! [`defaults_are_the_library_defaults`] what no flag gives.
//!
//! Sections, in [`SECTIONS`] order: the global flags; the flags shared by several commands
//! (input, BAM/SAM filters, regions and model, pass 1); each command's own flags.

use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser};
use methvb_bam::{BadModTags, BamOptions, CallSource, CpgFilter, FilterChoice, ModCode};
use methvb_doctor::CheckOptions;
use methvb_io::sample::ReaderOptions;
use methvb_model::Family;
use methvb_pipeline::commands::{Analysis, FitJob, HyperJob, RunConfig};
use methvb_pipeline::config::{
    self, BamFilterConfig, FileRef, HyperConfig, InputConfig, RegionConfig,
};
use methvb_pipeline::dmr::{DEFAULT_HYPER_REGIONS, DmrJob, ScanConfig};
use methvb_report::ReportOptions;
use methvb_sim::{BatchParams, PairedParams, SimConfig, SimMode, WriteOptions};

use crate::check::CheckArgs;
use crate::dmr::DmrArgs;
use crate::export::ExportArgs;
use crate::gather::GatherArgs;
use crate::pileup::PileupArgs;
use crate::report::ReportArgs;
use crate::run::{FitArgs, HyperCmdArgs, RunArgs};
use crate::simulate::SimulateArgs;
use crate::sites::SitesArgs;
use crate::{Cli, Command};

// ---------------------------------------------------------------------------------------------
// Parsing: each command's line with its required arguments, and what the command builds of it.

/// The arguments `methvb <command>` needs, which every case's line starts with.
fn required(command: &str) -> &'static [&'static str] {
    match command {
        "run" | "hyper" | "sites" | "dmr" => &["--samples", "s.tsv", "--out", "o"],
        "fit" => &["--samples", "s.tsv", "--hyper", "h.json", "--out", "o"],
        "gather" => &["a.parquet", "--out", "g.parquet"],
        "pileup" => &["x.bam", "--out", "p.bed"],
        "export" | "report" => &["d"],
        "simulate" => &["--out", "sim"],
        "check" => &["--samples", "s.tsv"],
        other => panic!("no command {other}"),
    }
}

/// `methvb <command> <required arguments> <extra>`.
fn line<'a>(command: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut line = vec!["methvb", command];
    line.extend(required(command));
    line.extend(extra);
    line
}

/// The parsed line of `command` with `extra`.
fn cli(command: &str, extra: &[&str]) -> Cli {
    let line = line(command, extra);
    Cli::try_parse_from(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

/// `fn $name(extra) -> $args`: the arguments of `methvb <command> <required> <extra>`.
macro_rules! args_of {
    ($name:ident, $command:literal, $variant:ident, $args:ty) => {
        fn $name(extra: &[&str]) -> $args {
            match cli($command, extra).command {
                Command::$variant(args) => args,
                other => panic!("not {}: {other:?}", $command),
            }
        }
    };
}

args_of!(run_args, "run", Run, RunArgs);
args_of!(hyper_args, "hyper", Hyper, HyperCmdArgs);
args_of!(fit_args, "fit", Fit, FitArgs);
args_of!(sites, "sites", Sites, SitesArgs);
args_of!(gather, "gather", Gather, GatherArgs);
args_of!(pileup, "pileup", Pileup, PileupArgs);
args_of!(export, "export", Export, ExportArgs);
args_of!(report, "report", Report, ReportArgs);
args_of!(simulate, "simulate", Simulate, SimulateArgs);
args_of!(check, "check", Check, CheckArgs);
args_of!(dmr_args, "dmr", Dmr, DmrArgs);

fn run(extra: &[&str]) -> RunConfig {
    run_args(extra).config()
}

fn hyper(extra: &[&str]) -> HyperJob {
    hyper_args(extra).config()
}

fn fit(extra: &[&str]) -> FitJob {
    fit_args(extra).config()
}

fn dmr(extra: &[&str]) -> DmrJob {
    dmr_args(extra).config()
}

/// `pileup`'s BAM options (before its call filter is resolved on the file).
fn pileup_options(extra: &[&str]) -> BamOptions {
    crate::pileup::options(&pileup(extra)).expect("pileup options")
}

/// `report`'s options (without per-CpG data, which come from the run's inputs).
fn report_options(extra: &[&str]) -> ReportOptions {
    crate::report::options(&report(extra), None)
}

/// `simulate`'s settings and write options.
fn sim(extra: &[&str]) -> (SimConfig, WriteOptions) {
    crate::simulate::settings(&simulate(extra)).expect("simulate settings")
}

/// The options `check` hands the doctor.
fn check_options(extra: &[&str]) -> CheckOptions {
    crate::check::options(&check(extra)).expect("check options")
}

/// The error of a function that turns arguments into options, as text.
fn refused<T: std::fmt::Debug>(result: anyhow::Result<T>) -> String {
    format!("{:#}", result.expect_err("refused"))
}

/// Both placements of a global flag: before the subcommand and after it.
fn global(extra: &[&str]) -> [Cli; 2] {
    let mut before = vec!["methvb"];
    before.extend(extra);
    before.extend(["gather", "a.parquet", "--out", "g.parquet"]);
    [
        Cli::try_parse_from(&before).unwrap_or_else(|e| panic!("{before:?}: {e}")),
        cli("gather", extra),
    ]
}

/// The settings `run`, `hyper` and `fit` share, the same from each.
fn analysis(extra: &[&str]) -> Analysis {
    let analysis = run(extra).analysis;
    assert_eq!(hyper(extra).analysis, analysis, "hyper {extra:?}");
    assert_eq!(fit(extra).analysis, analysis, "fit {extra:?}");
    analysis
}

/// The settings `run`, `hyper`, `fit` and `dmr` share, the same from each (`dmr` has no
/// `--min-sites`: its clusters' is `--cluster-min-sites`).
fn shared(extra: &[&str]) -> Analysis {
    let analysis = analysis(extra);
    let mut from_dmr = dmr(extra).analysis;
    assert_eq!(
        from_dmr.regions.min_sites, from_dmr.regions.cluster_min_sites,
        "dmr {extra:?}"
    );
    from_dmr.regions.min_sites = analysis.regions.min_sites;
    assert_eq!(from_dmr, analysis, "dmr {extra:?}");
    analysis
}

/// The input settings of `run`, `hyper`, `fit`, `dmr` and `sites`, the same from each.
fn input(extra: &[&str]) -> InputConfig {
    let input = shared(extra).input;
    assert_eq!(sites(extra).input.config(), input, "sites {extra:?}");
    input
}

/// The BAM/SAM filter settings of a sheet's samples (`run`, `hyper`, `fit`, `sites`).
fn bam(extra: &[&str]) -> BamFilterConfig {
    input(extra).bam
}

/// The BAM options of every command that reads BAM/SAM: a sheet's samples, `pileup`, `check`.
fn bam_options(extra: &[&str]) -> [BamOptions; 3] {
    [
        input(extra).bam_options().expect("sheet BAM options"),
        pileup_options(extra),
        check_options(extra).bam,
    ]
}

/// Pass-1 settings of `run` and `hyper`, the same from each.
fn pass1(extra: &[&str]) -> HyperConfig {
    let hyper_config = run(extra).hyper;
    assert_eq!(hyper(extra).hyper, hyper_config, "hyper {extra:?}");
    hyper_config
}

fn file(path: &str) -> Option<FileRef> {
    Some(PathBuf::from(path).into())
}

fn path(p: &str) -> Option<PathBuf> {
    Some(p.into())
}

/// A bundled simulation config (`methvb simulate --config`).
const SIM_JSON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../test-data/sim.json");

// ---------------------------------------------------------------------------------------------
// The cases.

/// A flag (`<id>` for a positional argument), the arguments that set it, and the check of what
/// they set.
type Case = (&'static str, &'static [&'static str], fn(&[&str]));

/// The commands a section's flags belong to (`methvb`: the global flags), and its cases.
type Section = (&'static [&'static str], &'static [Case]);

const SECTIONS: &[Section] = &[
    (&["methvb"], GLOBAL),
    (&["run", "hyper", "fit", "dmr", "sites"], INPUT),
    (
        &["run", "hyper", "fit", "dmr", "sites", "pileup", "check"],
        BAM,
    ),
    (&["run", "hyper", "fit", "dmr"], SHARED),
    (&["run", "hyper", "fit"], ANALYSIS),
    (&["run", "hyper"], PASS1),
    (&["run"], RUN),
    (&["hyper"], HYPER),
    (&["fit"], FIT),
    (&["dmr"], DMR),
    (&["sites"], SITES),
    (&["gather"], GATHER),
    (&["pileup"], PILEUP),
    (&["export"], EXPORT),
    (&["report"], REPORT),
    (&["simulate"], SIMULATE),
    (&["check"], CHECK),
];

/// `--threads` and `--quiet`, before or after the subcommand.
const GLOBAL: &[Case] = &[
    ("threads", &["--threads", "3"], |a| {
        for cli in global(a) {
            assert_eq!(cli.threads, Some(3));
        }
    }),
    ("quiet", &["--quiet"], |a| {
        for cli in global(a).into_iter().chain(global(&["-q"])) {
            assert!(cli.quiet);
        }
    }),
];

/// `InputArgs`: how to find and read the samples.
const INPUT: &[Case] = &[
    ("samples", &[], |a| {
        assert_eq!(input(a), InputConfig::new("s.tsv"))
    }),
    ("reference-group", &["--reference-group", "t"], |a| {
        assert_eq!(input(a).reference_group.as_deref(), Some("t"));
        assert_eq!(input(&["--reference", "t"]), input(a))
    }),
    ("contigs", &["--contigs", "g.fai"], |a| {
        assert_eq!(input(a).contigs, file("g.fai"))
    }),
    ("mod-code", &["--mod-code", "h"], |a| {
        let cfg = input(a);
        assert_eq!(cfg.mod_code, "h");
        assert_eq!(cfg.bam_options().unwrap().mod_code, ModCode::Code(b'h'))
    }),
    ("any-mod", &["--any-mod"], |a| {
        let cfg = input(a);
        assert!(cfg.any_mod);
        assert!(cfg.bam_options().unwrap().any_mod)
    }),
    ("no-combine-strands", &["--no-combine-strands"], |a| {
        let cfg = input(a);
        assert!(cfg.no_combine_strands);
        assert!(!cfg.bam_options().unwrap().pileup.combine_strands);
        assert_eq!(input(&["--no-strand-merge"]), cfg)
    }),
    (
        "exclude-contigs",
        &["--exclude-contigs", "lambda,chrM"],
        |a| assert_eq!(input(a).exclude_contigs, ["lambda", "chrM"]),
    ),
    ("fasta", &["--fasta", "g.fa"], |a| {
        let cfg = input(a);
        assert_eq!(cfg.fasta, file("g.fa"));
        assert_eq!(
            cfg.bam_options().unwrap().pileup.cpg,
            CpgFilter::Reference("g.fa".into())
        )
    }),
    ("batch-size", &["--batch-size", "7"], |a| {
        assert_eq!(input(a).batch_size, 7)
    }),
];

/// `BamFilterArgs`: the settings of a sheet's BAM/SAM samples, and the BAM options of every
/// command that reads one.
const BAM: &[Case] = &[
    ("filter-threshold", &["--filter-threshold", "0.8"], |a| {
        assert_eq!(bam(a).filter_threshold, Some(0.8));
        for opts in bam_options(a) {
            assert_eq!(opts.filter, FilterChoice::Threshold(0.8));
        }
    }),
    ("no-filtering", &["--no-filtering"], |a| {
        assert!(bam(a).no_filtering);
        for opts in bam_options(a) {
            assert_eq!(opts.filter, FilterChoice::NoFiltering);
        }
    }),
    ("filter-percentile", &["--filter-percentile", "0.2"], |a| {
        assert_eq!(bam(a).filter_percentile, 0.2);
        let reads = BamFilterConfig::default().sample_reads;
        for opts in bam_options(a) {
            let estimate = FilterChoice::Estimate {
                reads,
                percentile: 0.2,
            };
            assert_eq!(opts.filter, estimate);
        }
        let error = refused(crate::pileup::options(&pileup(&[
            "--filter-percentile",
            "1",
        ])));
        assert!(
            error.contains("--filter-percentile must be in [0, 1)"),
            "{error}"
        )
    }),
    ("sample-reads", &["--sample-reads", "99"], |a| {
        assert_eq!(bam(a).sample_reads, 99);
        let percentile = BamFilterConfig::default().filter_percentile;
        for opts in bam_options(a) {
            let estimate = FilterChoice::Estimate {
                reads: 99,
                percentile,
            };
            assert_eq!(opts.filter, estimate);
        }
    }),
    ("source", &["--source", "bismark"], |a| {
        assert_eq!(bam(a).source, config::Source::Bismark);
        for opts in bam_options(a) {
            assert_eq!(opts.pileup.source, CallSource::Bismark);
        }
        assert_eq!(
            pileup_options(&["--source", "mm"]).pileup.source,
            CallSource::ModTags
        )
    }),
    ("combine-mods", &["--combine-mods"], |a| {
        assert!(bam(a).combine_mods);
        for opts in bam_options(a) {
            assert!(opts.pileup.combine_mods);
        }
    }),
    ("legacy-as-explicit", &["--legacy-as-explicit"], |a| {
        assert!(bam(a).legacy_as_explicit);
        for opts in bam_options(a) {
            assert!(opts.pileup.legacy_as_explicit);
        }
    }),
    ("min-mapq", &["--min-mapq", "20"], |a| {
        assert_eq!(bam(a).min_mapq, 20);
        for opts in bam_options(a) {
            assert_eq!(opts.pileup.min_mapq, 20);
        }
    }),
    ("include-supplementary", &["--include-supplementary"], |a| {
        assert!(bam(a).include_supplementary);
        for opts in bam_options(a) {
            assert!(opts.pileup.include_supplementary);
        }
    }),
    ("include-duplicates", &["--include-duplicates"], |a| {
        assert!(bam(a).include_duplicates);
        for opts in bam_options(a) {
            assert!(opts.pileup.include_duplicates);
        }
    }),
    ("include-overlap", &["--include-overlap"], |a| {
        assert!(bam(a).include_overlap);
        for opts in bam_options(a) {
            assert!(!opts.pileup.no_overlap);
        }
    }),
    ("min-base-qual", &["--min-base-qual", "13"], |a| {
        assert_eq!(bam(a).min_base_qual, 13);
        for opts in bam_options(a) {
            assert_eq!(opts.pileup.min_base_qual, 13);
        }
    }),
    ("skip-bad-mod-tags", &["--skip-bad-mod-tags"], |a| {
        assert!(bam(a).skip_bad_mod_tags);
        for opts in bam_options(a) {
            assert_eq!(opts.pileup.bad_mod_tags, BadModTags::Skip);
        }
    }),
];

/// `ModelArgs` and the cluster flags: what `run`, `hyper`, `fit` and `dmr` share.
const SHARED: &[Case] = &[
    ("covariates", &["--covariates", "batch, age,"], |a| {
        let design = shared(a).input.design;
        assert_eq!(design.covariates, ["batch", "age"]);
        assert_eq!(design.pair_by, None)
    }),
    ("pair-by", &["--pair-by", "donor"], |a| {
        let design = shared(a).input.design;
        assert_eq!(design.pair_by.as_deref(), Some("donor"));
        assert!(design.covariates.is_empty())
    }),
    ("max-gap", &["--max-gap", "80"], |a| {
        assert_eq!(shared(a).regions.max_gap, Some(80))
    }),
    ("cluster-min-sites", &["--cluster-min-sites", "5"], |a| {
        assert_eq!(shared(a).regions.cluster_min_sites, 5)
    }),
    ("min-cov", &["--min-cov", "4"], |a| {
        assert_eq!(shared(a).regions.min_cov, 4)
    }),
    (
        "min-samples-per-group",
        &["--min-samples-per-group", "2"],
        |a| assert_eq!(shared(a).regions.min_samples_per_group, 2),
    ),
    ("seed", &["--seed", "9"], |a| {
        assert_eq!(shared(a).model.seed, 9)
    }),
    ("family", &["--family", "mean-field"], |a| {
        assert_eq!(shared(a).model.family, Family::MeanField)
    }),
    ("delta0", &["--delta0", "0.2"], |a| {
        assert_eq!(shared(a).fit.delta0, 0.2)
    }),
    ("fdr", &["--fdr", "0.1"], |a| assert_eq!(shared(a).fdr, 0.1)),
    ("draws", &["--draws", "400"], |a| {
        assert_eq!(shared(a).fit.draws, 400)
    }),
    ("max-refit", &["--max-refit", "0"], |a| {
        assert_eq!(shared(a).fit.max_refit, 0)
    }),
    ("screen", &["--screen"], |a| assert!(shared(a).fit.screen)),
    ("data-start", &["--data-start"], |a| {
        assert!(shared(a).fit.data_start)
    }),
    ("minibatch", &["--minibatch", "3"], |a| {
        assert_eq!(shared(a).minibatch, 3)
    }),
    // The progress bar is the binary's: it lands in the arguments, and the library's
    // configuration does not change.
    ("progress", &["--progress"], |a| {
        assert!(run_args(a).model.progress);
        assert!(hyper_args(a).model.progress);
        assert!(fit_args(a).model.progress);
        assert!(dmr_args(a).model.progress);
        assert!(!run_args(&[]).model.progress);
        assert_eq!(run(a), run(&[]));
        assert_eq!(hyper(a), hyper(&[]));
        assert_eq!(fit(a), fit(&[]));
        assert_eq!(dmr(a), dmr(&[]))
    }),
];

/// `RegionArgs` but the cluster flags: the given regions and tiles of `run`, `hyper`, `fit`.
const ANALYSIS: &[Case] = &[
    ("regions", &["--regions", "r.bed"], |a| {
        assert_eq!(analysis(a).regions.regions, file("r.bed"))
    }),
    ("tile", &["--tile", "500"], |a| {
        assert_eq!(analysis(a).regions.tile, Some(500))
    }),
    ("step", &["--tile", "500", "--step", "250"], |a| {
        assert_eq!(analysis(a).regions.step, Some(250))
    }),
    ("min-sites", &["--min-sites", "6"], |a| {
        assert_eq!(analysis(a).regions.min_sites, 6)
    }),
];
/// `HyperArgs`: pass 1 of `run` and `hyper`.
const PASS1: &[Case] = &[
    ("hyper-regions", &["--hyper-regions", "50"], |a| {
        assert_eq!(pass1(a).hyper_regions, 50)
    }),
    ("spike-sd", &["--spike-sd", "0.08"], |a| {
        assert_eq!(pass1(a).spike_sd, Some(0.08))
    }),
];

/// `dmr`'s own flags: pass 1 (its default sample is smaller), a given Theta, the contigs of a
/// shard, the output folder and the scan.
const DMR: &[Case] = &[
    ("hyper-regions", &["--hyper-regions", "50"], |a| {
        assert_eq!(dmr(a).hyper.hyper_regions, 50)
    }),
    ("spike-sd", &["--spike-sd", "0.08"], |a| {
        assert_eq!(dmr(a).hyper.spike_sd, Some(0.08))
    }),
    ("hyper-json", &["--hyper-json", "h.json"], |a| {
        assert_eq!(dmr(a).hyper_json, path("h.json"))
    }),
    ("chrom", &["--chrom", "chr1,chr2", "--chrom", "chr3"], |a| {
        assert_eq!(dmr(a).chrom, ["chr1", "chr2", "chr3"])
    }),
    ("out", &[], |a| assert_eq!(dmr(a).out, Path::new("o"))),
    ("min-cpgs", &["--min-cpgs", "5"], |a| {
        assert_eq!(dmr(a).scan.min_sites, 5)
    }),
    ("max-cpgs", &["--max-cpgs", "40"], |a| {
        assert_eq!(dmr(a).scan.max_sites, 40)
    }),
    ("min-score", &["--min-score", "2.5"], |a| {
        assert_eq!(dmr(a).scan.min_score, 2.5)
    }),
];

const RUN: &[Case] = &[
    ("mcmc-check", &["--mcmc-check", "0"], |a| {
        assert_eq!(run(a).audit.mcmc_check, 0)
    }),
    ("mcmc-flagged", &["--mcmc-flagged"], |a| {
        assert!(run(a).audit.mcmc_flagged)
    }),
    ("mcmc-flagged-cap", &["--mcmc-flagged-cap", "3"], |a| {
        assert_eq!(run(a).audit.mcmc_flagged_cap, 3)
    }),
    ("hyper-json", &["--hyper-json", "h.json"], |a| {
        assert_eq!(run(a).hyper_json, path("h.json"))
    }),
    ("out", &[], |a| assert_eq!(run(a).out, Path::new("o"))),
    ("resume", &["--resume"], |a| assert!(run(a).resume)),
    ("keep-shards", &["--keep-shards"], |a| {
        assert!(run(a).keep_shards)
    }),
];

/// `hyper`'s own flag.
const HYPER: &[Case] = &[("out", &[], |a| assert_eq!(hyper(a).out, Path::new("o")))];

/// `fit`'s own flags.
const FIT: &[Case] = &[
    ("hyper", &[], |a| {
        assert_eq!(fit(a).hyper, Path::new("h.json"))
    }),
    ("chrom", &["--chrom", "chr1,chr2", "--chrom", "chr3"], |a| {
        assert_eq!(fit(a).chrom, ["chr1", "chr2", "chr3"])
    }),
    ("out", &[], |a| assert_eq!(fit(a).out, Path::new("o"))),
];

/// `sites`'s own flag (its input flags are in [`INPUT`] and [`BAM`]).
const SITES: &[Case] = &[("out", &[], |a| assert_eq!(sites(a).out, Path::new("o")))];

/// `gather`: no configuration struct; its arguments go to `methvb_pipeline::gather` as they are.
const GATHER: &[Case] = &[
    ("<shards>", &["b.parquet"], |a| {
        assert_eq!(
            gather(a).shards,
            [Path::new("a.parquet"), Path::new("b.parquet")]
        )
    }),
    ("fdr", &["--fdr", "0.1"], |a| assert_eq!(gather(a).fdr, 0.1)),
    ("out", &[], |a| {
        assert_eq!(gather(a).out, Path::new("g.parquet"))
    }),
];

/// `pileup`: the CpG and strand options land in its BAM options (the filters are in [`BAM`]);
/// the input, output and how the file is walked stay in its arguments.
const PILEUP: &[Case] = &[
    ("<bam>", &[], |a| {
        assert_eq!(pileup(a).bam, Path::new("x.bam"))
    }),
    ("out", &[], |a| {
        assert_eq!(pileup(a).out, Path::new("p.bed"))
    }),
    ("fasta", &["--cpg", "--fasta", "g.fa"], |a| {
        let reference = CpgFilter::Reference("g.fa".into());
        assert_eq!(pileup_options(a).pileup.cpg, reference);
        assert_eq!(
            pileup_options(&["--cpg", "--reference", "g.fa"]).pileup.cpg,
            reference
        );
        let error = refused(crate::pileup::options(&pileup(&["--fasta", "g.fa"])));
        assert!(error.contains("--fasta is only used with --cpg"), "{error}")
    }),
    ("cpg", &["--cpg"], |a| {
        assert_eq!(pileup_options(a).pileup.cpg, CpgFilter::Read)
    }),
    ("combine-strands", &["--combine-strands"], |a| {
        assert!(pileup_options(a).pileup.combine_strands)
    }),
    ("mixed-delim", &["--mixed-delim"], |a| {
        assert!(pileup(a).mixed_delim)
    }),
    ("chunk-size", &["--chunk-size", "5000"], |a| {
        assert_eq!(pileup(a).chunk_size, 5000)
    }),
    ("sequential", &["--sequential"], |a| {
        assert!(pileup(a).sequential)
    }),
    ("region", &["--region", "chr1:1-100"], |a| {
        assert_eq!(pileup(a).region.as_deref(), Some("chr1:1-100"))
    }),
];

/// `export`: no configuration struct.
const EXPORT: &[Case] = &[
    ("<dir>", &[], |a| assert_eq!(export(a).dir, Path::new("d"))),
    ("bgzip", &["--bgzip"], |a| assert!(export(a).bgzip)),
];

/// `report`: its options, and the folder and the number of per-CpG panels in its arguments.
const REPORT: &[Case] = &[
    ("<dir>", &[], |a| assert_eq!(report(a).dir, Path::new("d"))),
    ("out", &["--out", "r.html"], |a| {
        assert_eq!(report_options(a).output, path("r.html"))
    }),
    ("max-points", &["--max-points", "7"], |a| {
        assert_eq!(report_options(a).max_points, 7)
    }),
    ("table-regions", &["--table-regions", "8"], |a| {
        assert_eq!(report_options(a).table_regions, 8)
    }),
    ("plot-regions", &["--plot-regions", "0"], |a| {
        assert_eq!(report(a).plot_regions, 0)
    }),
];

/// `simulate`: its settings and write options; the output folder in its arguments.
const SIMULATE: &[Case] = &[
    ("out", &[], |a| {
        assert_eq!(simulate(a).out, Path::new("sim"))
    }),
    ("config", &["--config", SIM_JSON], |a| {
        let text = std::fs::read_to_string(SIM_JSON).unwrap();
        let file: SimConfig = serde_json::from_str(&text).unwrap();
        assert_ne!(file, SimConfig::default());
        assert_eq!(sim(a).0, file);
        let (cfg, write) = sim(&["--config", SIM_JSON, "--seed", "3"]);
        assert_eq!(cfg, SimConfig { seed: 3, ..file });
        assert_eq!(write.split_seed, 3)
    }),
    ("regions", &["--regions", "40"], |a| {
        assert_eq!(sim(a).0.n_regions, 40)
    }),
    ("mode", &["--mode", "realistic"], |a| {
        assert_eq!(sim(a).0.mode, SimMode::Realistic)
    }),
    ("dmr-fraction", &["--dmr-fraction", "0.3"], |a| {
        assert_eq!(sim(a).0.dmr_fraction, 0.3)
    }),
    ("samples-per-group", &["--samples-per-group", "2,4"], |a| {
        assert_eq!(sim(a).0.samples_per_group, [2, 4]);
        let three = simulate(&["--samples-per-group", "2,2,2"]);
        let error = refused(crate::simulate::settings(&three));
        assert!(
            error.contains("2 group names but 3 entries in --samples-per-group"),
            "{error}"
        )
    }),
    (
        "groups",
        &["--groups", "a,b,c", "--samples-per-group", "1,2,3"],
        |a| assert_eq!(sim(a).0.group_names, ["a", "b", "c"]),
    ),
    ("mean-coverage", &["--mean-coverage", "9.5"], |a| {
        assert_eq!(sim(a).0.mean_coverage, 9.5)
    }),
    ("batch", &["--batch", "A,A,B,A,B,B"], |a| {
        let labels = ["A", "A", "B", "A", "B", "B"].map(String::from).to_vec();
        assert_eq!(sim(a).0.realistic.batch, Some(BatchParams::new(labels)));
        // Over a config's batch design, the labels replace its labels only.
        let mut file = sim(&["--config", SIM_JSON]).0;
        let tuned = BatchParams {
            fraction: 0.5,
            ..BatchParams::new(vec!["X".into(); 6])
        };
        file.realistic.batch = Some(tuned.clone());
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("sim.json");
        std::fs::write(&json, serde_json::to_string(&file).unwrap()).unwrap();
        let mut extra = vec!["--config", json.to_str().unwrap()];
        extra.extend(a);
        let batch = sim(&extra).0.realistic.batch.unwrap();
        assert_eq!((batch.labels[2].as_str(), batch.fraction), ("B", 0.5))
    }),
    (
        "batch-fraction",
        &["--batch", "A,B", "--batch-fraction", "0.5"],
        |a| {
            assert_eq!(sim(a).0.realistic.batch.unwrap().fraction, 0.5);
            let alone = simulate(&["--batch-fraction", "0.5"]);
            let error = refused(crate::simulate::settings(&alone));
            assert!(error.contains("--batch-fraction needs --batch"), "{error}")
        },
    ),
    (
        "batch-effect",
        &["--batch", "A,B", "--batch-effect", "0.1,0.2"],
        |a| {
            assert_eq!(sim(a).0.realistic.batch.unwrap().effect, (0.1, 0.2));
            let one = simulate(&["--batch", "A,B", "--batch-effect", "0.1"]);
            let error = refused(crate::simulate::settings(&one));
            assert!(
                error.contains("--batch-effect takes two numbers"),
                "{error}"
            );
            let alone = simulate(&["--batch-effect", "0.1,0.2"]);
            let error = refused(crate::simulate::settings(&alone));
            assert!(error.contains("--batch-effect needs --batch"), "{error}")
        },
    ),
    ("paired", &["--paired"], |a| {
        assert_eq!(sim(a).0.realistic.paired, Some(PairedParams::default()))
    }),
    ("donor-sd", &["--paired", "--donor-sd", "0.8"], |a| {
        assert_eq!(sim(a).0.realistic.paired.unwrap().donor_sd, 0.8);
        let alone = simulate(&["--donor-sd", "0.8"]);
        let error = refused(crate::simulate::settings(&alone));
        assert!(error.contains("--donor-sd needs --paired"), "{error}")
    }),
    ("split-strands", &["--split-strands"], |a| {
        assert!(sim(a).1.split_strands)
    }),
    ("bgzip", &["--bgzip"], |a| assert!(sim(a).1.bgzip)),
    ("seed", &["--seed", "7"], |a| {
        let (cfg, write) = sim(a);
        assert_eq!(cfg.seed, 7);
        assert_eq!(write.split_seed, 7)
    }),
];

/// `check`: the options it hands the doctor; the sheet and `--json` in its arguments.
const CHECK: &[Case] = &[
    ("covariates", &["--covariates", "batch"], |a| {
        assert_eq!(check(a).design.config().covariates, ["batch"])
    }),
    ("pair-by", &["--pair-by", "donor"], |a| {
        assert_eq!(check(a).design.config().pair_by.as_deref(), Some("donor"))
    }),
    ("samples", &[], |a| {
        assert_eq!(check(a).samples, Path::new("s.tsv"));
        let sheet_bam = InputConfig::new("s.tsv").bam_options().unwrap();
        assert_eq!(check_options(a).bam, sheet_bam)
    }),
    ("regions", &["--regions", "r.bed"], |a| {
        assert_eq!(check_options(a).regions, path("r.bed"))
    }),
    ("contigs", &["--contigs", "g.fai"], |a| {
        assert_eq!(check_options(a).contigs, path("g.fai"))
    }),
    ("fasta", &["--fasta", "g.fa"], |a| {
        let opts = check_options(a);
        assert_eq!(opts.fasta, path("g.fa"));
        assert_eq!(opts.bam.pileup.cpg, CpgFilter::Reference("g.fa".into()))
    }),
    (
        "exclude-contigs",
        &["--exclude-contigs", "lambda, ,chrM "],
        |a| assert_eq!(check_options(a).exclude_contigs, ["lambda", "chrM"]),
    ),
    ("reference-group", &["--reference-group", "t"], |a| {
        assert_eq!(check_options(a).reference.as_deref(), Some("t"));
        assert_eq!(
            check_options(&["--reference", "t"]).reference.as_deref(),
            Some("t")
        )
    }),
    ("mod-code", &["--mod-code", "h"], |a| {
        let opts = check_options(a);
        assert_eq!(opts.reader.mod_code, "h");
        assert_eq!(opts.bam.mod_code, ModCode::Code(b'h'));
        let error = refused(crate::check::options(&check(&["--mod-code", "5mC"])));
        assert!(error.contains("is not a modification code"), "{error}")
    }),
    ("any-mod", &["--any-mod"], |a| {
        let opts = check_options(a);
        assert!(opts.reader.any_mod && opts.bam.any_mod)
    }),
    ("no-combine-strands", &["--no-combine-strands"], |a| {
        let opts = check_options(a);
        assert!(!opts.reader.merge_strands && !opts.bam.pileup.combine_strands);
        assert!(!check_options(&["--no-strand-merge"]).reader.merge_strands)
    }),
    (
        "min-samples-per-group",
        &["--min-samples-per-group", "2"],
        |a| assert_eq!(check_options(a).min_samples_per_group, 2),
    ),
    ("min-groups", &["--min-groups", "2"], |a| {
        assert_eq!(check_options(a).min_groups, 2)
    }),
    ("max-lines", &["--max-lines", "100"], |a| {
        assert_eq!(check_options(a).max_lines, Some(100))
    }),
    ("json", &["--json"], |a| assert!(check(a).json)),
];

/// A command, extra arguments its parser refuses, and a piece of the message that names the
/// problem.
const REFUSED: &[(&str, &[&str], &str)] = &[
    ("gather", &["--threads", "0"], "must be at least 1"),
    (
        "run",
        &["--fdr", "0"],
        "the FDR target (e.g. 0.05) must be between 0 and 1",
    ),
    (
        "fit",
        &["--fdr", "1"],
        "the FDR target (e.g. 0.05) must be between 0 and 1",
    ),
    (
        "gather",
        &["--fdr", "1.5"],
        "the FDR target (e.g. 0.05) must be between 0 and 1",
    ),
    ("run", &["--fdr", "five"], "\"five\" is not a number"),
    ("run", &["--delta0", "1"], "the effect size delta0"),
    ("hyper", &["--delta0", "0"], "the effect size delta0"),
    ("run", &["--minibatch", "0"], "must be at least 1"),
    ("run", &["--hyper-regions", "0"], "must be at least 1"),
    ("dmr", &["--min-cpgs", "0"], "must be at least 1"),
    ("dmr", &["--max-cpgs", "0"], "must be at least 1"),
    ("dmr", &["--hyper-regions", "0"], "must be at least 1"),
    ("sites", &["--batch-size", "0"], "must be at least 1"),
    ("run", &["--draws", "50"], "50 is not in 100.."),
    (
        "run",
        &["--spike-sd", "0.01"],
        "the spike width must be at least 0.05",
    ),
    (
        "hyper",
        &["--spike-sd", "NaN"],
        "the spike width must be at least 0.05",
    ),
    (
        "run",
        &["--family", "full"],
        "invalid value 'full' for '--family",
    ),
    (
        "pileup",
        &["--source", "nanopore"],
        "invalid value 'nanopore' for '--source",
    ),
    (
        "simulate",
        &["--mode", "fancy"],
        "invalid value 'fancy' for '--mode",
    ),
    (
        "run",
        &["--filter-threshold", "0.8", "--no-filtering"],
        "cannot be used with",
    ),
    (
        "run",
        &["--regions", "r.bed", "--tile", "500"],
        "cannot be used with",
    ),
    (
        "fit",
        &["--tile", "500", "--max-gap", "80"],
        "cannot be used with",
    ),
    ("run", &["--step", "250"], "--tile <BP>"),
    (
        "pileup",
        &["--sequential", "--region", "chr1"],
        "cannot be used with",
    ),
];

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn each_flag_sets_its_setting() {
    for (commands, cases) in SECTIONS {
        for (flag, args, case) in *cases {
            eprintln!("{commands:?} {flag} {args:?}");
            case(args);
        }
    }
}

#[test]
fn bad_values_are_refused() {
    for (command, extra, message) in REFUSED {
        cli(command, &[]);
        let line = line(command, extra);
        let error = match Cli::try_parse_from(&line) {
            Ok(cli) => panic!("{line:?} parses: {cli:?}"),
            Err(e) => e.to_string(),
        };
        assert!(error.contains(message), "{line:?}: {error}");
        assert!(error.contains(extra[0]), "{line:?}: {error}");
    }
}

#[test]
fn defaults_are_the_library_defaults() {
    let config = run(&[]);
    assert_eq!(config.analysis.regions, RegionConfig::default());
    assert_eq!(config.analysis.model, config::ModelConfig::default());
    assert_eq!(config.analysis.fit, config::FitConfig::default());
    assert_eq!(config.analysis.fdr, config::DEFAULT_FDR);
    assert_eq!(config.analysis.minibatch, config::DEFAULT_MINIBATCH);
    assert_eq!(config.hyper, config::HyperConfig::default());
    assert_eq!(config.audit, config::AuditConfig::default());
    assert!(!config.resume && !config.keep_shards && config.hyper_json.is_none());
    assert_eq!(input(&[]).bam, BamFilterConfig::default());
    for cli in global(&[]) {
        assert!(cli.threads.is_none() && !cli.quiet);
    }
    assert_eq!(gather(&[]).fdr, config::DEFAULT_FDR);
    let dmr_default = dmr(&[]);
    assert_eq!(dmr_default.hyper.hyper_regions, DEFAULT_HYPER_REGIONS);
    assert_eq!(dmr_default.hyper.spike_sd, None);
    assert_eq!(dmr_default.scan, ScanConfig::default());
    assert!(dmr_default.chrom.is_empty() && dmr_default.hyper_json.is_none());
    assert!(!export(&[]).bgzip);
    // pileup: every position, strands apart, the threshold estimated, bad records an error.
    let mut pileup_default = BamOptions::default();
    pileup_default.pileup.cpg = CpgFilter::Any;
    pileup_default.pileup.combine_strands = false;
    BamFilterConfig::default()
        .apply(&mut pileup_default)
        .unwrap();
    assert_eq!(pileup_options(&[]), pileup_default);
    let args = pileup(&[]);
    assert!(!args.mixed_delim && !args.sequential && args.region.is_none());
    assert_eq!(args.chunk_size, 1_000_000);
    assert_eq!(report_options(&[]), ReportOptions::default());
    assert_eq!(report(&[]).plot_regions, 6);
    assert_eq!(sim(&[]).0, SimConfig::default());
    let write = WriteOptions {
        split_seed: SimConfig::default().seed,
        ..WriteOptions::default()
    };
    assert_eq!(sim(&[]).1, write);
    let opts = check_options(&[]);
    assert_eq!(opts.reader, ReaderOptions::default());
    assert_eq!(opts.bam, input(&[]).bam_options().unwrap());
    assert!(opts.exclude_contigs.is_empty() && opts.max_lines.is_none());
    assert!(opts.regions.is_none() && opts.contigs.is_none() && opts.fasta.is_none());
    assert!(opts.reference.is_none() && !check(&[]).json);
    assert_eq!((opts.min_samples_per_group, opts.min_groups), (1, 1));
}

/// The flags of `command` as the cases name them: long names, `<id>` for positional arguments
/// (not clap's own `--help` and `--version`, nor, in a subcommand, the global flags).
fn flags(command: &clap::Command) -> Vec<String> {
    command
        .get_arguments()
        .filter(|arg| !arg.is_global_set() || command.get_name() == "methvb")
        .filter_map(|arg| match arg.get_long() {
            Some("help" | "version") => None,
            Some(long) => Some(long.to_string()),
            None if arg.is_positional() => Some(format!("<{}>", arg.get_id())),
            None => panic!("{}: a flag with no long name", arg.get_id()),
        })
        .collect()
}

/// `methvb` itself, or one of its subcommands.
fn command<'a>(cli: &'a clap::Command, name: &str) -> &'a clap::Command {
    if name == cli.get_name() {
        cli
    } else {
        cli.find_subcommand(name).expect(name)
    }
}

#[test]
fn every_flag_has_a_case() {
    let cli = Cli::command();
    let names = std::iter::once("methvb").chain(cli.get_subcommands().map(|s| s.get_name()));
    for name in names {
        for flag in flags(command(&cli, name)) {
            let cases = SECTIONS
                .iter()
                .filter(|(commands, _)| commands.contains(&name))
                .flat_map(|(_, cases)| cases.iter())
                .filter(|(f, _, _)| *f == flag)
                .count();
            assert!(cases > 0, "`{name} {flag}` has no case in flags.rs");
            assert_eq!(cases, 1, "`{name} {flag}` has {cases} cases in flags.rs");
        }
    }
}

#[test]
fn every_case_is_a_flag() {
    let cli = Cli::command();
    for (commands, cases) in SECTIONS {
        for name in *commands {
            let flags = flags(command(&cli, name));
            for (flag, _, _) in *cases {
                assert!(
                    flags.iter().any(|f| f == flag),
                    "flags.rs has a case for `{name} {flag}`, which is no flag of `{name}`"
                );
            }
        }
    }
}
