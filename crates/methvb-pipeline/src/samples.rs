//! The adapter between the readers and the model: the sheet's groups as the outputs and the
//! model number them, the region stream both passes read, and the counts of one pass.

use std::time::Instant;

use methvb_io::merge::MergeStats;
use methvb_io::regions::{Region, RegionBuilder, RegionStats, RegionStream};
use methvb_io::sheet::SampleSheet;
use methvb_model::{DesignPrior, RegionData, Theta};
use serde::{Deserialize, Serialize};

use crate::config::{InputConfig, RegionConfig};
use crate::design::{self, BuiltDesign};
use crate::error::Result;

/// The sheet and the group of each sample, as the outputs and the model number them.
///
/// Outputs list the groups reference first (`groups`, `sample_group`). The model numbers them
/// by name (`model_group`), whatever the reference and the order of the sheet: its fit is
/// symmetric in the groups, so choosing another reference then runs exactly the same
/// computation and only the reported contrasts change sign.
#[derive(Debug)]
pub struct Samples {
    /// The sample sheet.
    pub sheet: SampleSheet,
    /// Group index of each sample in `groups` (0 = reference).
    pub sample_group: Vec<usize>,
    /// Group names, reference first.
    pub groups: Vec<String>,
    /// The model's group index of each sample (groups numbered in sorted name order).
    pub model_group: Vec<usize>,
    /// The model's index of each group of `groups`.
    pub model_index: Vec<usize>,
    /// Sample names in sheet order.
    pub names: Vec<String>,
    /// Covariates and pairs (`--covariates`, `--pair-by`), on the model's groups.
    pub design: Option<BuiltDesign>,
}

impl Samples {
    /// Reads the sheet named by `input` and checks its groups against the `regions` filters.
    pub fn load(input: &InputConfig, regions: &RegionConfig) -> Result<Self> {
        let sheet = input.sheet()?;
        sheet.check_samples_per_group(regions.min_samples_per_group)?;
        let sample_group = sheet.group_of_samples();
        let groups = sheet.groups().to_vec();
        let (model_index, model_group) = model_numbering(&sheet);
        let design = design::build(&sheet, &input.design, &model_group)?;
        Ok(Self {
            design,
            names: sheet.sample_names(),
            sheet,
            sample_group,
            groups,
            model_group,
            model_index,
        })
    }

    /// The model's view of one region.
    pub fn data<'a>(&'a self, r: &'a Region) -> RegionData<'a> {
        RegionData {
            n_sites: r.n_sites(),
            n_samples: self.model_group.len(),
            sample_group: &self.model_group,
            n_groups: self.groups.len(),
            methylated: &r.methylated,
            coverage: &r.coverage,
            design: self.design.as_ref().map(|d| &d.design),
        }
    }

    /// Empirical Bayes's starting Theta: the default with this design's prior.
    pub fn initial_theta(&self) -> Theta {
        Theta {
            design: DesignPrior::initial(self.design.as_ref().map(|d| &d.design)),
            ..Theta::default()
        }
    }

    /// Checks that `theta` (read from `source`) was learned with this design.
    pub fn check_theta(&self, theta: &Theta, source: &std::path::Path) -> Result<()> {
        use crate::error::Context;
        theta
            .design
            .check_matches(self.design.as_ref().map(|d| &d.design))
            .context(format!("hyperparameters {}", source.display()))
    }

    /// The model's index of the reference group.
    pub fn model_reference(&self) -> usize {
        self.model_index[0]
    }

    /// The group names in the model's order (the model's group `g` is `model_names()[g]`).
    pub fn model_names(&self) -> Vec<&str> {
        let mut names = vec![""; self.groups.len()];
        for (g, name) in self.groups.iter().enumerate() {
            names[self.model_index[g]] = name;
        }
        names
    }
}

/// The model's index of each group of `sheet` (reference first) and the model's group of each
/// sample: groups numbered in sorted name order.
pub(crate) fn model_numbering(sheet: &SampleSheet) -> (Vec<usize>, Vec<usize>) {
    let groups = sheet.groups();
    let mut sorted: Vec<&String> = groups.iter().collect();
    sorted.sort();
    let model_index: Vec<usize> = groups
        .iter()
        .map(|g| sorted.iter().position(|s| *s == g).unwrap_or(0))
        .collect();
    let model_group = sheet
        .group_of_samples()
        .iter()
        .map(|&g| model_index[g])
        .collect();
    (model_index, model_group)
}

/// The regions of the inputs, as pass 1 and pass 2 stream them.
pub fn region_stream(
    input: &InputConfig,
    regions: &RegionConfig,
    samples: &Samples,
) -> Result<RegionStream> {
    let merger = input.open_merger(&samples.sheet)?;
    let builder = RegionBuilder::new(
        regions.spec()?,
        regions.filters(),
        samples.sample_group.clone(),
    )?;
    Ok(RegionStream::new(merger, builder, input.batch_size))
}

/// Counts of one streaming pass over the regions.
#[derive(Debug, Clone, Serialize)]
pub struct PassSummary {
    /// Merge counts (sites per sample, rows, rows without coverage).
    pub merge: MergeStats,
    /// Region building counts (each filter's drops).
    pub regions: RegionStats,
    /// Regions handed on (to the reservoir or to the fit).
    pub regions_used: u64,
    /// What the pass dropped or renamed that deserves a look ([`RegionStream::warnings`]).
    pub warnings: Vec<String>,
    /// Wall time of the pass in seconds.
    pub seconds: f64,
}

impl PassSummary {
    /// The counts of `stream` once it has ended; the warnings are the sheet's design warnings
    /// (said after the pass, so that an input error comes first) and the stream's.
    pub(crate) fn of(
        stream: &RegionStream,
        samples: &Samples,
        regions_used: u64,
        started: Instant,
    ) -> Self {
        let design = samples
            .sheet
            .design_warnings()
            .into_iter()
            .map(|w| w.message);
        Self {
            merge: stream.merge_stats().clone(),
            regions: stream.region_stats().clone(),
            regions_used,
            warnings: design.chain(stream.warnings()).collect(),
            seconds: started.elapsed().as_secs_f64(),
        }
    }

    /// Hands the warnings to `progress`.
    pub fn report_warnings(&self, progress: &dyn crate::Progress) {
        for w in &self.warnings {
            progress.warn(w);
        }
    }
}

/// Regions on one contig (pass 1 counts them; `run --resume` checks shards against them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContigRegions {
    /// Contig name.
    pub contig: String,
    /// Regions that passed the filters on it.
    pub regions: u64,
}
