//! The methvb pipeline as a library: the jobs `run`, `hyper`, `fit`, `gather` and `dmr` ([`dmr`]) on a plain,
//! serialisable configuration ([`config`], [`commands`]), the two passes over the regions
//! ([`pass1`], [`pass2`]), the MCMC audit ([`audit`]), `--resume` ([`resume`], [`shards`]),
//! the run folder ([`run_folder`]) and the output contracts ([`schema`]).
//!
//! Data flows one way: the readers of `methvb-io` / `methvb-bam` give merged sites, which
//! become regions ([`samples::region_stream`]), which `methvb-model` fits, whose summaries are
//! written to Parquet. The library never prints: progress and messages go through
//! [`Progress`], which the binary implements; errors are typed ([`Error`]).
//!
//! ```no_run
//! use methvb_pipeline::commands::{Analysis, HyperJob};
//! use methvb_pipeline::config::{HyperConfig, InputConfig};
//!
//! let job = HyperJob {
//!     analysis: Analysis::new(InputConfig::new("samples.tsv")),
//!     hyper: HyperConfig::default(),
//!     out: "hyper.json".into(),
//! };
//! let file = methvb_pipeline::commands::hyper(&job, &methvb_pipeline::Silent)?;
//! println!("Theta from {} regions", file.regions_sampled);
//! # Ok::<(), methvb_pipeline::Error>(())
//! ```

pub mod audit;
pub mod commands;
pub mod config;
pub mod design;
pub mod dmr;
pub mod error;
pub mod export;
pub mod gather;
pub mod inputs;
pub mod pass1;
pub mod pass2;
pub mod progress;
pub mod resume;
pub mod run_folder;
pub mod samples;
pub mod schema;
pub mod shards;

pub use error::{Context, Error, Result};
pub use progress::{Progress, Silent};

/// Version of the statistical model written to the outputs (bump when results change meaning).
pub const MODEL_VERSION: &str = "2";
