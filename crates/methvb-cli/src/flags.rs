//! One test per flag of `run`, `hyper` and `fit`: the flag parsed from a command line lands in
//! the library's configuration where it belongs. [`every_flag_has_a_case`] fails when a flag is
//! added without a case here.

use clap::{CommandFactory, Parser};
use methvb_model::Family;
use methvb_pipeline::commands::{FitJob, HyperJob, RunConfig};
use methvb_pipeline::config::{self, FileRef, InputConfig, RegionConfig};

use crate::{Cli, Command};

/// `methvb <command> <required flags> <extra>`, parsed.
fn parse(command: &str, extra: &[&str]) -> Command {
    let mut line = vec!["methvb", command, "--samples", "s.tsv", "--out", "o"];
    if command == "fit" {
        line.extend(["--hyper", "h.json"]);
    }
    line.extend(extra);
    Cli::try_parse_from(&line)
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
        .command
}

fn run(extra: &[&str]) -> RunConfig {
    match parse("run", extra) {
        Command::Run(args) => args.config(),
        other => panic!("not run: {other:?}"),
    }
}

fn hyper(extra: &[&str]) -> HyperJob {
    match parse("hyper", extra) {
        Command::Hyper(args) => args.config(),
        other => panic!("not hyper: {other:?}"),
    }
}

fn fit(extra: &[&str]) -> FitJob {
    match parse("fit", extra) {
        Command::Fit(args) => args.config(),
        other => panic!("not fit: {other:?}"),
    }
}

fn file(path: &str) -> Option<FileRef> {
    Some(std::path::PathBuf::from(path).into())
}

