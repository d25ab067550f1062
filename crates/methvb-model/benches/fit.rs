//! Criterion benchmarks of the per-region hot paths on regions drawn from the model (2 groups,
//! ~15x coverage, 10% missing cells): the log joint with its gradient for J = 5, 20, 100 sites
//! and S = 4, 12 samples; the log joint of one point at a time against lanes of points (J = 17,
//! S = 6, 16 perturbed points per region); and `fit_region` end to end (J = 10, S = 6 per
//! family; J = 14, S = 6 and J = 5, 20, 100 with S = 4, 12 with the default options, and J = 14,
//! S = 6 from a learned start model, as a run's pass 2 fits).
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use methvb_model::likelihood::{LANES, log_joint_grad_lanes, log_joint_lanes};
use methvb_model::{
    Family, FitOptions, RegionData, StartModel, VbOptions, fit_region, log_joint, log_joint_grad,
};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use rand_distr::StandardNormal;

/// Regions per benchmark iteration.
const REGIONS: usize = 16;

fn regions(n_sites: usize, n_samples: usize) -> Vec<common::SimRegion> {
    let theta = common::truth_theta();
    common::simulate(&theta, REGIONS, 2, n_samples / 2, n_sites, 15.0, 0.1, 1)
}

fn fit_all(regions: &[common::SimRegion], opts: &FitOptions) -> f64 {
    let theta = common::truth_theta();
    regions
        .iter()
        .map(|r| {
            fit_region(&r.data(), &theta, opts, 7, &r.id)
                .map(|f| f.elbo)
                .unwrap_or(f64::NAN)
        })
        .sum()
}

fn bench(c: &mut Criterion) {
    let theta = common::truth_theta();
    let mut group = c.benchmark_group(format!("log_joint_grad (per {REGIONS} regions)"));
    for n_samples in [4, 12] {
        for n_sites in [5, 20, 100] {
            let rs = regions(n_sites, n_samples);
            let mut grad = vec![0.0; rs[0].z.len()];
            let id = BenchmarkId::from_parameter(format!("J{n_sites} S{n_samples}"));
            group.bench_function(id, |b| {
                b.iter(|| {
                    rs.iter()
                        .map(|r| log_joint_grad(&r.data(), &theta, black_box(&r.z), &mut grad))
                        .sum::<f64>()
                })
            });
        }
    }
    group.finish();

    // The points the importance draws and the antithetic pairs of the fit evaluate: near the
    // truth, 16 per region.
    let rs = regions(17, 6);
    let wide = theta.with_b_prior(methvb_model::ScaleMixture::single(8.0));
    let mut rng = StdRng::seed_from_u64(5);
    let points: Vec<Vec<Vec<f64>>> = rs
        .iter()
        .map(|r| {
            (0..16)
                .map(|_| {
                    r.z.iter()
                        .map(|x| x + 0.1 * rng.sample::<f64, _>(StandardNormal))
                        .collect()
                })
                .collect()
        })
        .collect();
    let mut group = c.benchmark_group(format!("log joint J17 S6 (per {} points)", 16 * REGIONS));
    group.bench_function("log_joint, one point at a time", |b| {
        b.iter(|| {
            rs.iter()
                .zip(&points)
                .flat_map(|(r, ps)| ps.iter().map(|z| log_joint(&r.data(), &wide, black_box(z))))
                .sum::<f64>()
        })
    });
    group.bench_function(format!("log_joint_lanes, {LANES} points at a time"), |b| {
        b.iter(|| {
            let mut total = 0.0;
            for (r, ps) in rs.iter().zip(&points) {
                for chunk in ps.chunks(LANES) {
                    let z: [&[f64]; LANES] = std::array::from_fn(|l| &chunk[l][..]);
                    total += log_joint_lanes(&r.data(), &wide, black_box(z))
                        .iter()
                        .sum::<f64>();
                }
            }
            total
        })
    });
    let mut grads = [vec![0.0; rs[0].z.len()], vec![0.0; rs[0].z.len()]];
    group.bench_function("log_joint_grad, one point at a time", |b| {
        b.iter(|| {
            let mut total = 0.0;
            for (r, ps) in rs.iter().zip(&points) {
                for z in ps {
                    total += log_joint_grad(&r.data(), &wide, black_box(z), &mut grads[0]);
                }
            }
            total
        })
    });
    group.bench_function("log_joint_grad_lanes, 2 points at a time", |b| {
        b.iter(|| {
            let mut total = 0.0;
            for (r, ps) in rs.iter().zip(&points) {
                for pair in ps.chunks(2) {
                    let [g0, g1] = &mut grads;
                    let z = [&pair[0][..], &pair[1][..]];
                    total += log_joint_grad_lanes(&r.data(), &wide, black_box(z), &mut [g0, g1])
                        .iter()
                        .sum::<f64>();
                }
            }
            total
        })
    });
    group.finish();

    let mut group = c.benchmark_group(format!("fit_region J10 S6 (per {REGIONS} regions)"));
    group.sample_size(10);
    let rs = regions(10, 6);
    for (name, family, max_refit) in [
        ("structured, no refit", Family::Structured, 0),
        ("mean-field, no refit", Family::MeanField, 0),
        ("coupled, no refit", Family::Coupled, 0),
        ("structured, default refit ladder", Family::Structured, 2),
    ] {
        let opts = FitOptions {
            vb: VbOptions {
                family,
                ..VbOptions::default()
            },
            max_refit,
            ..FitOptions::default()
        };
        group.bench_function(name, |b| b.iter(|| fit_all(&rs, &opts)));
    }
    group.finish();

    let mut group = c.benchmark_group(format!("fit_region default (per {REGIONS} regions)"));
    group.sample_size(10);
    // J = 14, S = 6 is the size of #14's per-region target.
    for (n_sites, n_samples) in [
        (14, 6),
        (5, 4),
        (20, 4),
        (100, 4),
        (5, 12),
        (20, 12),
        (100, 12),
    ] {
        let rs = regions(n_sites, n_samples);
        let id = BenchmarkId::from_parameter(format!("J{n_sites} S{n_samples}"));
        group.bench_function(id, |b| b.iter(|| fit_all(&rs, &FitOptions::default())));
    }
    // What a run does by default: the first fit from pass 1's start model, learned here from
    // 300 other regions of the same size.
    let training = common::simulate(&theta, 300, 2, 3, 14, 15.0, 0.1, 2);
    let training: Vec<(&str, RegionData)> =
        training.iter().map(|r| (r.id.as_str(), r.data())).collect();
    let learned = FitOptions {
        start: StartModel::learn(&training, &theta, &VbOptions::default(), 7),
        ..FitOptions::default()
    };
    assert!(learned.start.is_some(), "a start model from 300 regions");
    let rs = regions(14, 6);
    group.bench_function("J14 S6, learned start", |b| {
        b.iter(|| fit_all(&rs, &learned))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
