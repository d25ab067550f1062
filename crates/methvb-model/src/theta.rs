//! Global hyperparameters `Theta` shared by all regions (MODEL.md, "Global hyperparameters";
//! the prior of the group effects is the adaptive scale mixture of docs/model.md).

use serde::{Deserialize, Serialize};

use crate::design::DesignPrior;

/// Standard deviation (logit scale) of the "no difference" component of the group-effect prior
/// unless the user fixes another: a group difference of 0.05 on the logit scale is at most
/// 1.25 percentage points of methylation.
pub const NULL_SD: f64 = 0.05;

/// Smallest and largest standard deviation of the effect components of the default grid, and
/// the ratio between neighbours (ash's default, Stephens 2017): dense enough that the mixture
/// follows any unimodal effect distribution, wide enough for a difference between 2% and 98%
/// methylation (8 logit units).
pub const GRID_SD_RANGE: (f64, f64) = (0.1, 6.5);
/// Ratio of neighbouring grid standard deviations.
pub const GRID_RATIO: f64 = std::f64::consts::SQRT_2;

/// Prior of the group effects of a region: a scale mixture of zero-centred normals,
/// `beta ~ sum_k weight_k N(0, sd_k^2 I)`, shared by the `G - 1` contrast coordinates of the
/// region (one component per region, so the prior is the same whichever group is the
/// reference). Component 0 is the "no difference" component (the spike); the others are a grid
/// whose weights empirical Bayes learns (adaptive shrinkage).
///
/// `sd_k` is the prior standard deviation of the difference between any two groups on the
/// logit scale (see [`crate::likelihood::GroupContrasts`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleMixture {
    /// Standard deviations, component 0 the null; strictly increasing.
    pub sd: Vec<f64>,
    /// Weights, summing to 1.
    pub weight: Vec<f64>,
}

impl ScaleMixture {
    /// The default grid: the null at `null_sd`, then `GRID_SD_RANGE` in steps of
    /// `GRID_RATIO` (components narrower than twice the null are left out), with weight
    /// `null_weight` on the null and the rest spread evenly.
    pub fn grid(null_sd: f64, null_weight: f64) -> Self {
        let mut sd = vec![null_sd];
        let mut s = GRID_SD_RANGE.0;
        while s <= GRID_SD_RANGE.1 * (1.0 + 1e-9) {
            if s >= 2.0 * null_sd {
                sd.push(s);
            }
            s *= GRID_RATIO;
        }
        let rest = (1.0 - null_weight) / (sd.len() - 1).max(1) as f64;
        let weight = (0..sd.len())
            .map(|k| if k == 0 { null_weight } else { rest })
            .collect();
        Self { sd, weight }
    }

    /// The two-component spike-and-slab `pi0 N(0, sd_b0^2) + (1 - pi0) N(0, sd_b1^2)`.
    pub fn spike_slab(pi0: f64, sd_b0: f64, sd_b1: f64) -> Self {
        Self {
            sd: vec![sd_b0, sd_b1],
            weight: vec![pi0, 1.0 - pi0],
        }
    }

    /// A single normal `N(0, sd^2)`.
    pub fn single(sd: f64) -> Self {
        Self {
            sd: vec![sd],
            weight: vec![1.0],
        }
    }

    /// Number of components.
    pub fn len(&self) -> usize {
        self.sd.len()
    }

    /// Whether there is no component (never true of a validated mixture).
    pub fn is_empty(&self) -> bool {
        self.sd.is_empty()
    }

    /// Prior weight of the null component.
    pub fn null_weight(&self) -> f64 {
        self.weight.first().copied().unwrap_or(0.0)
    }

    /// Widest standard deviation.
    pub fn max_sd(&self) -> f64 {
        self.sd.iter().copied().fold(0.0, f64::max)
    }

    /// Checks that there is at least one component, every sd is finite, positive and larger
    /// than the one before, and the weights are non-negative and sum to 1 (within 1e-6).
    pub fn validate(&self) -> Result<(), crate::ModelError> {
        let err = |what: &str| {
            Err(crate::ModelError::Theta(format!(
                "b_prior: {what}: {self:?}"
            )))
        };
        if self.sd.is_empty() || self.sd.len() != self.weight.len() {
            return err("needs as many weights as sds, at least one");
        }
        if self.sd.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return err("every sd must be finite and > 0");
        }
        if self.sd.windows(2).any(|w| w[1] <= w[0]) {
            return err("sds must increase strictly (the first is the null component)");
        }
        if self.weight.iter().any(|w| !(w.is_finite() && *w >= 0.0)) {
            return err("weights must be finite and >= 0");
        }
        if (self.weight.iter().sum::<f64>() - 1.0).abs() > 1e-6 {
            return err("weights must sum to 1");
        }
        Ok(())
    }
}

/// Global hyperparameters of the hierarchical beta-binomial model, learned by empirical Bayes.
///
/// Serialised to JSON with exactly these key names, so shards of one genome can share them.
/// JSON written before the scale-mixture prior (`pi0`, `sd_b0`, `sd_b1` instead of
/// `b_prior`) is read as the two-component [`ScaleMixture::spike_slab`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ThetaJson")]
pub struct Theta {
    /// Mean of the baseline methylation `a` (logit scale; the mean of the groups' levels).
    pub mu_a: f64,
    /// Standard deviation of `a` across regions.
    pub sd_a: f64,
    /// Prior of the group effects (logit scale).
    pub b_prior: ScaleMixture,
    /// Mean of `w`, the log scale of site-to-site variation.
    pub mu_w: f64,
    /// Standard deviation of `w`.
    pub sd_w: f64,
    /// Mean of `k`, the log concentration.
    pub mu_k: f64,
    /// Standard deviation of `k`.
    pub sd_k: f64,
    /// Prior of the design coefficients and pair effects (empty without a design; omitted
    /// from the JSON then).
    #[serde(default, skip_serializing_if = "DesignPrior::is_empty")]
    pub design: DesignPrior,
}

