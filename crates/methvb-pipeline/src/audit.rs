//! The MCMC audit of a run: a seeded sample of regions (and optionally the regions PSIS flags)
//! is sampled again with NUTS and compared with the VB answer; rows go to `mcmc_check.parquet`,
//! the pooled agreement to `run.json`.
//!
//! Selection streams with pass 2 and keeps at most `--mcmc-check` + `--mcmc-flagged-cap`
//! regions in memory: a region is sampled when its seeded priority (`methvb_mcmc::audit_priority`,
//! a function of seed and region id only) is among the smallest, so the sample does not depend
//! on thread count or sharding.

use std::collections::BinaryHeap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Float64Builder, StringBuilder, UInt32Builder};
use arrow_array::{ArrayRef, RecordBatch};
use methvb_io::parquet_out::AtomicParquetWriter;
use methvb_io::regions::Region;
use methvb_mcmc::{AuditOptions, AuditSummary, RegionAudit, audit_priority};
use methvb_model::{RegionFit, Theta};
use rayon::prelude::*;

use crate::config::AuditConfig;
use crate::error::{Context, Result};
use crate::samples::Samples;
use crate::schema::{RESULTS_ROW_GROUP_ROWS, audit_schema};

/// A region kept for the audit, ordered by its priority (then stream position) so the heaps
/// keep the smallest.
struct Candidate {
    priority: u64,
    index: u64,
    region: Region,
    fit: RegionFit,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        (self.priority, self.index) == (other.priority, other.index)
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.priority, self.index).cmp(&(other.priority, other.index))
    }
}

/// Keeps the regions to audit while pass 2 streams.
pub struct AuditPicker {
    seed: u64,
    sample_size: usize,
    flagged_cap: usize,
    sample: BinaryHeap<Candidate>,
    flagged: BinaryHeap<Candidate>,
}

fn offer(
    heap: &mut BinaryHeap<Candidate>,
    cap: usize,
    priority: u64,
    index: u64,
    region: &Region,
    fit: &RegionFit,
) {
    if cap == 0 {
        return;
    }
    if heap.len() < cap
        || heap
            .peek()
            .is_some_and(|top| (priority, index) < (top.priority, top.index))
    {
        heap.push(Candidate {
            priority,
            index,
            region: region.clone(),
            fit: fit.clone(),
        });
        if heap.len() > cap {
            heap.pop();
        }
    }
}

impl AuditPicker {
    /// A picker for `config` and the run's `seed`.
    pub fn new(config: &AuditConfig, seed: u64) -> Self {
        Self {
            seed,
            sample_size: config.mcmc_check,
            flagged_cap: if config.mcmc_flagged {
                config.mcmc_flagged_cap
            } else {
                0
            },
            sample: BinaryHeap::new(),
            flagged: BinaryHeap::new(),
        }
    }

    /// Considers one fitted region; `index` is its position in the region stream (regions may
    /// be offered out of order: the chosen set depends only on priorities and indices).
    pub fn offer(&mut self, index: u64, region: &Region, fit: &RegionFit) {
        let priority = audit_priority(self.seed, &region.id);
        offer(
            &mut self.sample,
            self.sample_size,
            priority,
            index,
            region,
            fit,
        );
        if !fit.reliable {
            offer(
                &mut self.flagged,
                self.flagged_cap,
                priority,
                index,
                region,
                fit,
            );
        }
    }

    /// Considers a region whose fit is not at hand (its rows were reused from a shard of an
    /// earlier run): `reliable` is the shard's verdict, and `fit` is called (once) only when the
    /// region would enter one of the samples, so the audit equals that of a run that fitted
    /// every region.
    pub fn offer_lazy(
        &mut self,
        index: u64,
        region: &Region,
        reliable: bool,
        fit: impl FnOnce() -> Result<RegionFit>,
    ) -> Result<()> {
        let priority = audit_priority(self.seed, &region.id);
        let wanted = |heap: &BinaryHeap<Candidate>, cap: usize| {
            cap > 0
                && (heap.len() < cap
                    || heap
                        .peek()
                        .is_some_and(|top| (priority, index) < (top.priority, top.index)))
        };
        if wanted(&self.sample, self.sample_size)
            || (!reliable && wanted(&self.flagged, self.flagged_cap))
        {
            let fit = fit()?;
            self.offer(index, region, &fit);
        }
        Ok(())
    }

