//! Does the amortised start of the variational fit pay (issue #14)? Theta is learned by
//! empirical Bayes on the first 600 regions and the start model ([`StartModel::learn`]) on the
//! same regions, as pass 1 does; every figure is measured on the other regions.
//!
//! `cargo run --release -p methvb-mcmc --example amortise_probe -- [regions] [per_group]
//! [coverage] [audited] [seed] [min_iter]` (defaults 2000, 3, 15, 100, 1, 50). Prints
//! - the amortisation gap: the ELBO of the optimised q (the default fit) minus that of the
//!   start, for `init_q`'s start and the model's, and the deficit of fits started from either
//!   and stopped at the `min_iter` floor. Every ELBO of a region is estimated from the same 400
//!   standard-normal draws (common random numbers), so the differences are precise;
//! - per `fit_region` setting (the default; the model's start with the default floor; with the
//!   `min_iter` floor; with the coupled family first; without refits): seconds, Adam steps per
//!   region, refitted and flagged shares, why the flagged regions failed the verdict, the steps
//!   of the reported fit by rung, and the agreement with NUTS on `audited` regions (the same
//!   NUTS draws for every setting).

mod common;

use std::time::Instant;

use common::{arg, realistic};
use methvb_mcmc::{AuditOptions, audit_region};
use methvb_model::posterior::wide_theta;
use methvb_model::vb::{fit_vb, init_q};
use methvb_model::{
    EbOptions, Family, FitOptions, GaussianQ, RegionData, RegionFit, StartModel, Theta, VbOptions,
    fit_hyper, fit_region, log_joint, region_seed,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;
use rayon::prelude::*;

/// The ELBO of `q` from fixed standard-normal draws `eps` (rows of D).
fn elbo(data: &RegionData, theta: &Theta, q: &GaussianQ, eps: &[f64]) -> f64 {
    let d = q.dim;
    let mut z = vec![0.0; d];
    let n = eps.len() / d;
    let lp: f64 = (0..n)
        .map(|i| {
            q.transform(&eps[i * d..(i + 1) * d], &mut z);
            log_joint(data, theta, &z)
        })
        .sum();
    lp / n as f64 + q.entropy()
}

/// Mean, median and 90% point.
fn spread(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    format!(
        "{mean:.3} / {:.3} / {:.3}",
        v[v.len() / 2],
        v[v.len() * 9 / 10]
    )
}

fn main() {
    let n = arg(1, 2000.0) as usize;
    let per_group = arg(2, 3.0) as usize;
    let coverage = arg(3, 15.0);
    let n_audit = arg(4, 100.0) as usize;
    let seed = arg(5, 1.0) as u64;
    let floor = arg(6, 50.0) as u32;
    let (sim, groups) = realistic(n, per_group, coverage, seed);
    let data = |i: usize| sim.regions[i].data(&groups, 2);
    let n_train = n.min(600);
    let train: Vec<(&str, RegionData)> = (0..n_train)
        .map(|i| (sim.regions[i].id.as_str(), data(i)))
        .collect();
    let theta = fit_hyper(&train, &Theta::default(), &EbOptions::default(), seed)
        .expect("EB")
        .theta;
    let learned = Instant::now();
    let model = StartModel::learn(&train, &theta, &VbOptions::default(), seed).expect("model");
    println!(
        "start model from {} regions in {:.2} s",
        model.regions,
        learned.elapsed().as_secs_f64()
    );
    let test: Vec<usize> = (n_train..n).collect();
    let id = |i: usize| sim.regions[i].id.as_str();

    // The amortisation gap and the deficit at the floor.
    let wide = wide_theta(&theta);
    let short = VbOptions {
        min_iter: floor,
        ..VbOptions::default()
    };
    let rows: Vec<[f64; 6]> = test
        .par_iter()
        .map(|&i| {
            let reg = data(i);
            let d = reg.layout().dim();
            let mut rng = StdRng::seed_from_u64(region_seed(seed ^ 0xe1b0, id(i)));
            let eps: Vec<f64> = (0..400 * d).map(|_| rng.sample(StandardNormal)).collect();
            let fit = |opts: &VbOptions, start: &GaussianQ| {
                let mut rng = StdRng::seed_from_u64(region_seed(seed, id(i)));
                fit_vb(&reg, &wide, opts, Some(start), &mut rng)
            };
            let plain = init_q(&reg, &wide, Family::Structured);
            let amortised = model.start(&reg, &plain);
            let optimised = elbo(&reg, &wide, &fit(&VbOptions::default(), &plain).q, &eps);
            let (fp, fa) = (fit(&short, &plain), fit(&short, &amortised));
            [
                optimised - elbo(&reg, &wide, &plain, &eps),
                optimised - elbo(&reg, &wide, &amortised, &eps),
                f64::from(fp.iterations),
                optimised - elbo(&reg, &wide, &fp.q, &eps),
                f64::from(fa.iterations),
                optimised - elbo(&reg, &wide, &fa.q, &eps),
            ]
        })
        .collect();
    let col = |c: usize| rows.iter().map(|r| r[c]).collect::<Vec<_>>();
    let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "{} test regions; ELBO of the default fit minus that of (nats, mean / median / 90%):",
        test.len()
    );
    println!("  init_q's start:              {}", spread(col(0)));
    println!("  the model's start:           {}", spread(col(1)));
    println!(
        "  init_q's start, min_iter {floor}:  {} ({:.1} steps)",
        spread(col(3)),
        mean(col(2))
    );
    println!(
        "  model's start, min_iter {floor}:   {} ({:.1} steps)",
        spread(col(5)),
        mean(col(4))
    );

    // The verdict and NUTS.
    let base = FitOptions::default();
    let with_start = FitOptions {
        start: Some(model.clone()),
        ..base.clone()
    };
    let mut with_start_short = with_start.clone();
    with_start_short.vb.min_iter = floor;
    let mut norefit = with_start.clone();
    norefit.max_refit = 0;
    let mut coupled = with_start.clone();
    coupled.vb.family = Family::Coupled;
    let settings = [
        ("default".to_string(), base.clone()),
        ("model's start".to_string(), with_start),
        (format!("model's start, min_iter {floor}"), with_start_short),
        ("model's start, coupled first".to_string(), coupled),
        ("model's start, no refit".to_string(), norefit),
    ];
    let mut order = test.clone();
    order.sort_by_key(|&i| region_seed(seed, id(i)));
    let audited: Vec<usize> = order[..n_audit.min(order.len())].to_vec();
    let mut fits: Vec<Vec<RegionFit>> = Vec::new();
    for (name, opts) in &settings {
        let t = Instant::now();
        let f: Vec<RegionFit> = test
            .par_iter()
            .map(|&i| fit_region(&data(i), &theta, opts, seed, id(i)).expect("fit"))
            .collect();
        let secs = t.elapsed().as_secs_f64();
        let share = |p: &dyn Fn(&RegionFit) -> bool| {
            f.iter().filter(|x| p(x)).count() as f64 / f.len() as f64
        };
        println!(
            "{name}: {secs:.2} s; {:.1} steps in the reported fit; refitted {:.3}, twice {:.3}; flagged {:.3}",
            mean(f.iter().map(|x| f64::from(x.iterations)).collect()),
            share(&|x| x.refit > 0),
            share(&|x| x.refit > 1),
            share(&|x| !x.reliable)
        );
        let c = |p: &dyn Fn(&RegionFit) -> bool| f.iter().filter(|x| !x.reliable && p(x)).count();
        println!(
            "  flagged: khat > thr {}, ess < 100 {}, khat >= 1 {}, delta shift > 0.2 {}, prob_dm shift > 0.02 {}, thr < khat < 1 {}",
            c(&|x| x.khat > x.khat_threshold),
            c(&|x| x.ess < 100.0),
            c(&|x| x.khat >= 1.0),
            c(&|x| x.delta_shift > 0.2),
            c(&|x| x.prob_dm_shift > 0.02),
            c(&|x| x.khat < 1.0 && x.khat > x.khat_threshold)
        );
        for r in 0..=2u8 {
            let it: Vec<f64> = f
                .iter()
                .filter(|x| x.refit == r)
                .map(|x| f64::from(x.iterations))
                .collect();
            if !it.is_empty() {
                println!(
                    "  refit {r}: {} regions, steps of the reported fit {}",
                    it.len(),
                    spread(it)
                );
            }
        }
        fits.push(f);
    }
    let at = |i: usize| i - n_train;
    let audits: Vec<_> = audited
        .par_iter()
        .map(|&i| {
            audit_region(
                &data(i),
                &theta,
                &fits[0][at(i)],
                &AuditOptions::default(),
                seed,
                id(i),
                base.delta0,
            )
            .expect("audit")
        })
        .collect();
    for ((name, _), fit) in settings.iter().zip(&fits) {
        let (mut zok, mut pok, mut off, mut missed, mut abs_z) = (0, 0, 0, 0, 0.0);
        for (a, &i) in audits.iter().zip(&audited) {
            let f = &fit[at(i)];
            let row = a.rows.iter().find(|r| r.name == "delta_1").expect("delta");
            let z = (f.delta[0].summary.mean - row.mcmc_mean) / row.mcmc_sd;
            let dp = (f.prob_dm - row.mcmc_prob_dm.unwrap_or(f64::NAN)).abs();
            abs_z += z.abs();
            zok += usize::from(z.abs() <= 0.3);
            pok += usize::from(dp <= 0.05);
            if !(z.abs() <= 0.5 && dp <= 0.1) {
                off += 1;
                missed += usize::from(f.reliable);
            }
        }
        let na = audits.len() as f64;
        println!(
            "{name}: NUTS on {na}: |z| <= 0.3 {:.3}; mean |z| {:.3}; |dp| <= 0.05 {:.3}; off {off}, of them reliable {missed}",
            zok as f64 / na,
            abs_z / na,
            pok as f64 / na
        );
    }
}
