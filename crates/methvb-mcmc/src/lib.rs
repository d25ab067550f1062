//! MCMC audit of the variational fit (MODEL.md, "Cross-check against MCMC").
//!
//! [`audit_region`] samples the same per-region posterior `p(z | y, Theta)` as the VB fit with
//! NUTS (nuts-rs, one low-level chain at a time, step size and diagonal mass matrix adapted
//! during warm-up), evaluating the model's single log density
//! [`methvb_model::log_joint_grad`]. It reports, for `a`, each `b_g`, `w`, `k` and each
//! `delta_g = theta_g - theta_0` (with `theta_g = mean_j logistic(a + b_g + exp(w) v_j)` per
//! draw), the VB and NUTS means and sds, the standardised bias `(E_q - E_mcmc) / sd_mcmc`, the
//! ratio `sd_q / sd_mcmc` and the convergence diagnostics of [`diagnostics`] (rank-normalised
//! split R-hat, bulk and tail ESS; Vehtari et al. 2021). [`summarize`] pools the audits of a
//! run; [`select_for_audit`] picks the seeded sample of regions to audit.
//!
//! # Initialisation
//! By default each chain starts from a draw of the VB q with its standard deviations doubled
//! ([`InitStrategy::VbOverdispersed`]). Why not the prior: a prior draw of `k` or `w` can be
//! many posterior sds away (the posterior of a well-covered region is far narrower than the
//! prior), which spends warm-up on the approach, and with the default 500 warm-up draws makes
//! divergences and unadapted step sizes more likely without testing anything about q. Why
//! over-dispersed rather than q itself: R-hat can only reveal non-convergence (a second mode,
//! a chain stuck in a funnel) if the chains start more spread out than the posterior; q may
//! under-state the spread (mean-field does), so doubling its sds starts the chains beyond the
//! posterior's bulk in most directions. The audit's conclusions do not depend on the start
//! (draws after warm-up are from the posterior if R-hat is near 1); [`InitStrategy::Prior`]
//! remains available as an independent check.
//!
//! # Reproducibility
//! Chain `c` of region `id` is seeded by [`chain_seed`]`(seed, id, c)`, derived from the
//! model's `region_seed`, so the audit does not depend on thread count or scheduling. Chains
//! run sequentially in the calling thread (nuts-rs chains are `!Send`); parallelise over
//! regions.

pub mod audit;
pub mod diagnostics;
pub mod error;
pub mod select;
pub mod summary;

pub use audit::{
    AuditOptions, AuditRow, AuditTarget, InitStrategy, K_NUMERIC_MAX, K_PRIOR_SDS, MIN_WEIGHT_ESS,
    RegionAudit, audit_region, chain_seed,
};
pub use diagnostics::{Diagnostics, diagnose, ess_bulk, ess_tail, rhat};
pub use error::McmcError;
pub use select::{audit_priority, select_for_audit};
pub use summary::{
    AuditSummary, DELTA_Z_OFF, PROB_DM_OFF, QuantitySummary, RHAT_THRESHOLD, VerdictSummary,
    summarize,
};
