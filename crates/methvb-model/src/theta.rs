//! Global hyperparameters `Theta` shared by all regions (MODEL.md, "Global hyperparameters").

use serde::{Deserialize, Serialize};

/// Global hyperparameters of the hierarchical beta-binomial model, learned by empirical Bayes.
///
/// Serialised to JSON with exactly these key names, so shards of one genome can share them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Theta {
    /// Mean of the baseline methylation `a` (logit scale).
    pub mu_a: f64,
    /// Standard deviation of `a` across regions.
    pub sd_a: f64,
    /// Prior probability that a group effect `b_g` comes from the null (spike) component.
    pub pi0: f64,
    /// Standard deviation of the null (spike) component of `b_g`; kept above a floor.
    pub sd_b0: f64,
    /// Standard deviation of the effect (slab) component of `b_g`.
    pub sd_b1: f64,
    /// Mean of `w`, the log scale of site-to-site variation.
    pub mu_w: f64,
    /// Standard deviation of `w`.
    pub sd_w: f64,
    /// Mean of `k`, the log concentration.
    pub mu_k: f64,
    /// Standard deviation of `k`.
    pub sd_k: f64,
}

impl Default for Theta {
    /// A weakly informative starting point for empirical Bayes.
    fn default() -> Self {
        Self {
            mu_a: 0.0,
            sd_a: 2.0,
            pi0: 0.9,
            sd_b0: 0.1,
            sd_b1: 1.0,
            mu_w: -1.0,
            sd_w: 1.0,
            mu_k: 3.0,
            sd_k: 1.0,
        }
    }
}

impl Theta {
    /// Checks that every field is finite, every sd is positive and `0 < pi0 < 1`.
    pub fn validate(&self) -> Result<(), crate::ModelError> {
        let t = self;
        let fields = [
            t.mu_a, t.sd_a, t.pi0, t.sd_b0, t.sd_b1, t.mu_w, t.sd_w, t.mu_k, t.sd_k,
        ];
        if fields.iter().any(|v| !v.is_finite()) {
            return Err(crate::ModelError::Theta(format!(
                "non-finite value in {t:?}"
            )));
        }
        if [t.sd_a, t.sd_b0, t.sd_b1, t.sd_w, t.sd_k]
            .iter()
            .any(|&s| s <= 0.0)
        {
            return Err(crate::ModelError::Theta(format!(
                "standard deviations must be > 0: {t:?}"
            )));
        }
        if !(t.pi0 > 0.0 && t.pi0 < 1.0) {
            return Err(crate::ModelError::Theta(format!(
                "pi0 must be in (0, 1): {t:?}"
            )));
        }
        Ok(())
    }

    /// Parses Theta from JSON text (keys exactly as the field names).
    pub fn from_json(text: &str) -> Result<Self, crate::ModelError> {
        let t: Theta =
            serde_json::from_str(text).map_err(|e| crate::ModelError::Theta(e.to_string()))?;
        t.validate()?;
        Ok(t)
    }

    /// Serialises Theta to pretty JSON.
    pub fn to_json(&self) -> String {
        // Serialising a struct of plain f64 fields cannot fail (serde_json writes non-finite
        // floats as null rather than erroring).
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}
