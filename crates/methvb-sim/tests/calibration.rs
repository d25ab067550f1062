//! Calibration of the methvb model on data from `methvb_sim::simulate` (model mode): empirical
//! Bayes recovers Theta, 95% intervals of delta cover the truth, Bayesian-FDR calls keep the
//! realised FDR near the target; in realistic mode (misspecified model) calls stay conservative.
//! Figures are printed (`--nocapture`).

use methvb_model::{
    EbOptions, Family, FitOptions, RegionData, RegionFit, Theta, VbOptions, call_by_pep, fit_hyper,
    fit_region,
};
use methvb_sim::{SimConfig, SimMode, simulate};

fn auroc(score: &[f64], truth: &[bool]) -> f64 {
    let (mut num, mut pairs) = (0.0, 0.0);
    let pos: Vec<f64> = score
        .iter()
        .zip(truth)
        .filter(|(_, t)| **t)
        .map(|(s, _)| *s)
        .collect();
    let neg: Vec<f64> = score
        .iter()
        .zip(truth)
        .filter(|(_, t)| !**t)
        .map(|(s, _)| *s)
        .collect();
    for p in &pos {
        for n in &neg {
            num += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
            pairs += 1.0;
        }
    }
    num / pairs
}

struct Outcome {
    coverage: f64,
    fdr: f64,
    n_calls: usize,
    n_dm: usize,
    auroc: f64,
}

#[test]
fn realistic_mode_degrades_gracefully() {
    let truth = Theta {
        mu_a: 0.5,
        sd_a: 1.5,
        b_prior: methvb_model::ScaleMixture::spike_slab(0.9, 0.05, 1.2),
        mu_w: -0.7,
        sd_w: 0.4,
        mu_k: 3.0,
        sd_k: 0.5,
        design: Default::default(),
    };
    let cfg = SimConfig {
        n_regions: 1500,
        theta: truth,
        dmr_fraction: 0.1,
        sites_per_region: (5, 20),
        mode: SimMode::Realistic,
        seed: 78,
        ..SimConfig::default()
    };
    let o = run(&cfg, Family::Structured);
    println!(
        "Realistic, structured: coverage {:.3}, calls {} (true |delta| > 0.1: {}), FDR {:.3}, AUROC {:.3}",
        o.coverage, o.n_calls, o.n_dm, o.fdr, o.auroc
    );
    // Departures (partial-window effects, smooth trends, outlier sites, depth variation) make
    // the model misspecified; it should stay conservative rather than over-call.
    assert!(o.auroc > 0.85, "AUROC {}", o.auroc);
    assert!(o.fdr <= 0.1, "FDR {}", o.fdr);
    assert!(o.coverage > 0.9, "coverage {}", o.coverage);
}

fn run(cfg: &SimConfig, family: Family) -> Outcome {
    let sim = simulate(cfg);
    let groups: Vec<usize> = sim.samples.iter().map(|s| s.group).collect();
    let n_groups = sim.group_names.len();
    let data: Vec<RegionData> = sim
        .regions
        .iter()
        .map(|r| r.data(&groups, n_groups))
        .collect();
    let sample: Vec<(&str, RegionData)> = sim
        .regions
        .iter()
        .zip(&data)
        .take(500)
        .map(|(r, d)| (r.id.as_str(), *d))
        .collect();
    let eb = fit_hyper(
        &sample,
        &Theta::default(),
        &EbOptions {
            max_epochs: 15,
            ..EbOptions::default()
        },
        5,
    )
    .unwrap();
    println!("EB ({:?}) epochs {}: {:?}", cfg.mode, eb.epochs, eb.theta);
    let opts = FitOptions {
        vb: VbOptions {
            family,
            ..VbOptions::default()
        },
        max_refit: 0,
        ..FitOptions::default()
    };
    let fits: Vec<RegionFit> = sim
        .regions
        .iter()
        .zip(&data)
        .map(|(r, d)| fit_region(d, &eb.theta, &opts, 5, &r.id).unwrap())
        .collect();
    let is_dm: Vec<bool> = sim
        .regions
        .iter()
        .map(|r| r.true_delta[0].abs() > 0.1)
        .collect();
    let coverage = fits
        .iter()
        .zip(&sim.regions)
        .filter(|(f, r)| {
            (f.delta[0].summary.q025..=f.delta[0].summary.q975).contains(&r.true_delta[0])
        })
        .count() as f64
        / fits.len() as f64;
    let pep: Vec<f64> = fits.iter().map(|f| f.pep).collect();
    let calls = call_by_pep(&pep, 0.05);
    let n_calls = calls.iter().filter(|&&c| c).count();
    let false_calls = calls
        .iter()
        .zip(&is_dm)
        .filter(|(c, t)| **c && !**t)
        .count();
    let score: Vec<f64> = fits.iter().map(|f| f.prob_dm).collect();
    Outcome {
        coverage,
        fdr: false_calls as f64 / n_calls.max(1) as f64,
        n_calls,
        n_dm: is_dm.iter().filter(|&&t| t).count(),
        auroc: auroc(&score, &is_dm),
    }
}

