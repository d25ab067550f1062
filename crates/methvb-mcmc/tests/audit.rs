//! NUTS against an exactly known posterior (1-D quadrature) and VB against NUTS on data
//! simulated from the model.

use methvb_mcmc::{AuditOptions, InitStrategy, audit_region, summarize};
use methvb_model::{FitOptions, RegionData, ScaleMixture, Theta, fit_region};
use methvb_sim::{SimConfig, SimMode, simulate};
use statrs::function::gamma::ln_gamma;

/// Independent 1-D log posterior of `a` (beta-binomial with `kappa` fixed, written with
/// lgamma, not with the model's finite sums), up to a constant.
fn log_post_a(a: f64, m: f64, n: f64, kappa: f64, mu_a: f64, sd_a: f64) -> f64 {
    let pi = 1.0 / (1.0 + (-a).exp());
    let (al, be) = (pi * kappa, (1.0 - pi) * kappa);
    let lbeta = |x: f64, y: f64| ln_gamma(x) + ln_gamma(y) - ln_gamma(x + y);
    let r = (a - mu_a) / sd_a;
    -0.5 * r * r + lbeta(m + al, n - m + be) - lbeta(al, be)
}

/// G = 1, J = 1, one sample. The priors pin `k` at `mu_k` (sd 1e-3) and make the site effect
/// vanish (`exp(w) ~ 5e-5`), so the marginal posterior of `a` is the 1-D density above with
/// `kappa = exp(mu_k)`, integrated here on a fine grid (trapezoid rule).
#[test]
fn nuts_matches_quadrature_for_pinned_model() {
    let theta = Theta {
        mu_a: 0.5,
        sd_a: 1.5,
        b_prior: ScaleMixture::spike_slab(0.9, 0.1, 1.0),
        mu_w: -10.0,
        sd_w: 1e-3,
        mu_k: 2.0,
        sd_k: 1e-3,
        design: Default::default(),
    };
    for (m, n) in [(21u32, 30u32), (0, 12)] {
        let (groups, mth, cov) = (vec![0usize], vec![m], vec![n]);
        let data = RegionData {
            n_sites: 1,
            n_samples: 1,
            sample_group: &groups,
            n_groups: 1,
            methylated: &mth,
            coverage: &cov,
            design: None,
        };
        let kappa = theta.mu_k.exp();
        let (lo, hi, steps) = (-12.0, 12.0, 24_000);
        let h = (hi - lo) / steps as f64;
        let lp: Vec<f64> = (0..=steps)
            .map(|i| {
                let a = lo + h * i as f64;
                log_post_a(a, f64::from(m), f64::from(n), kappa, theta.mu_a, theta.sd_a)
            })
            .collect();
        let mx = lp.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (mut z0, mut z1, mut z2) = (0.0, 0.0, 0.0);
        for (i, l) in lp.iter().enumerate() {
            let wt = if i == 0 || i == steps { 0.5 } else { 1.0 } * (l - mx).exp();
            let a = lo + h * i as f64;
            z0 += wt;
            z1 += wt * a;
            z2 += wt * a * a;
        }
        let q_mean = z1 / z0;
        let q_sd = (z2 / z0 - q_mean * q_mean).sqrt();

        let vb = fit_region(&data, &theta, &FitOptions::default(), 5, "pinned")
            .expect("VB fit of a valid region");
        // Six independent audits (different seeds): each must agree within 5 Monte Carlo
        // standard errors, and their average within 4 standard errors of the average.
        let n_runs = 6;
        let (mut sum_mean, mut sum_sd, mut var_mean, mut var_sd) = (0.0, 0.0, 0.0, 0.0);
        let mut audit = None;
        for seed in 1..=n_runs {
            let au = audit_region(
                &data,
                &theta,
                &vb,
                &AuditOptions::default(),
                seed,
                "pinned",
                0.1,
            )
            .expect("NUTS on a valid region");
            let a = &au.rows[0];
            assert_eq!(a.name, "a");
            println!(
                "m/n = {m}/{n} seed {seed}: quadrature mean {q_mean:.4} sd {q_sd:.4}; NUTS mean \
                 {:.4} sd {:.4} (mcse {:.4} / {:.4}, ess_bulk {:.0}, rhat {:.4}, divergences {}, \
                 {:.3} s); VB mean {:.4} sd {:.4}",
                a.mcmc_mean,
                a.mcmc_sd,
                a.mcse_mean,
                a.mcse_sd,
                a.ess_bulk,
                a.rhat,
                au.divergences,
                au.seconds,
                a.vb_mean,
                a.vb_sd
            );
            assert!(
                (a.mcmc_mean - q_mean).abs() < 5.0 * a.mcse_mean,
                "mean {} vs {q_mean} (mcse {})",
                a.mcmc_mean,
                a.mcse_mean
            );
            assert!(
                (a.mcmc_sd - q_sd).abs() < 5.0 * a.mcse_sd,
                "sd {} vs {q_sd} (mcse {})",
                a.mcmc_sd,
                a.mcse_sd
            );
            assert!(a.rhat < 1.01 && au.max_rhat < 1.01, "rhat {}", au.max_rhat);
            assert!(a.ess_bulk > 1000.0, "ess {}", a.ess_bulk);
            assert_eq!(au.divergences, 0);
            sum_mean += a.mcmc_mean;
            sum_sd += a.mcmc_sd;
            var_mean += a.mcse_mean * a.mcse_mean;
            var_sd += a.mcse_sd * a.mcse_sd;
            audit = Some(au);
        }
        let r = n_runs as f64;
        let (avg_mean, avg_sd) = (sum_mean / r, sum_sd / r);
        let (se_mean, se_sd) = (var_mean.sqrt() / r, var_sd.sqrt() / r);
        println!(
            "m/n = {m}/{n}: average of {n_runs} runs: mean {avg_mean:.4} (se {se_mean:.4}) sd \
             {avg_sd:.4} (se {se_sd:.4}) vs quadrature {q_mean:.4} / {q_sd:.4}"
        );
        assert!((avg_mean - q_mean).abs() < 4.0 * se_mean);
        assert!((avg_sd - q_sd).abs() < 4.0 * se_sd);
        let audit = audit.expect("at least one run");
        // The pinned parameters stay pinned.
        let k = audit.rows.iter().find(|r| r.name == "k").expect("k row");
        assert!((k.mcmc_mean - 2.0).abs() < 5e-4 && (k.mcmc_sd / 1e-3 - 1.0).abs() < 0.15);
    }
}