/// The accepted JSON forms of [`Theta`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThetaJson {
    mu_a: f64,
    sd_a: f64,
    #[serde(default)]
    b_prior: Option<ScaleMixture>,
    #[serde(default)]
    pi0: Option<f64>,
    #[serde(default)]
    sd_b0: Option<f64>,
    #[serde(default)]
    sd_b1: Option<f64>,
    mu_w: f64,
    sd_w: f64,
    mu_k: f64,
    sd_k: f64,
    #[serde(default)]
    design: DesignPrior,
}

impl TryFrom<ThetaJson> for Theta {
    type Error = String;

    fn try_from(j: ThetaJson) -> Result<Self, String> {
        let b_prior = match (j.b_prior, j.pi0, j.sd_b0, j.sd_b1) {
            (Some(m), None, None, None) => m,
            (None, Some(pi0), Some(sd_b0), Some(sd_b1)) => {
                ScaleMixture::spike_slab(pi0, sd_b0, sd_b1)
            }
            _ => {
                return Err(
                    "give either b_prior {sd: [...], weight: [...]} or all of pi0, \
                            sd_b0, sd_b1 (the two-component form), not both"
                        .into(),
                );
            }
        };
        Ok(Theta {
            mu_a: j.mu_a,
            sd_a: j.sd_a,
            b_prior,
            mu_w: j.mu_w,
            sd_w: j.sd_w,
            mu_k: j.mu_k,
            sd_k: j.sd_k,
            design: j.design,
        })
    }
}

impl Default for Theta {
    /// A weakly informative starting point for empirical Bayes.
    fn default() -> Self {
        Self {
            mu_a: 0.0,
            sd_a: 2.0,
            b_prior: ScaleMixture::grid(NULL_SD, 0.9),
            mu_w: -1.0,
            sd_w: 1.0,
            mu_k: 3.0,
            sd_k: 1.0,
            design: DesignPrior::default(),
        }
    }
}

impl Theta {
    /// Checks that every field is finite, every sd is positive and the prior of `b` is a
    /// valid mixture.
    pub fn validate(&self) -> Result<(), crate::ModelError> {
        let t = self;
        let fields = [t.mu_a, t.sd_a, t.mu_w, t.sd_w, t.mu_k, t.sd_k];
        if fields.iter().any(|v| !v.is_finite()) {
            return Err(crate::ModelError::Theta(format!(
                "non-finite value in {t:?}"
            )));
        }
        if [t.sd_a, t.sd_w, t.sd_k].iter().any(|&s| s <= 0.0) {
            return Err(crate::ModelError::Theta(format!(
                "standard deviations must be > 0: {t:?}"
            )));
        }
        t.b_prior.validate()?;
        t.design.validate()
    }

    /// The same Theta with the prior of `b` replaced by `b_prior`.
    pub fn with_b_prior(&self, b_prior: ScaleMixture) -> Theta {
        Theta {
            b_prior,
            ..self.clone()
        }
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
        // Serialising plain f64 fields and vectors cannot fail (serde_json writes non-finite
        // floats as null rather than erroring).
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_grid_is_valid_and_spans_the_range() {
        let g = ScaleMixture::grid(NULL_SD, 0.9);
        g.validate().unwrap();
        assert_eq!(g.sd[0], NULL_SD);
        assert!((g.sd[1] - 0.1).abs() < 1e-12);
        assert!(g.max_sd() <= GRID_SD_RANGE.1 && g.max_sd() > GRID_SD_RANGE.1 / GRID_RATIO);
        assert_eq!(g.null_weight(), 0.9);
        // A wide null drops the grid points it would overlap.
        let wide = ScaleMixture::grid(0.2, 0.5);
        assert!(wide.sd[1] >= 0.4, "{:?}", wide.sd);
    }

    #[test]
    fn json_round_trips_and_reads_the_two_component_form() {
        let t = Theta::default();
        assert_eq!(Theta::from_json(&t.to_json()).unwrap(), t);
        let old = r#"{"mu_a":0.1,"sd_a":2.0,"pi0":0.9,"sd_b0":0.05,"sd_b1":1.2,
                      "mu_w":-1.0,"sd_w":1.0,"mu_k":3.0,"sd_k":1.0}"#;
        let t = Theta::from_json(old).unwrap();
        assert_eq!(t.b_prior, ScaleMixture::spike_slab(0.9, 0.05, 1.2));
        let both = old.replace(
            "\"mu_w\"",
            "\"b_prior\":{\"sd\":[1.0],\"weight\":[1.0]},\"mu_w\"",
        );
        assert!(Theta::from_json(&both).is_err());
        let bad = ScaleMixture {
            sd: vec![0.5, 0.2],
            weight: vec![0.5, 0.5],
        };
        assert!(Theta::default().with_b_prior(bad).validate().is_err());
    }
}
