//! How well the VB answer and its verdict agree with NUTS on realistic simulated data, for
//! several fit settings against one set of NUTS audits.
//!
//! `cargo run --release -p methvb-mcmc --example verdict_probe -- [regions] [per_group]
//! [coverage] [audited] [seed]` (defaults 1500, 3, 15, 80, 5). Theta is learned by empirical
//! Bayes on 600 of the regions; the audited regions are the first `audited` of a seeded
//! shuffle. Prints, per setting, the share flagged overall and the agreement with NUTS.

mod common;

use common::{arg, realistic};
use methvb_mcmc::{AuditOptions, audit_region};
use methvb_model::{EbOptions, FitOptions, RegionData, RegionFit, Theta, fit_hyper, fit_region};
use rayon::prelude::*;

fn main() {
    let n = arg(1, 1500.0) as usize;
    let per_group = arg(2, 3.0) as usize;
    let coverage = arg(3, 15.0);
    let n_audit = arg(4, 80.0) as usize;
    let seed = arg(5, 5.0) as u64;
    let (sim, groups) = realistic(n, per_group, coverage, seed);
    let data = |i: usize| sim.regions[i].data(&groups, 2);
    let eb: Vec<(&str, RegionData)> = (0..n.min(600))
        .map(|i| (sim.regions[i].id.as_str(), data(i)))
        .collect();
    let hyper = fit_hyper(&eb, &Theta::default(), &EbOptions::default(), seed).expect("EB");
    let theta = hyper.theta;
    eprintln!(
        "EB: {} epochs; mu_a {:.2} sd_a {:.2} mu_w {:.2} sd_w {:.2} mu_k {:.2} sd_k {:.2}",
        hyper.epochs, theta.mu_a, theta.sd_a, theta.mu_w, theta.sd_w, theta.mu_k, theta.sd_k
    );
    eprintln!("b prior: {:?}", theta.b_prior);
    let base = FitOptions::default();
    let settings: Vec<(&str, FitOptions)> = vec![
        ("default", base.clone()),
        (
            "no refit",
            FitOptions {
                max_refit: 0,
                ..base.clone()
            },
        ),
        ("coupled", {
            let mut o = base.clone();
            o.vb.family = methvb_model::Family::Coupled;
            o
        }),
        ("coupled, no refit", {
            let mut o = FitOptions {
                max_refit: 0,
                ..base.clone()
            };
            o.vb.family = methvb_model::Family::Coupled;
            o
        }),
    ];
    // A seeded shuffle picks the audited regions.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| methvb_model::vb::region_seed(seed, &sim.regions[i].id));
    let audited: Vec<usize> = order[..n_audit.min(n)].to_vec();
    let fits: Vec<Vec<RegionFit>> = settings
        .iter()
        .map(|(_, opts)| {
            (0..n)
                .into_par_iter()
                .map(|i| fit_region(&data(i), &theta, opts, seed, &sim.regions[i].id).expect("fit"))
                .collect()
        })
        .collect();
    let audits: Vec<_> = audited
        .par_iter()
        .map(|&i| {
            audit_region(
                &data(i),
                &theta,
                &fits[0][i],
                &AuditOptions::default(),
                seed,
                &sim.regions[i].id,
                base.delta0,
            )
            .expect("audit")
        })
        .collect();
    // Candidate verdicts, judged post hoc on the same fits.
    type Verdict = fn(&RegionFit) -> bool;
    let verdicts: Vec<(&str, Verdict)> = vec![("fit", |f| f.reliable)];
    for ((name, _), fit) in settings.iter().zip(&fits) {
        let refitted = fit.iter().filter(|f| f.refit > 0).count() as f64 / n as f64;
        println!("{name}: {refitted:.3} of regions refitted");
        for (vname, verdict) in &verdicts {
            let flagged = fit.iter().filter(|f| !verdict(f)).count() as f64 / n as f64;
            let (mut zok, mut pok, mut off, mut off_flag) = (0, 0, 0, 0);
            let mut missed = Vec::new();
            for (a, &i) in audits.iter().zip(&audited) {
                let f = &fit[i];
                let row = a
                    .rows
                    .iter()
                    .find(|r| r.name == "delta_1")
                    .expect("delta row");
                let z = (f.delta[0].summary.mean - row.mcmc_mean) / row.mcmc_sd;
                let dp = (f.prob_dm - row.mcmc_prob_dm.unwrap_or(f64::NAN)).abs();
                zok += usize::from(z.abs() <= 0.3);
                pok += usize::from(dp <= 0.05);
                if !(z.abs() <= 0.5 && dp <= 0.1) {
                    off += 1;
                    if verdict(f) {
                        missed.push(format!(
                        "{} z {z:.2} dp {dp:.2} khat {:.2} ess {:.0} shift {:.2}/{:.2} w_ess {:.0}",
                        sim.regions[i].id, f.khat, f.ess, f.delta_shift, f.prob_dm_shift, a.weight_ess
                    ));
                    } else {
                        off_flag += 1;
                    }
                }
            }
            let na = audits.len() as f64;
            println!(
                "{name:>10} {vname:>14}: flagged {flagged:.3}; |z|<=0.3 {:.3}; |dp|<=0.05 {:.3}; off {off}, flagged {off_flag}",
                zok as f64 / na,
                pok as f64 / na
            );
            for m in missed {
                println!("            missed {m}");
            }
        }
    }
    // Per audited region of the default fit, for a look at what the flag sees.
    let secs: Vec<f64> = audits.iter().map(|a| a.seconds).collect();
    let evals: f64 = audits.iter().map(|a| a.grad_evals as f64).sum::<f64>() / audits.len() as f64;
    println!(
        "NUTS: mean {:.3} s per region, {evals:.0} gradient evaluations, max depth hits {}, divergences {}",
        secs.iter().sum::<f64>() / secs.len() as f64,
        audits.iter().map(|a| a.max_depth_hits).sum::<u64>(),
        audits.iter().map(|a| a.divergences).sum::<u64>()
    );
    println!("id khat ess shift pshift reliable z dp w_ess rhat");
    for (a, &i) in audits.iter().zip(&audited) {
        let f = &fits[0][i];
        let row = a
            .rows
            .iter()
            .find(|r| r.name == "delta_1")
            .expect("delta row");
        let z = (f.delta[0].summary.mean - row.mcmc_mean) / row.mcmc_sd;
        let dp = f.prob_dm - row.mcmc_prob_dm.unwrap_or(f64::NAN);
        println!(
            "{} {:.2} {:.0} {:.2} {:.3} {} {z:.2} {dp:.3} {:.0} {:.3}",
            sim.regions[i].id,
            f.khat,
            f.ess,
            f.delta_shift,
            f.prob_dm_shift,
            f.reliable,
            a.weight_ess,
            a.max_rhat
        );
    }
}
