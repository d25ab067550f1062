//! Statistical checks on data drawn from the generative model itself: empirical Bayes recovers
//! Theta, 95% intervals of delta cover the truth, Bayesian FDR calls control the realised FDR.
//! Numbers are printed (see with `--nocapture`).

mod common;

use methvb_model::{
    EbOptions, Family, FitOptions, RegionFit, VbOptions, call_by_pep, fit_hyper, fit_region,
};
use rayon::prelude::*;

fn auroc(score: &[f64], truth: &[bool]) -> f64 {
    let mut idx: Vec<usize> = (0..score.len()).collect();
    idx.sort_by(|&i, &j| score[i].total_cmp(&score[j]));
    // Mann-Whitney with average ranks for ties.
    let mut ranks = vec![0.0; score.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut e = i + 1;
        while e < idx.len() && score[idx[e]] == score[idx[i]] {
            e += 1;
        }
        let r = (i + e + 1) as f64 / 2.0;
        for &t in &idx[i..e] {
            ranks[t] = r;
        }
        i = e;
    }
    let n1 = truth.iter().filter(|&&t| t).count() as f64;
    let n0 = truth.len() as f64 - n1;
    let rs: f64 = ranks
        .iter()
        .zip(truth)
        .filter(|(_, t)| **t)
        .map(|(r, _)| r)
        .sum();
    (rs - n1 * (n1 + 1.0) / 2.0) / (n1 * n0)
}

struct Calib {
    coverage: f64,
    fdr: f64,
    n_calls: usize,
    auroc: f64,
    unreliable: usize,
}

fn evaluate(fits: &[RegionFit], regions: &[common::SimRegion], delta0: f64) -> Calib {
    let covered = fits
        .iter()
        .zip(regions)
        .filter(|(f, r)| {
            f.delta[0].summary.q025 <= r.true_delta[0] && r.true_delta[0] <= f.delta[0].summary.q975
        })
        .count();
    let truth: Vec<bool> = regions
        .iter()
        .map(|r| r.true_delta[0].abs() > delta0)
        .collect();
    let pep: Vec<f64> = fits.iter().map(|f| f.pep).collect();
    let calls = call_by_pep(&pep, 0.05);
    let n_calls = calls.iter().filter(|&&c| c).count();
    let false_calls = calls
        .iter()
        .zip(&truth)
        .filter(|(c, t)| **c && !**t)
        .count();
    let score: Vec<f64> = fits.iter().map(|f| f.prob_dm).collect();
    Calib {
        coverage: covered as f64 / fits.len() as f64,
        fdr: if n_calls == 0 {
            0.0
        } else {
            false_calls as f64 / n_calls as f64
        },
        n_calls,
        auroc: auroc(&score, &truth),
        unreliable: fits.iter().filter(|f| !f.reliable).count(),
    }
}

#[test]
fn empirical_bayes_recovers_theta_and_calls_are_calibrated() {
    let truth = common::truth_theta();
    // Two groups of 3 samples, 10 sites, ~15x coverage, 10% missing cells.
    let regions = common::simulate(&truth, 2000, 2, 3, 10, 15.0, 0.1, 2024);
    let seed = 11;

    // Pass 1: empirical Bayes on a sample of 600 regions, from the default start.
    let sample: Vec<(&str, methvb_model::RegionData)> = regions[..600]
        .iter()
        .map(|r| (r.id.as_str(), r.data()))
        .collect();
    let eb_opts = EbOptions {
        max_epochs: 15,
        ..EbOptions::default()
    };
    let eb = fit_hyper(&sample, &methvb_model::Theta::default(), &eb_opts, seed).unwrap();
    let th = eb.theta;
    println!(
        "EB: epochs {} converged {} theta {:?}",
        eb.epochs, eb.converged, th
    );
    println!("truth: {truth:?}");
    assert!((th.mu_a - truth.mu_a).abs() < 0.15, "mu_a {}", th.mu_a);
    assert!((th.mu_k - truth.mu_k).abs() < 0.15, "mu_k {}", th.mu_k);
    assert!(
        (th.sd_a / truth.sd_a - 1.0).abs() < 0.15,
        "sd_a {}",
        th.sd_a
    );
    let (w0, w0_true) = (th.b_prior.null_weight(), truth.b_prior.null_weight());
    assert!((w0 - w0_true).abs() < 0.06, "null weight {w0}");
    // The null's sd is weakly identified (10 sites at 15x: 0.05, 0.07 and 0.1 within half a
    // nat of each other) and EB takes the widest inside the 95% likelihood interval; a null more
    // than twice the true 0.05 would be one the data reject.
    let null_sd = th.b_prior.sd[0];
    assert!(
        (truth.b_prior.sd[0]..=2.0 * truth.b_prior.sd[0] + 1e-12).contains(&null_sd),
        "null sd {null_sd}"
    );

    // Pass 2: all regions with Theta fixed, structured and mean-field (no refits, so that the
    // families are compared as they are).
    let fit_all = |family: Family| -> Vec<RegionFit> {
        let opts = FitOptions {
            vb: VbOptions {
                family,
                ..VbOptions::default()
            },
            max_refit: 0,
            ..FitOptions::default()
        };
        regions
            .par_iter()
            .map(|r| fit_region(&r.data(), &th, &opts, seed, &r.id).unwrap())
            .collect()
    };
    let structured = evaluate(&fit_all(Family::Structured), &regions, 0.1);
    let mean_field = evaluate(&fit_all(Family::MeanField), &regions, 0.1);
    let coupled = evaluate(&fit_all(Family::Coupled), &regions, 0.1);
    let n_dm = regions
        .iter()
        .filter(|r| r.true_delta[0].abs() > 0.1)
        .count();
    for (name, c) in [
        ("structured", &structured),
        ("mean-field", &mean_field),
        ("coupled", &coupled),
    ] {
        println!(
            "{name}: 95% coverage of delta {:.3}, calls {} (true DMRs {n_dm}), realised FDR {:.3}, AUROC {:.3}, unreliable (k-hat) {}",
            c.coverage, c.n_calls, c.fdr, c.auroc, c.unreliable
        );
    }
    // Nominal 0.95; at 2000 regions one binomial sd is 0.005, so the lower bound 0.92 is 6 sds
    // below. The null regions (90%) are covered at nearly 1 by design: EB's null is the widest
    // the data allow (0.1 for the true 0.05, asserted above), so coverage lands near
    // 0.9 + 0.1 x (the DMRs' coverage), 0.976 measured; the upper bound 0.99 fails only if
    // the DMRs' intervals are too wide as well.
    // The importance correction makes the family matter little: mean-field q's understate
    // the variance, and their weights correct it.
    for (name, c) in [
        ("structured", &structured),
        ("mean-field", &mean_field),
        ("coupled", &coupled),
    ] {
        assert!(
            (0.92..=0.99).contains(&c.coverage),
            "{name} coverage {}",
            c.coverage
        );
    }
    // Realised FDR: calls are Bernoulli(0.05)-false on average; three binomial sds above the
    // target for the number of calls made.
    let fdr_bound = 0.05 + 3.0 * (0.05 * 0.95 / structured.n_calls.max(1) as f64).sqrt();
    assert!(
        structured.fdr <= fdr_bound,
        "structured FDR {} > {fdr_bound}",
        structured.fdr
    );
    assert!(
        structured.n_calls > n_dm / 3,
        "too few calls: {}",
        structured.n_calls
    );
    assert!(structured.auroc > 0.9, "AUROC {}", structured.auroc);
}