#[test]
fn model_mode_calibration() {
    let truth = Theta {
        mu_a: 0.5,
        sd_a: 1.5,
        b_prior: methvb_model::ScaleMixture::spike_slab(0.9, 0.05, 1.2),
        mu_w: -0.7,
        sd_w: 0.4,
        mu_k: 3.0,
        sd_k: 0.5,
        design: Default::default(),
    };
    let cfg = SimConfig {
        n_regions: 2000,
        theta: truth.clone(),
        dmr_fraction: 0.1,
        sites_per_region: (5, 20),
        mode: SimMode::Model,
        seed: 77,
        ..SimConfig::default()
    };
    let sim = simulate(&cfg);
    let groups: Vec<usize> = sim.samples.iter().map(|s| s.group).collect();
    let n_groups = sim.group_names.len();
    let data: Vec<RegionData> = sim
        .regions
        .iter()
        .map(|r| r.data(&groups, n_groups))
        .collect();
    let seed = 5;
    let sample: Vec<(&str, RegionData)> = sim
        .regions
        .iter()
        .zip(&data)
        .take(500)
        .map(|(r, d)| (r.id.as_str(), *d))
        .collect();
    let eb = fit_hyper(
        &sample,
        &Theta::default(),
        &EbOptions {
            max_epochs: 15,
            ..EbOptions::default()
        },
        seed,
    )
    .unwrap();
    let th = eb.theta.clone();
    println!(
        "EB epochs {} converged {}: {th:?}\ntruth (null weight = 1 - dmr_fraction): {truth:?}",
        eb.epochs, eb.converged
    );
    assert!((th.mu_a - truth.mu_a).abs() < 0.2, "mu_a {}", th.mu_a);
    assert!((th.mu_k - truth.mu_k).abs() < 0.2, "mu_k {}", th.mu_k);
    let w0 = th.b_prior.null_weight();
    assert!((w0 - 0.9).abs() < 0.07, "null weight {w0}");

    let delta0 = 0.1;
    let is_dm: Vec<bool> = sim
        .regions
        .iter()
        .map(|r| r.true_delta[0].abs() > delta0)
        .collect();
    let n_dm = is_dm.iter().filter(|&&t| t).count();
    let mut coverage_by_family = Vec::new();
    for family in [Family::Structured, Family::MeanField] {
        let opts = FitOptions {
            vb: VbOptions {
                family,
                ..VbOptions::default()
            },
            max_refit: 0,
            ..FitOptions::default()
        };
        let fits: Vec<RegionFit> = sim
            .regions
            .iter()
            .zip(&data)
            .map(|(r, d)| fit_region(d, &th, &opts, seed, &r.id).unwrap())
            .collect();
        let covered = fits
            .iter()
            .zip(&sim.regions)
            .filter(|(f, r)| {
                (f.delta[0].summary.q025..=f.delta[0].summary.q975).contains(&r.true_delta[0])
            })
            .count() as f64
            / fits.len() as f64;
        let pep: Vec<f64> = fits.iter().map(|f| f.pep).collect();
        let calls = call_by_pep(&pep, 0.05);
        let n_calls = calls.iter().filter(|&&c| c).count();
        let false_calls = calls
            .iter()
            .zip(&is_dm)
            .filter(|(c, t)| **c && !**t)
            .count();
        let fdr = false_calls as f64 / n_calls.max(1) as f64;
        let score: Vec<f64> = fits.iter().map(|f| f.prob_dm).collect();
        let unreliable = fits.iter().filter(|f| !f.reliable).count();
        println!(
            "{family:?}: coverage {covered:.3}, calls {n_calls} (true |delta| > {delta0}: {n_dm}), FDR {fdr:.3}, AUROC {:.3}, unreliable {unreliable}",
            auroc(&score, &is_dm)
        );
        if family == Family::Structured {
            assert!(
                // Nominal 0.95; at 2000 regions one binomial sd is 0.005. Measured 0.981 with
                // the null sd EB chose (0.1 for a true 0.05: the widest inside the 95%
                // likelihood interval, docs/model.md): the 90% null regions are covered at
                // nearly 1 by design where the data cannot tell the two apart, so the upper
                // bound is 0.99 (the DMRs' intervals too wide as well), the lower 0.92.
                (0.92..=0.99).contains(&covered),
                "structured coverage {covered}"
            );
            // Three binomial sds above the 0.05 target for the number of calls made.
            let fdr_bound = 0.05 + 3.0 * (0.05 * 0.95 / n_calls.max(1) as f64).sqrt();
            assert!(fdr <= fdr_bound, "structured FDR {fdr} > {fdr_bound}");
            assert!(n_calls > n_dm / 3, "structured calls {n_calls}");
        }
        coverage_by_family.push(covered);
    }
    assert!(coverage_by_family[1] <= coverage_by_family[0] + 0.005);
}