/// A flag, the arguments that set it, and the check of what they set.
type Case = (&'static str, &'static [&'static str], fn(&[&str]));

/// Every case: the input, region, model, pass-1 and audit flags through `run` (they are the
/// same structs in `hyper` and `fit`), and each command's own flags.
const CASES: &[Case] = &[
    ("samples", &[], |a| {
        assert_eq!(run(a).analysis.input, InputConfig::new("s.tsv"))
    }),
    ("reference-group", &["--reference-group", "t"], |a| {
        assert_eq!(run(a).analysis.input.reference_group.as_deref(), Some("t"))
    }),
    ("contigs", &["--contigs", "g.fai"], |a| {
        assert_eq!(run(a).analysis.input.contigs, file("g.fai"))
    }),
    ("mod-code", &["--mod-code", "h"], |a| {
        assert_eq!(run(a).analysis.input.mod_code, "h")
    }),
    ("any-mod", &["--any-mod"], |a| {
        assert!(run(a).analysis.input.any_mod)
    }),
    ("no-combine-strands", &["--no-combine-strands"], |a| {
        assert!(run(a).analysis.input.no_combine_strands)
    }),
    (
        "exclude-contigs",
        &["--exclude-contigs", "lambda,chrM"],
        |a| assert_eq!(run(a).analysis.input.exclude_contigs, ["lambda", "chrM"]),
    ),
    ("fasta", &["--fasta", "g.fa"], |a| {
        assert_eq!(run(a).analysis.input.fasta, file("g.fa"))
    }),
    ("batch-size", &["--batch-size", "7"], |a| {
        assert_eq!(run(a).analysis.input.batch_size, 7)
    }),
    ("filter-threshold", &["--filter-threshold", "0.8"], |a| {
        assert_eq!(run(a).analysis.input.bam.filter_threshold, Some(0.8))
    }),
    ("no-filtering", &["--no-filtering"], |a| {
        assert!(run(a).analysis.input.bam.no_filtering)
    }),
    ("filter-percentile", &["--filter-percentile", "0.2"], |a| {
        assert_eq!(run(a).analysis.input.bam.filter_percentile, 0.2)
    }),
    ("sample-reads", &["--sample-reads", "99"], |a| {
        assert_eq!(run(a).analysis.input.bam.sample_reads, 99)
    }),
    ("source", &["--source", "bismark"], |a| {
        assert_eq!(run(a).analysis.input.bam.source, config::Source::Bismark)
    }),
    ("combine-mods", &["--combine-mods"], |a| {
        assert!(run(a).analysis.input.bam.combine_mods)
    }),
    ("legacy-as-explicit", &["--legacy-as-explicit"], |a| {
        assert!(run(a).analysis.input.bam.legacy_as_explicit)
    }),
    ("min-mapq", &["--min-mapq", "20"], |a| {
        assert_eq!(run(a).analysis.input.bam.min_mapq, 20)
    }),
    ("include-supplementary", &["--include-supplementary"], |a| {
        assert!(run(a).analysis.input.bam.include_supplementary)
    }),
    ("include-duplicates", &["--include-duplicates"], |a| {
        assert!(run(a).analysis.input.bam.include_duplicates)
    }),
    ("include-overlap", &["--include-overlap"], |a| {
        assert!(run(a).analysis.input.bam.include_overlap)
    }),
    ("min-base-qual", &["--min-base-qual", "13"], |a| {
        assert_eq!(run(a).analysis.input.bam.min_base_qual, 13)
    }),
    ("skip-bad-mod-tags", &["--skip-bad-mod-tags"], |a| {
        assert!(run(a).analysis.input.bam.skip_bad_mod_tags)
    }),
    ("regions", &["--regions", "r.bed"], |a| {
        assert_eq!(run(a).analysis.regions.regions, file("r.bed"))
    }),
    ("tile", &["--tile", "500"], |a| {
        assert_eq!(run(a).analysis.regions.tile, Some(500))
    }),
    ("step", &["--tile", "500", "--step", "250"], |a| {
        assert_eq!(run(a).analysis.regions.step, Some(250))
    }),
    ("max-gap", &["--max-gap", "80"], |a| {
        assert_eq!(run(a).analysis.regions.max_gap, Some(80))
    }),
    ("cluster-min-sites", &["--cluster-min-sites", "5"], |a| {
        assert_eq!(run(a).analysis.regions.cluster_min_sites, 5)
    }),
    ("min-cov", &["--min-cov", "4"], |a| {
        assert_eq!(run(a).analysis.regions.min_cov, 4)
    }),
    (
        "min-samples-per-group",
        &["--min-samples-per-group", "2"],
        |a| assert_eq!(run(a).analysis.regions.min_samples_per_group, 2),
    ),
    ("min-sites", &["--min-sites", "6"], |a| {
        assert_eq!(run(a).analysis.regions.min_sites, 6)
    }),
    ("seed", &["--seed", "9"], |a| {
        assert_eq!(run(a).analysis.model.seed, 9)
    }),
    ("family", &["--family", "mean-field"], |a| {
        assert_eq!(run(a).analysis.model.family, Family::MeanField)
    }),
    ("delta0", &["--delta0", "0.2"], |a| {
        assert_eq!(run(a).analysis.fit.delta0, 0.2)
    }),
    ("fdr", &["--fdr", "0.1"], |a| {
        assert_eq!(run(a).analysis.fdr, 0.1)
    }),
    ("draws", &["--draws", "400"], |a| {
        assert_eq!(run(a).analysis.fit.draws, 400)
    }),
    ("max-refit", &["--max-refit", "0"], |a| {
        assert_eq!(run(a).analysis.fit.max_refit, 0)
    }),
    ("minibatch", &["--minibatch", "3"], |a| {
        assert_eq!(run(a).analysis.minibatch, 3)
    }),
    // The progress bar is the binary's: the library's configuration does not change.
    ("progress", &["--progress"], |a| {
        let mut with = run(a);
        with.analysis.command = String::new();
        let mut without = run(&[]);
        without.analysis.command = String::new();
        assert_eq!(with, without)
    }),
    ("hyper-regions", &["--hyper-regions", "50"], |a| {
        assert_eq!(run(a).hyper.hyper_regions, 50);
        assert_eq!(hyper(a).hyper.hyper_regions, 50)
    }),
    ("spike-sd", &["--spike-sd", "0.08"], |a| {
        assert_eq!(run(a).hyper.spike_sd, Some(0.08))
    }),
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
        assert_eq!(run(a).hyper_json.as_deref(), Some("h.json".as_ref()))
    }),
    ("out", &[], |a| {
        assert_eq!(run(a).out, std::path::Path::new("o"));
        assert_eq!(hyper(a).out, std::path::Path::new("o"));
        assert_eq!(fit(a).out, std::path::Path::new("o"))
    }),
    ("resume", &["--resume"], |a| assert!(run(a).resume)),
    ("keep-shards", &["--keep-shards"], |a| {
        assert!(run(a).keep_shards)
    }),
    ("hyper", &[], |a| {
        assert_eq!(fit(a).hyper, std::path::Path::new("h.json"))
    }),
    ("chrom", &["--chrom", "chr1,chr2", "--chrom", "chr3"], |a| {
        assert_eq!(fit(a).chrom, ["chr1", "chr2", "chr3"])
    }),
];

#[test]
fn each_flag_sets_its_setting() {
    for (flag, args, check) in CASES {
        eprintln!("--{flag}");
        check(args);
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
}

#[test]
fn every_flag_has_a_case() {
    let cli = Cli::command();
    for name in ["run", "hyper", "fit"] {
        let sub = cli.find_subcommand(name).expect(name);
        for arg in sub.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if arg.is_global_set() || long == "help" {
                continue;
            }
            assert!(
                CASES.iter().any(|(flag, _, _)| *flag == long),
                "`{name} --{long}` has no case in flags.rs"
            );
        }
    }
}
