//! Experimental designs: sample covariates and pairs (MODEL.md, "Designs").
//!
//! A design adds `sum_c beta_c x_sc + u_pair(s)` to every `eta_js` of sample `s`: `x` is the
//! design matrix (one column per numeric covariate, centred, and one 0/1 column per
//! non-reference level of a categorical one), `u` one effect per level of the pairing column
//! (e.g. the donor), shared by the CpGs of a region. Both are region parameters (in the block of
//! `z`, see [`crate::ZLayout`]) with zero-centred normal priors whose sds belong to Theta
//! ([`DesignPrior`]). The group stays the tested factor: the reported levels and delta are at
//! `beta = 0` and `u = 0`, i.e. at the reference level of every categorical covariate, the
//! centre of every numeric one and the average pair.
//!
//! Samples that share their group, design row and pair share every likelihood term but the
//! counts: they form one *class*, and the log joint computes the per-(site, class) parts once.

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// Most distinct (group, covariates, pair) combinations a design may have: the per-class parts
/// of the log joint live in stack arrays of this size.
pub const MAX_CLASSES: usize = 64;

/// The design of a sample set, with the classes of samples it induces.
#[derive(Debug, Clone, PartialEq)]
pub struct Design {
    /// Name of each design-matrix column (`age`, `batch=B`).
    columns: Vec<String>,
    /// Design matrix, `S x P` row-major.
    x: Vec<f64>,
    /// Names of the pair levels, empty when the design has no pairing.
    pairs: Vec<String>,
    /// Pair level of each sample (empty when unpaired).
    sample_pair: Vec<usize>,
    /// Class of each sample.
    sample_class: Vec<usize>,
    /// One sample of each class (its design row, group and pair are the class's).
    class_sample: Vec<usize>,
}

impl Design {
    /// A design over `sample_group.len()` samples: `columns` names the columns of `x`
    /// (`S x P` row-major); `pairs` names the pair levels and `sample_pair` gives each
    /// sample's (both empty for no pairing).
    ///
    /// # Errors
    /// [`ModelError::Shape`] on inconsistent lengths, a non-finite value, a pair index out of
    /// range or more than [`MAX_CLASSES`] classes.
    pub fn new(
        columns: Vec<String>,
        x: Vec<f64>,
        pairs: Vec<String>,
        sample_pair: Vec<usize>,
        sample_group: &[usize],
    ) -> Result<Self, ModelError> {
        let s_n = sample_group.len();
        let shape = |what| Err(ModelError::Shape { what });
        if x.len() != s_n * columns.len() {
            return shape("design matrix must have n_samples * n_columns values");
        }
        if x.iter().any(|v| !v.is_finite()) {
            return shape("design matrix values must be finite");
        }
        if pairs.is_empty() != sample_pair.is_empty()
            || (!pairs.is_empty() && sample_pair.len() != s_n)
            || sample_pair.iter().any(|&p| p >= pairs.len())
        {
            return shape("every sample needs a pair level below the number of pairs");
        }
        let p_n = columns.len();
        let key = |s: usize| {
            let pair = sample_pair.get(s).copied();
            (sample_group[s], pair, &x[s * p_n..(s + 1) * p_n])
        };
        let mut class_sample: Vec<usize> = Vec::new();
        let mut sample_class = Vec::with_capacity(s_n);
        for s in 0..s_n {
            let class = match class_sample.iter().position(|&t| key(t) == key(s)) {
                Some(c) => c,
                None => {
                    class_sample.push(s);
                    class_sample.len() - 1
                }
            };
            sample_class.push(class);
        }
        if class_sample.len() > MAX_CLASSES {
            return shape("a design may have at most 64 distinct (group, covariates, pair) rows");
        }
        Ok(Self {
            columns,
            x,
            pairs,
            sample_pair,
            sample_class,
            class_sample,
        })
    }

    /// Number of samples.
    pub fn n_samples(&self) -> usize {
        self.sample_class.len()
    }

    /// Number of design-matrix columns `P`.
    pub fn n_covariates(&self) -> usize {
        self.columns.len()
    }

    /// Number of pair levels `Q` (0 without pairing).
    pub fn n_pairs(&self) -> usize {
        self.pairs.len()
    }

    /// Names of the design-matrix columns.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Names of the pair levels.
    pub fn pairs(&self) -> &[String] {
        &self.pairs
    }

    /// Design row of sample `s`.
    pub fn row(&self, s: usize) -> &[f64] {
        let p = self.columns.len();
        &self.x[s * p..(s + 1) * p]
    }

    /// Pair level of sample `s`, if the design is paired.
    pub fn pair(&self, s: usize) -> Option<usize> {
        self.sample_pair.get(s).copied()
    }

    /// Class of each sample.
    pub fn sample_class(&self) -> &[usize] {
        &self.sample_class
    }

    /// One sample of each class.
    pub fn class_sample(&self) -> &[usize] {
        &self.class_sample
    }

    /// `sum_c beta_c x_sc + u_pair(s)` of sample `s`, given the design coordinates of `z`
    /// (`beta` then `u`, see [`crate::ZLayout::beta`]).
    #[inline]
    pub fn offset(&self, s: usize, beta: &[f64], u: &[f64]) -> f64 {
        let fixed: f64 = self.row(s).iter().zip(beta).map(|(x, b)| x * b).sum();
        fixed + self.pair(s).map_or(0.0, |p| u[p])
    }
}