    /// The chosen regions in stream (genomic) order, each with why it was chosen; a region both
    /// sampled and flagged is audited once, as "sample".
    fn into_chosen(self) -> Vec<(Candidate, &'static str)> {
        let sampled: Vec<u64> = self.sample.iter().map(|c| c.index).collect();
        let mut chosen: Vec<(Candidate, &'static str)> =
            self.sample.into_iter().map(|c| (c, "sample")).collect();
        chosen.extend(
            self.flagged
                .into_iter()
                .filter(|c| !sampled.contains(&c.index))
                .map(|c| (c, "flagged")),
        );
        chosen.sort_by_key(|(c, _)| c.index);
        chosen
    }
}

/// Audits the chosen regions in parallel, writes `out` (mcmc_check.parquet) and returns the
/// pooled summary, or `None` when nothing was chosen.
pub fn run_audit(
    picker: AuditPicker,
    samples: &Samples,
    theta: &Theta,
    seed: u64,
    delta0: f64,
    out: &Path,
    metadata: Vec<(String, String)>,
) -> Result<Option<AuditSummary>> {
    let chosen = picker.into_chosen();
    if chosen.is_empty() {
        return Ok(None);
    }
    let opts = AuditOptions::default();
    let audits: Vec<RegionAudit> = chosen
        .par_iter()
        .map(|(c, _)| {
            methvb_mcmc::audit_region(
                &samples.data(&c.region),
                theta,
                &c.fit,
                &opts,
                seed,
                &c.region.id,
                delta0,
            )
            .with_context(|| format!("MCMC audit of region {}", c.region.id))
        })
        .collect::<Result<_>>()?;
    let reasons: Vec<&str> = chosen.iter().map(|(_, why)| *why).collect();
    let model_names = samples.model_names();
    let batch = audit_batch(&audits, &reasons, &model_names)?;
    let mut writer =
        AtomicParquetWriter::create(out, batch.schema(), metadata, RESULTS_ROW_GROUP_ROWS)?;
    writer.write(&batch)?;
    writer.finish()?;
    Ok(Some(methvb_mcmc::summarize(&audits)))
}

/// The quantity's name for the table: `delta` (two groups) or `delta_<group>` with the
/// model's group index replaced by the group's name; the contrast coordinates stay `b_<h>`
/// (`b` for two groups: the logit difference of the model's group 1 from its group 0, see
/// docs/model.md).
fn quantity_name(name: &str, model_names: &[&str]) -> String {
    let two = model_names.len() == 2;
    if let Some(rest) = name.strip_prefix("delta_")
        && let Some(g) = rest.parse::<usize>().ok().and_then(|g| model_names.get(g))
    {
        return if two {
            "delta".into()
        } else {
            format!("delta_{g}")
        };
    }
    if two && name == "b_1" {
        return "b".into();
    }
    name.to_string()
}

fn audit_batch(
    audits: &[RegionAudit],
    reasons: &[&str],
    model_names: &[&str],
) -> Result<RecordBatch> {
    let schema = audit_schema();
    let mut strings: Vec<StringBuilder> = (0..3).map(|_| StringBuilder::new()).collect();
    let mut floats: Vec<Float64Builder> = (0..12).map(|_| Float64Builder::new()).collect();
    let mut divergences = UInt32Builder::new();
    let mut family = StringBuilder::new();
    let mut weight_ess = Float64Builder::new();
    let mut vb_reliable = BooleanBuilder::new();
    for (audit, why) in audits.iter().zip(reasons) {
        for row in &audit.rows {
            strings[0].append_value(&audit.region_id);
            strings[1].append_value(why);
            strings[2].append_value(quantity_name(&row.name, model_names));
            let values = [
                row.vb_mean,
                row.vb_sd,
                row.mcmc_mean,
                row.mcmc_sd,
                row.rhat,
                row.ess_bulk,
                row.ess_tail,
                row.mcse_mean,
                row.z_bias,
                row.sd_ratio,
            ];
            for (b, v) in floats.iter_mut().zip(values) {
                b.append_value(v);
            }
            floats[10].append_option(row.vb_prob_dm);
            floats[11].append_option(row.mcmc_prob_dm);
            divergences.append_value(u32::try_from(audit.divergences).unwrap_or(u32::MAX));
            family.append_value(audit.family.name());
            weight_ess.append_value(audit.weight_ess);
            vb_reliable.append_value(audit.vb_reliable);
        }
    }
    let mut columns: Vec<ArrayRef> = strings
        .iter_mut()
        .map(|b| Arc::new(b.finish()) as ArrayRef)
        .collect();
    columns.extend(floats.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.push(Arc::new(divergences.finish()));
    columns.push(Arc::new(family.finish()));
    columns.push(Arc::new(weight_ess.finish()));
    columns.push(Arc::new(vb_reliable.finish()));
    Ok(RecordBatch::try_new(schema, columns)?)
}

#[cfg(test)]
mod tests {
    use super::quantity_name;

    #[test]
    fn quantities_are_named_after_groups() {
        let two = ["control", "treated"];
        let three = ["c", "t1", "t2"];
        assert_eq!(quantity_name("b_1", &two), "b");
        assert_eq!(quantity_name("b_1", &three), "b_1");
        assert_eq!(quantity_name("delta_1", &two), "delta");
        assert_eq!(quantity_name("delta_2", &three), "delta_t2");
        assert_eq!(quantity_name("delta_0", &three), "delta_c");
        assert_eq!(quantity_name("a", &two), "a");
        assert_eq!(quantity_name("k", &two), "k");
    }
}
