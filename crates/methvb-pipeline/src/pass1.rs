//! Pass 1: stream every region once, keep a seeded reservoir sample, and learn Theta from it by
//! empirical Bayes; `hyper.json` records the result. Memory is bounded by the reservoir.

use std::path::Path;
use std::time::Instant;

use methvb_io::regions::Region;
use methvb_model::{EbOptions, HyperFit, RegionData, StartModel, Theta, VbOptions};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::config::{HyperConfig, InputConfig, ModelConfig, RegionConfig};
use crate::error::{Context, Result, bail};
use crate::progress::Progress;
use crate::samples::{ContigRegions, PassSummary, Samples, region_stream};

/// Fewer regions than this make a warning in pass 1: Theta's spike weight alone is then known
/// to no better than about ±0.05 (the binomial sd of a proportion near 1/2 from 100 regions),
/// and the prior it sets drives every region's answer.
const FEW_REGIONS_FOR_EB: u64 = 100;

/// What pass 1 needs: the inputs, how regions are made, the model and pass-1 settings.
#[derive(Debug, Clone, Copy)]
pub struct Pass1<'a> {
    /// The inputs.
    pub input: &'a InputConfig,
    /// How sites are grouped into regions.
    pub regions: &'a RegionConfig,
    /// Seed and family.
    pub model: &'a ModelConfig,
    /// Reservoir size and spike width.
    pub hyper: &'a HyperConfig,
}

/// `hyper.json`: Theta and how it was learned.
#[derive(Debug, Serialize, Deserialize)]
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
    /// The amortised start of pass 2's fits, learned on the reservoir under the final Theta
    /// ([`StartModel::learn`]); absent from files written before it existed and when too few
    /// regions have sites.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<StartModel>,
}

impl HyperFile {
    /// Reads a hyper.json (Theta and its start model), or a bare Theta object (no start model).
    pub fn read(path: &Path) -> Result<(Theta, Option<StartModel>)> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let as_file = match serde_json::from_str::<HyperFile>(&text) {
            Ok(file) => return Ok((file.theta, file.start)),
            Err(e) => e,
        };
        // A hyper.json that does not read says why (a bad `start`, say), not that it is not
        // a Theta object.
        let theta = serde_json::from_str::<Theta>(&text).with_context(|| {
            format!(
                "{}: neither a hyper.json ({as_file}) nor a Theta object",
                path.display()
            )
        })?;
        Ok((theta, None))
    }
}

/// Pass 1: a seeded reservoir sample of regions, genome-wide, and Theta learned from it; the
/// returned file records the regions per contig (in stream order) and the pass's counts, and
/// the summary is the same counts.
pub fn learn_hyper(
    pass: Pass1,
    samples: &Samples,
    progress: &dyn Progress,
) -> Result<(HyperFile, PassSummary)> {
    let started = Instant::now();
    let mut stream = region_stream(pass.input, pass.regions, samples)?;
    progress.start("pass 1: sampling regions", None);
    let capacity = pass.hyper.hyper_regions.max(1);
    let mut reservoir: Vec<Region> = Vec::with_capacity(capacity.min(1 << 16));
    let mut rng = StdRng::seed_from_u64(pass.model.seed);
    let mut seen = 0u64;
    let mut per_contig: Vec<ContigRegions> = Vec::new();
    for region in stream.by_ref() {
        let region = region?;
        match per_contig.last_mut() {
            Some(last) if last.contig == region.chrom => last.regions += 1,
            _ => per_contig.push(ContigRegions {
                contig: region.chrom.clone(),
                regions: 1,
            }),
        }
        if reservoir.len() < capacity {
            reservoir.push(region);
        } else {
            let j = rng.random_range(0..=seen);
            if let Some(slot) = usize::try_from(j).ok().and_then(|j| reservoir.get_mut(j)) {
                *slot = region;
            }
        }
        seen += 1;
        progress.advance(1);
    }
    progress.finish();
    if reservoir.is_empty() {
        bail!("no region to fit: {}", stream.why_no_regions());
    }
    let mut summary = PassSummary::of(&stream, samples, seen, started);
    if seen < FEW_REGIONS_FOR_EB {
        summary.warnings.push(format!(
            "Theta is learned from only {seen} region{}: empirical Bayes needs hundreds to pin \
             the genome-wide prior down, and with fewer the prior drives every region's answer; \
             use more regions (the default CpG clusters, --tile, a larger BED) or a Theta learned \
             on a larger data set (--hyper-json)",
            if seen == 1 { "" } else { "s" }
        ));
    }
    summary.report_warnings(progress);
    // Genomic order, so the learned Theta does not depend on the reservoir's replacement order.
    reservoir.sort_by_key(|r| r.id.clone());
    let data: Vec<(&str, RegionData)> = reservoir
        .iter()
        .map(|r| (r.id.as_str(), samples.data(r)))
        .collect();
    let mut eb = EbOptions {
        spike_sd: pass.hyper.spike_sd,
        ..EbOptions::default()
    };
    eb.vb.family = pass.model.family;
    progress.note(&format!(
        "learning Theta from {} of {seen} regions ({} groups, {} samples)",
        data.len(),
        samples.groups.len(),
        samples.sample_group.len()
    ));
    let fit: HyperFit =
        methvb_model::fit_hyper(&data, &samples.initial_theta(), &eb, pass.model.seed)
            .context("learning the hyperparameters")?;
    let vb = VbOptions {
        family: pass.model.family,
        ..VbOptions::default()
    };
    let start = StartModel::learn(&data, &fit.theta, &vb, pass.model.seed);
    summary.seconds = started.elapsed().as_secs_f64();
    let file = HyperFile {
        theta: fit.theta,
        version: env!("CARGO_PKG_VERSION").to_string(),
        seed: pass.model.seed,
        regions_sampled: data.len() as u64,
        regions_seen: seen,
        epochs: fit.epochs,
        converged: fit.converged,
        history: fit.history,
        regions_per_contig: per_contig,
        pass1: serde_json::to_value(&summary).ok(),
        input_options: None,
        resume_key: None,
        start,
    };
    Ok((file, summary))
}
