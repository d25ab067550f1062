//! The hierarchical beta-binomial model of MODEL.md, fitted per region by stochastic
//! variational Bayes, with empirical-Bayes hyperparameters. No file I/O lives here.
//!
//! Entry points: [`fit_region`] (one region, Theta fixed), [`eb::fit_hyper`] (learn Theta from a
//! sample of regions), [`call_by_pep`] / [`PepCut`] (Bayesian FDR calls), [`log_joint_grad`] (the model's
//! single log density). What the code does relative to MODEL.md is in `docs/model.md`.

pub mod calls;
pub mod design;
pub mod eb;
pub mod error;
pub mod likelihood;
pub mod linalg;
pub mod posterior;
pub mod psis;
pub mod start;
pub mod summary;
pub mod theta;
pub mod vb;

pub use calls::{PepCut, call_by_pep};
pub use design::{Design, DesignPrior};
pub use eb::{EbOptions, HyperFit, fit_hyper};
pub use error::ModelError;
pub use likelihood::{RegionData, ZLayout, log_joint, log_joint_grad};
pub use start::StartModel;
pub use summary::{
    DeltaSummary, FitOptions, PosteriorSummary, PredictiveCheck, RegionFit, fit_region,
};
pub use theta::{ScaleMixture, Theta};
pub use vb::{Family, GaussianQ, VbFit, VbOptions, region_seed};
