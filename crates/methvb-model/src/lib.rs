//! The hierarchical beta-binomial model of MODEL.md, fitted per region by stochastic
//! variational Bayes, with empirical-Bayes hyperparameters. No file I/O lives here.

pub mod theta;

pub use theta::Theta;
