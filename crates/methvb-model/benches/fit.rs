//! Criterion benchmarks of the per-region hot paths on regions drawn from the model (2 groups,
//! ~15x coverage, 10% missing cells): the log joint with its gradient for J = 5, 20, 100 sites
//! and S = 4, 12 samples, and `fit_region` end to end (J = 10, S = 6 per family; J = 5, 20, 100
//! with S = 4, 12 with the default options).
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use methvb_model::{Family, FitOptions, VbOptions, fit_region, log_joint_grad};

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
    for n_samples in [4, 12] {
        for n_sites in [5, 20, 100] {
            let rs = regions(n_sites, n_samples);
            let id = BenchmarkId::from_parameter(format!("J{n_sites} S{n_samples}"));
            group.bench_function(id, |b| b.iter(|| fit_all(&rs, &FitOptions::default())));
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