#[test]
fn audit_is_reproducible_and_validates_inputs() {
    let theta = Theta::default();
    let groups = [0usize, 0, 1, 1];
    let mth = [3u32, 5, 8, 9, 2, 4, 7, 9];
    let cov = [10u32, 10, 10, 12, 6, 9, 10, 11];
    let data = RegionData {
        n_sites: 2,
        n_samples: 4,
        sample_group: &groups,
        n_groups: 2,
        methylated: &mth,
        coverage: &cov,
        design: None,
    };
    let vb = fit_region(&data, &theta, &FitOptions::default(), 1, "r").expect("fit");
    let opts = AuditOptions {
        chains: 2,
        tune: 200,
        draws: 200,
        ..AuditOptions::default()
    };
    let a1 = audit_region(&data, &theta, &vb, &opts, 9, "r", 0.1).expect("audit");
    let a2 = audit_region(&data, &theta, &vb, &opts, 9, "r", 0.1).expect("audit");
    assert_eq!(a1.rows, a2.rows, "same seed, same draws");
    let a3 = audit_region(&data, &theta, &vb, &opts, 10, "r", 0.1).expect("audit");
    assert_ne!(a1.rows[0].mcmc_mean, a3.rows[0].mcmc_mean);
    let names: Vec<&str> = a1.rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a", "b_1", "w", "k", "delta_1"]);
    // Weak data in the null component: few of the wide-prior draws carry weight, so the
    // audit sampled the mixture density itself.
    assert_eq!(a1.target, methvb_mcmc::AuditTarget::Mixture);
    assert_eq!(a1.weight_ess, 400.0);
    let d = &a1.rows[4];
    assert_eq!(d.vb_prob_dm, Some(vb.delta[0].prob_dm));
    assert!(d.mcmc_prob_dm.is_some_and(|p| (0.0..=1.0).contains(&p)));
    assert!(a1.rows[0].mcmc_prob_dm.is_none());
    // Prior initialisation samples the same posterior.
    let prior = AuditOptions {
        init: InitStrategy::Prior,
        ..opts.clone()
    };
    let a4 = audit_region(&data, &theta, &vb, &prior, 9, "r", 0.1).expect("audit");
    assert!((a4.rows[0].mcmc_mean - a1.rows[0].mcmc_mean).abs() < 0.5 * a1.rows[0].mcmc_sd);
    // Invalid inputs are typed errors, not panics.
    let bad = AuditOptions {
        chains: 0,
        ..opts.clone()
    };
    assert!(audit_region(&data, &theta, &vb, &bad, 9, "r", 0.1).is_err());
    assert!(audit_region(&data, &theta, &vb, &opts, 9, "r", -1.0).is_err());
    let mut wrong = vb.clone();
    wrong.mu.pop();
    assert!(audit_region(&data, &theta, &wrong, &opts, 9, "r", 0.1).is_err());
}

