//! `methvb report DIR`: a self-contained HTML page (inline SVG plots, no external references)
//! from the outputs of `methvb run` in DIR. The work lives in `methvb-report`; this command also
//! reads the per-CpG data of the top regions from the run's inputs, streamed once more through
//! the same readers and region options (`methvb.input_options` / `methvb.region_options` in the
//! Parquet metadata), so the panels show exactly the sites the fit used.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use methvb_report::{CpgData, RegionSites, ReportOptions, TopRegion};

use methvb_pipeline::config::{InputConfig, RegionConfig};
use methvb_pipeline::gather::{metadata_value, open};
use methvb_pipeline::samples::{Samples, region_stream};

/// Arguments of `methvb report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Output directory of `methvb run` (regions.parquet; run.json, hyper.json and
    /// mcmc_check.parquet are used when present). A folder whose files come from different
    /// runs (a file run.json does not list, another run id or Theta) is refused.
    #[arg(value_name = "DIR")]
    pub(crate) dir: PathBuf,
    /// Write the report here instead of DIR/report.html.
    #[arg(long, short, value_name = "FILE.html")]
    out: Option<PathBuf>,
    /// Most points drawn one by one in a scatter plot; larger volcano plots are drawn as a
    /// grid of counts, so the page stays small for millions of regions.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    max_points: usize,
    /// Rows of the table of top called regions (highest prob_dm first).
    #[arg(long, value_name = "N", default_value_t = 50)]
    table_regions: usize,
    /// Top called regions drawn CpG by CpG. Their sites are read from the run's inputs once
    /// more (one streaming pass; the input files must still be where the run read them); 0
    /// skips that pass.
    #[arg(long, value_name = "N", default_value_t = 6)]
    pub(crate) plot_regions: usize,
}

/// The `methvb.*` metadata value `key` of `path`, parsed as JSON.
fn metadata_json<T: serde::de::DeserializeOwned>(path: &Path, key: &str) -> Result<Option<T>> {
    let builder = open(path)?;
    match metadata_value(&builder, key) {
        Some(text) => serde_json::from_str(&text).map(Some).with_context(|| {
            format!(
                "{}: metadata {key} is not what methvb writes",
                path.display()
            )
        }),
        None => Ok(None),
    }
}

/// Streams the run's inputs once and keeps the sites of `top` (as the fit saw them).
fn read_sites(dir: &Path, top: &[TopRegion]) -> Result<CpgData> {
    let table = methvb_report::files::results_table(dir);
    let (Some(input), Some(regions)) = (
        metadata_json::<InputConfig>(&table, "methvb.input_options")?,
        metadata_json::<RegionConfig>(&table, "methvb.region_options")?,
    ) else {
        anyhow::bail!(
            "{} does not record its inputs (written by an older methvb?); rerun it to get the \
             per-CpG panels, or pass --plot-regions 0",
            table.display()
        );
    };
    let samples = Samples::load(&input, &regions)?;
    let mut wanted: HashMap<&str, &TopRegion> =
        top.iter().map(|t| (t.region_id.as_str(), t)).collect();
    let mut found: HashMap<String, RegionSites> = HashMap::new();
    let mut changed = Vec::new();
    // A region of `run` is one the stream gives; a DMR of `dmr` lies within a cluster it gives.
    for region in region_stream(&input, &regions, &samples)? {
        let region = region?;
        let inside: Vec<&str> = wanted
            .values()
            .filter(|t| {
                t.region_id == region.id
                    || (t.chrom == region.chrom && t.start >= region.start && t.end <= region.end)
            })
            .map(|t| t.region_id.as_str())
            .collect();
        for id in inside {
            let Some(t) = wanted.remove(id) else {
                continue;
            };
            let s = samples.names.len();
            let first = region.positions.partition_point(|&p| p < t.start);
            let end = region.positions.partition_point(|&p| p < t.end);
            if (end - first) as u64 != t.n_sites {
                changed.push(t.region_id.clone());
            }
            found.insert(
                t.region_id.clone(),
                RegionSites {
                    region_id: t.region_id.clone(),
                    positions: region.positions[first..end].to_vec(),
                    methylated: region.methylated[first * s..end * s].to_vec(),
                    coverage: region.coverage[first * s..end * s].to_vec(),
                },
            );
        }
        if wanted.is_empty() {
            break;
        }
    }
    let mut notes = Vec::new();
    if !changed.is_empty() {
        notes.push(format!(
            "The inputs now give other sites than the run used for {} (changed since the run?).",
            changed.join(", ")
        ));
    }
    if !wanted.is_empty() {
        let mut missing: Vec<&str> = wanted.keys().copied().collect();
        missing.sort_unstable();
        notes.push(format!(
            "Not found in the inputs: {} (changed since the run?).",
            missing.join(", ")
        ));
    }
    Ok(CpgData {
        samples: samples.sheet.sample_names(),
        sample_groups: samples
            .sheet
            .samples
            .iter()
            .map(|s| s.group.clone())
            .collect(),
        regions: top
            .iter()
            .filter_map(|t| found.remove(&t.region_id))
            .collect(),
        note: (!notes.is_empty()).then(|| notes.join(" ")),
    })
}

/// The report's options for `args`, with the per-CpG data of the top regions.
pub(crate) fn options(args: &ReportArgs, sites: Option<CpgData>) -> ReportOptions {
    ReportOptions {
        output: args.out.clone(),
        max_points: args.max_points,
        table_regions: args.table_regions,
        sites,
    }
}

/// Runs `methvb report`.
pub fn run(args: &ReportArgs, quiet: bool) -> Result<()> {
    methvb_pipeline::run_folder::check_consistent(&args.dir).with_context(|| {
        format!(
            "checking that the files in {} are of one run",
            args.dir.display()
        )
    })?;
    let sites = if args.plot_regions > 0 {
        let top = methvb_report::top_called(&args.dir, args.plot_regions)
            .with_context(|| format!("reading the results in {}", args.dir.display()))?;
        if top.is_empty() {
            None
        } else {
            let data = read_sites(&args.dir, &top).with_context(|| {
                format!(
                    "reading the sites of the top {} regions from the run's inputs (or pass \
                     --plot-regions 0 for a report without the per-CpG panels)",
                    top.len()
                )
            })?;
            if let Some(note) = &data.note
                && !quiet
            {
                eprintln!("methvb report: warning: {note}");
            }
            Some(data)
        }
    } else {
        None
    };
    let outcome = methvb_report::write_report(&args.dir, &options(args, sites))
        .with_context(|| format!("writing the report of {}", args.dir.display()))?;
    if !quiet {
        let audit = match &outcome.mcmc {
            Some(m) => format!("MCMC audit of {} regions", m.regions),
            None => "no MCMC audit".to_string(),
        };
        eprintln!(
            "methvb: report of {} regions ({audit}) -> {} ({} KB)",
            outcome.regions,
            outcome.path.display(),
            outcome.bytes.div_ceil(1024)
        );
    }
    Ok(())
}
