//! A self-contained HTML report of a `methvb run` output directory.
//!
//! [`write_report`] reads `regions.parquet` (required; `dmrs.parquet` in a `dmr` folder), `run.json` and `hyper.json` (optional:
//! without them the summary falls back to the Parquet key-value metadata, e.g. after
//! `methvb gather`) and `mcmc_check.parquet` (optional: the NUTS audit), and writes
//! `report.html` atomically (a temporary file in the same directory, then a rename).
//!
//! The page has no external references of any kind: the plots are inline SVG drawn with
//! plotters, the style sheet is inline, there are no scripts, links to other files, images or
//! web fonts, and no `http` URL (the SVG namespace attribute is dropped; HTML does not need it).
//!
//! Size on large runs: `regions.parquet` is read once as a stream into fixed-size accumulators
//! (histograms with fixed bins, and a 1000 × 500 grid of Δ × prob_dm counts, called and not
//! called apart). The volcano draws every region as a point while there are at most
//! [`ReportOptions::max_points`] of them (10,000 by default); above that it merges the grid over
//! the shown Δ range into at most 200 × 100 cells and draws one rectangle per non-empty cell,
//! with opacity growing with the log count, so the SVG is bounded (at most 2 × 20,000
//! rectangles, about 4 MB in the worst case, far less in practice) whatever the number of
//! regions. The MCMC
//! scatter plots draw every row up to `max_points`, then every k-th row (deterministic).
//!
//! ```no_run
//! let outcome = methvb_report::write_report(
//!     std::path::Path::new("results"),
//!     &methvb_report::ReportOptions::default(),
//! )?;
//! println!("{} ({} bytes)", outcome.path.display(), outcome.bytes);
//! # Ok::<(), methvb_report::ReportError>(())
//! ```

mod columns;
mod error;
mod html;
mod mcmc;
mod plots;
mod regions;

use std::fs;
use std::path::{Path, PathBuf};

pub use error::ReportError;
pub use mcmc::{McmcSummary, RHAT_LIMIT};
pub use regions::TopRegion;

/// File names read from (and written to) the run directory (the pipeline's contract).
pub use methvb_pipeline::schema::files;

/// Options of [`write_report`] and [`render_report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportOptions {
    /// Where to write the report; default `DIR/report.html`.
    pub output: Option<PathBuf>,
    /// Most points drawn individually in a scatter plot; the volcano switches to a grid of
    /// counts above it, the MCMC scatters draw every k-th row.
    pub max_points: usize,
    /// Rows of the table of top called regions.
    pub table_regions: usize,
    /// The per-CpG data of the regions to draw one by one (the first ones of the top table);
    /// the caller reads it from the inputs (see [`top_called`]). `None`: no per-CpG panels.
    pub sites: Option<CpgData>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            output: None,
            max_points: 10_000,
            table_regions: 50,
            sites: None,
        }
    }
}

/// Per-CpG counts of some regions, for the panels of the top regions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpgData {
    /// Sample names, in sheet order.
    pub samples: Vec<String>,
    /// Group of each sample.
    pub sample_groups: Vec<String>,
    /// The regions, in the order to draw them.
    pub regions: Vec<RegionSites>,
    /// Said above the panels (e.g. why some region could not be read).
    pub note: Option<String>,
}

/// The sites of one region: `J` positions, and counts `J × S` row-major (site `j`, sample `s`
/// at `j * S + s`), as the fit saw them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionSites {
    /// Region id (as in regions.parquet).
    pub region_id: String,
    /// 0-based positions of the sites.
    pub positions: Vec<u64>,
    /// Methylated reads per site and sample.
    pub methylated: Vec<u32>,
    /// Reads per site and sample.
    pub coverage: Vec<u32>,
}

/// The `n` best called regions of `dir/regions.parquet` (or `dmrs.parquet`) (by descending prob_dm, then lfsr, then
/// id): what the report's table lists first and its per-CpG panels draw.
pub fn top_called(dir: &Path, n: usize) -> Result<Vec<TopRegion>, ReportError> {
    Ok(regions::scan(&files::results_table(dir), 1, n)?.top)
}

/// What [`write_report`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOutcome {
    /// The report file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Rows of `regions.parquet`.
    pub regions: u64,
    /// Whether the volcano was drawn as a grid of counts rather than points.
    pub volcano_binned: bool,
    /// The MCMC audit summary, when `mcmc_check.parquet` was present.
    pub mcmc: Option<McmcSummary>,
}

/// The rendered page and what it was made from.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The HTML document.
    pub html: String,
    /// Rows of `regions.parquet`.
    pub regions: u64,
    /// Whether the volcano was drawn as a grid of counts rather than points.
    pub volcano_binned: bool,
    /// The MCMC audit summary, when present.
    pub mcmc: Option<McmcSummary>,
}

fn read_json(path: &Path) -> Result<Option<serde_json::Value>, ReportError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| ReportError::Json {
                path: path.to_path_buf(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ReportError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Reads the outputs of a run in `dir` and renders the report, without writing it.
pub fn render_report(dir: &Path, options: &ReportOptions) -> Result<Rendered, ReportError> {
    let scan = regions::scan(
        &files::results_table(dir),
        options.max_points.max(1),
        options.table_regions,
    )?;
    let run = read_json(&dir.join(files::RUN))?;
    let hyper = read_json(&dir.join(files::HYPER))?;
    let mcmc_path = dir.join(files::MCMC);
    let mcmc_rows = if mcmc_path.exists() {
        Some(mcmc::read(&mcmc_path)?)
    } else {
        None
    };
    let mcmc_summary = mcmc_rows.as_deref().map(mcmc::summarise);
    let html = html::page(&html::Inputs {
        dir,
        scan: &scan,
        run: run.as_ref(),
        hyper: hyper.as_ref(),
        mcmc: mcmc_rows.as_deref().zip(mcmc_summary.as_ref()),
        max_points: options.max_points.max(1),
        sites: options.sites.as_ref(),
    })?;
    Ok(Rendered {
        html,
        regions: scan.rows,
        volcano_binned: scan.volcano.as_ref().is_some_and(|v| v.binned),
        mcmc: mcmc_summary,
    })
}

/// Renders the report of the run in `dir` and writes it (default `dir/report.html`) through a
/// temporary file in the same directory and a rename, so a reader never sees half a page.
pub fn write_report(dir: &Path, options: &ReportOptions) -> Result<ReportOutcome, ReportError> {
    let rendered = render_report(dir, options)?;
    let path = options
        .output
        .clone()
        .unwrap_or_else(|| dir.join(files::REPORT));
    methvb_io::atomic::write_atomic(&path, rendered.html.as_bytes()).map_err(|source| {
        ReportError::Io {
            path: path.clone(),
            source,
        }
    })?;
    Ok(ReportOutcome {
        path,
        bytes: rendered.html.len() as u64,
        regions: rendered.regions,
        volcano_binned: rendered.volcano_binned,
        mcmc: rendered.mcmc,
    })
}