/// Beta-binomial log-pmf without the binomial coefficient, written with lgamma (independent
/// of the model's finite sums).
fn bb_lp(m: f64, n: f64, pi: f64, kappa: f64) -> f64 {
    let (al, be) = (pi * kappa, (1.0 - pi) * kappa);
    let lbeta = |x: f64, y: f64| ln_gamma(x) + ln_gamma(y) - ln_gamma(x + y);
    lbeta(m + al, n - m + be) - lbeta(al, be)
}

/// Two groups, one site, one sample each, `k` and the site effect pinned by their priors: the
/// posterior of `(a, b)` under the spike-and-slab prior is two-dimensional and is integrated
/// on a grid (fine in `b`, where the spike is narrow). NUTS (on the wide prior, reweighted) and
/// the VB answer (importance-sampled mixture posterior) must both reproduce its mean and sd of
/// `b`, the mean of delta and `P(|delta| > 0.1)`, for data whose posterior is part null, part
/// effect.
#[test]
fn mixture_posterior_matches_two_dimensional_quadrature() {
    let theta = Theta {
        mu_a: 0.0,
        sd_a: 1.5,
        b_prior: ScaleMixture::spike_slab(0.7, 0.05, 1.0),
        mu_w: -10.0,
        sd_w: 1e-3,
        mu_k: 3.0,
        sd_k: 1e-3,
        design: Default::default(),
    };
    let kappa = theta.mu_k.exp();
    let logistic = |x: f64| 1.0 / (1.0 + (-x).exp());
    let groups = [0usize, 1];
    for (m0, m1, n) in [(6u32, 11u32, 20u32), (4, 16, 20)] {
        let (mth, cov) = ([m0, m1], [n, n]);
        let data = RegionData {
            n_sites: 1,
            n_samples: 2,
            sample_group: &groups,
            n_groups: 2,
            methylated: &mth,
            coverage: &cov,
            design: None,
        };
        // Quadrature: a in [-6, 6] step 0.01, b in [-6, 6] step 0.002.
        let (mut z0, mut zb, mut zb2, mut zd, mut zp) = (0.0, 0.0, 0.0, 0.0, 0.0);
        let mix = |b: f64| {
            let bp = &theta.b_prior;
            (0..2)
                .map(|c| {
                    let s = bp.sd[c];
                    bp.weight[c] * (-0.5 * (b / s).powi(2)).exp() / s
                })
                .sum::<f64>()
        };
        let mut lmax = f64::NEG_INFINITY;
        let grid_a: Vec<f64> = (0..=1200).map(|i| -6.0 + 0.01 * f64::from(i)).collect();
        let grid_b: Vec<f64> = (0..=6000).map(|i| -6.0 + 0.002 * f64::from(i)).collect();
        let lp = |a: f64, b: f64| {
            let r = (a - theta.mu_a) / theta.sd_a;
            -0.5 * r * r
                + mix(b).ln()
                + bb_lp(f64::from(m0), f64::from(n), logistic(a - 0.5 * b), kappa)
                + bb_lp(f64::from(m1), f64::from(n), logistic(a + 0.5 * b), kappa)
        };
        for &a in &grid_a {
            for &b in grid_b.iter().step_by(20) {
                lmax = lmax.max(lp(a, b));
            }
        }
        for &a in &grid_a {
            for &b in &grid_b {
                let w = (lp(a, b) - lmax).exp();
                let delta = logistic(a + 0.5 * b) - logistic(a - 0.5 * b);
                z0 += w;
                zb += w * b;
                zb2 += w * b * b;
                zd += w * delta;
                zp += w * f64::from(u8::from(delta.abs() > 0.1));
            }
        }
        let (b_mean, d_mean, p_dm) = (zb / z0, zd / z0, zp / z0);
        let b_sd = (zb2 / z0 - b_mean * b_mean).sqrt();
        let vb = fit_region(&data, &theta, &FitOptions::default(), 3, "quad").expect("fit");
        let au = audit_region(&data, &theta, &vb, &AuditOptions::default(), 3, "quad", 0.1)
            .expect("audit");
        let b_row = au.rows.iter().find(|r| r.name == "b_1").expect("b row");
        let d_row = au
            .rows
            .iter()
            .find(|r| r.name == "delta_1")
            .expect("delta row");
        println!(
            "{m0}/{n} vs {m1}/{n}: quadrature b {b_mean:.4} +- {b_sd:.4}, delta {d_mean:.4},              P(|delta|>0.1) {p_dm:.4}; NUTS b {:.4} +- {:.4}, delta {:.4}, P {:.4} (weight ESS              {:.0}); VB b {:.4} +- {:.4}, delta {:.4}, P {:.4} (ESS {:.0}, khat {:.2}, p_null              {:.3})",
            b_row.mcmc_mean,
            b_row.mcmc_sd,
            d_row.mcmc_mean,
            d_row.mcmc_prob_dm.unwrap_or(f64::NAN),
            au.weight_ess,
            vb.block[1].0,
            vb.block[1].1,
            vb.delta[0].summary.mean,
            vb.prob_dm,
            vb.ess,
            vb.khat,
            vb.p_null
        );
        // Monte Carlo error bounds: 5 standard errors at the effective sample size (the
        // smaller of the chains' bulk ESS and the weights' ESS for NUTS; the importance
        // weights' ESS for VB).
        let check = |what: &str, got: f64, want: f64, sd: f64, ess: f64| {
            let tol = 5.0 * sd / ess.sqrt();
            assert!(
                (got - want).abs() < tol,
                "{what}: {got} vs {want} (tol {tol})"
            );
        };
        let nuts_ess = b_row.ess_bulk.min(au.weight_ess);
        check("NUTS mean b", b_row.mcmc_mean, b_mean, b_sd, nuts_ess);
        check(
            "NUTS delta",
            d_row.mcmc_mean,
            d_mean,
            d_row.mcmc_sd,
            nuts_ess,
        );
        let p_sd = (p_dm * (1.0 - p_dm)).sqrt().max(0.05);
        check(
            "NUTS P(|delta|>0.1)",
            d_row.mcmc_prob_dm.unwrap_or(f64::NAN),
            p_dm,
            p_sd,
            nuts_ess,
        );
        assert!(
            (b_row.mcmc_sd / b_sd - 1.0).abs() < 0.15,
            "NUTS sd b {}",
            b_row.mcmc_sd
        );
        check("VB mean b", vb.block[1].0, b_mean, b_sd, vb.ess);
        check(
            "VB delta",
            vb.delta[0].summary.mean,
            d_mean,
            d_row.mcmc_sd,
            vb.ess,
        );
        check("VB P(|delta|>0.1)", vb.prob_dm, p_dm, p_sd, vb.ess);
        assert!(
            (vb.block[1].1 / b_sd - 1.0).abs() < 0.15,
            "VB sd b {}",
            vb.block[1].1
        );
        // The data leave real weight on both components.
        assert!(vb.p_null > 0.02 && vb.p_null < 0.98, "p_null {}", vb.p_null);
    }
}

