//! What the probes share: their numeric arguments and their realistic two-group data.

use methvb_sim::{SimConfig, SimData, SimMode, simulate};

/// Positional argument `i` as a number, or `default`.
pub fn arg(i: usize, default: f64) -> f64 {
    std::env::args()
        .nth(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// `n` realistic regions, two groups of `per_group` samples at `coverage`, and each sample's
/// group.
pub fn realistic(n: usize, per_group: usize, coverage: f64, seed: u64) -> (SimData, Vec<usize>) {
    let sim = simulate(&SimConfig {
        n_regions: n,
        samples_per_group: vec![per_group, per_group],
        mean_coverage: coverage,
        mode: SimMode::Realistic,
        seed,
        ..SimConfig::default()
    });
    let groups = sim.samples.iter().map(|s| s.group).collect();
    (sim, groups)
}