/// Prior of the design coordinates of a region: `beta_c ~ N(0, sd_c^2)` for each design-matrix
/// column and `u_p ~ N(0, pair_sd^2)` for each pair level. Empirical Bayes learns the sds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesignPrior {
    /// One entry per design-matrix column, in the design's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub covariates: Vec<CovariatePrior>,
    /// Sd of the pair effects (logit scale); `None` without pairing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair_sd: Option<f64>,
}

/// The prior sd of one design-matrix column's coefficient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CovariatePrior {
    /// The column's name, as in [`Design::columns`].
    pub column: String,
    /// Prior sd of its coefficient (logit scale per unit of the column).
    pub sd: f64,
}

/// Starting prior sd of a covariate coefficient for empirical Bayes: a batch shifting
/// methylation by up to ~25 percentage points at 50%.
pub const INITIAL_COVARIATE_SD: f64 = 1.0;
/// Starting prior sd of the pair effects.
pub const INITIAL_PAIR_SD: f64 = 0.5;

impl DesignPrior {
    /// The starting prior of empirical Bayes for `design` (`None`: no design).
    pub fn initial(design: Option<&Design>) -> Self {
        let Some(d) = design else {
            return Self::default();
        };
        Self {
            covariates: d
                .columns()
                .iter()
                .map(|c| CovariatePrior {
                    column: c.clone(),
                    sd: INITIAL_COVARIATE_SD,
                })
                .collect(),
            pair_sd: (d.n_pairs() > 0).then_some(INITIAL_PAIR_SD),
        }
    }

    /// Whether there is no design term.
    pub fn is_empty(&self) -> bool {
        self.covariates.is_empty() && self.pair_sd.is_none()
    }

    /// Checks that every sd is finite and positive.
    pub fn validate(&self) -> Result<(), ModelError> {
        let sds = self.covariates.iter().map(|c| c.sd).chain(self.pair_sd);
        if sds.into_iter().any(|s| !(s.is_finite() && s > 0.0)) {
            return Err(ModelError::Theta(format!(
                "design prior sds must be finite and > 0: {self:?}"
            )));
        }
        Ok(())
    }

    /// Checks that this prior is the one of `design` (same columns in the same order, a pair
    /// sd exactly when the design is paired), so that a `hyper.json` learned with another
    /// design is refused.
    pub fn check_matches(&self, design: Option<&Design>) -> Result<(), ModelError> {
        let (columns, paired): (Vec<&str>, bool) = match design {
            Some(d) => (
                d.columns().iter().map(String::as_str).collect(),
                d.n_pairs() > 0,
            ),
            None => (Vec::new(), false),
        };
        let have: Vec<&str> = self.covariates.iter().map(|c| c.column.as_str()).collect();
        if have != columns || self.pair_sd.is_some() != paired {
            return Err(ModelError::Theta(format!(
                "the hyperparameters are for the design columns {have:?}{} but the data's \
                 design has {columns:?}{}; learn Theta with the same --covariates and --pair-by",
                if self.pair_sd.is_some() {
                    " with pairs"
                } else {
                    ""
                },
                if paired { " with pairs" } else { "" },
            )));
        }
        Ok(())
    }

    /// Prior sd of design-matrix column `c`.
    #[inline]
    pub fn covariate_sd(&self, c: usize) -> f64 {
        self.covariates[c].sd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_with_the_same_group_row_and_pair_share_a_class() {
        // 2 vs 2, batch column: control A, B; case A, A.
        let groups = [0, 0, 1, 1];
        let d = Design::new(
            vec!["batch=B".into()],
            vec![0.0, 1.0, 0.0, 0.0],
            vec![],
            vec![],
            &groups,
        )
        .unwrap();
        assert_eq!(d.sample_class(), &[0, 1, 2, 2]);
        assert_eq!(d.class_sample(), &[0, 1, 2]);
        assert_eq!(d.offset(1, &[0.7], &[]), 0.7);
        // Paired: every sample its own class, the pair effect added.
        let d = Design::new(
            vec![],
            vec![],
            vec!["d1".into(), "d2".into()],
            vec![0, 1, 0, 1],
            &groups,
        )
        .unwrap();
        assert_eq!(d.sample_class(), &[0, 1, 2, 3]);
        assert_eq!(d.offset(2, &[], &[0.3, -0.2]), 0.3);
    }

    #[test]
    fn inconsistent_designs_are_refused() {
        let groups = [0, 1];
        assert!(Design::new(vec!["x".into()], vec![0.0], vec![], vec![], &groups).is_err());
        assert!(
            Design::new(
                vec!["x".into()],
                vec![0.0, f64::NAN],
                vec![],
                vec![],
                &groups
            )
            .is_err()
        );
        assert!(Design::new(vec![], vec![], vec!["p".into()], vec![0, 1], &groups).is_err());
        let many: Vec<usize> = (0..65).map(|s| s % 2).collect();
        let x: Vec<f64> = (0..65).map(f64::from).collect();
        assert!(Design::new(vec!["age".into()], x, vec![], vec![], &many).is_err());
    }

    #[test]
    fn a_prior_for_another_design_is_refused() {
        let groups = [0, 1];
        let d = Design::new(vec!["age".into()], vec![-1.0, 1.0], vec![], vec![], &groups).unwrap();
        let prior = DesignPrior::initial(Some(&d));
        prior.check_matches(Some(&d)).unwrap();
        assert!(prior.check_matches(None).is_err());
        assert!(DesignPrior::default().check_matches(Some(&d)).is_err());
        assert!(DesignPrior::default().check_matches(None).is_ok());
    }
}