/// The posterior issue's agreement targets at a small scale, on realistic simulated regions
/// (effects on part of each region on the probability scale, outlier sites, log-normal
/// dispersion; 3 vs 3 at 15x, Theta from the simulator's defaults): the VB delta is within
/// 0.3 NUTS sds and its prob_dm within 0.05 on nearly every region, and every region off by
/// more than 0.5 sd or 0.1 in prob_dm is flagged.
#[test]
fn vb_agrees_with_nuts_and_the_verdict_flags_what_does_not() {
    let cfg = SimConfig {
        n_regions: 24,
        sites_per_region: (4, 16),
        dmr_fraction: 0.4,
        mode: SimMode::Realistic,
        seed: 2026,
        ..SimConfig::default()
    };
    let sim = simulate(&cfg);
    let groups: Vec<usize> = sim.samples.iter().map(|s| s.group).collect();
    // Empirical-Bayes-like Theta for these data: the simulator's Gaussian parts, a prior of b
    // with a null and two effect components.
    let theta = Theta {
        b_prior: ScaleMixture {
            sd: vec![0.05, 0.8, 1.6],
            weight: vec![0.6, 0.2, 0.2],
        },
        ..cfg.theta.clone()
    };
    let audits: Vec<_> = sim
        .regions
        .iter()
        .map(|r| {
            let data = r.data(&groups, 2);
            let vb = fit_region(&data, &theta, &FitOptions::default(), 7, &r.id).expect("fit");
            audit_region(&data, &theta, &vb, &AuditOptions::default(), 7, &r.id, 0.1)
                .expect("audit")
        })
        .collect();
    let v = summarize(&audits).verdict;
    println!("{v:?}");
    for a in &audits {
        let d = a
            .rows
            .iter()
            .find(|r| r.name == "delta_1")
            .expect("delta row");
        println!(
            "{} J={:>2} z {:+.2} sd ratio {:.2} prob_dm {:.3} vs {:.3} reliable {} weight ESS {:.0} rhat {:.3}",
            a.region_id,
            a.n_sites,
            d.z_bias,
            d.sd_ratio,
            d.vb_prob_dm.unwrap_or(f64::NAN),
            d.mcmc_prob_dm.unwrap_or(f64::NAN),
            a.vb_reliable,
            a.weight_ess,
            a.max_rhat
        );
    }
    // Measured 0.98-0.99 (|z| <= 0.3) and 0.99-1.0 (prob_dm) over 100 regions each of two
    // datasets; at least 21 of 24 has probability > 0.99 at a true rate of 0.97.
    assert!(v.frac_delta_z_within_0_3 >= 21.0 / 24.0, "{v:?}");
    assert!(v.frac_prob_dm_within_0_05 >= 21.0 / 24.0, "{v:?}");
    assert!(
        v.missed.is_empty(),
        "regions off but reliable: {:?}",
        v.missed
    );
    // Measured 5-8% flagged; 7 or more of 24 has probability < 0.005 at 8%.
    assert!(v.regions_flagged <= 6, "{v:?}");
}
