//! The experimental design of a run: sample-sheet columns as covariates and pairs
//! (`--covariates`, `--pair-by`), checked and turned into the model's [`Design`].
//!
//! A covariate column whose every value parses as a number enters linearly, centred on its
//! mean over the samples; any other column is categorical, its first level in sheet order the
//! reference and one 0/1 column per other level (`batch=B`). So the reported group levels and
//! delta are those at the reference level of every categorical covariate, the mean of every
//! numeric one and the average pair (pair effects are zero-centred).

use methvb_io::sheet::SampleSheet;
use methvb_model::Design;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// The design the user asked for: column names of the sample sheet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesignConfig {
    /// Covariate columns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub covariates: Vec<String>,
    /// The pairing column (e.g. the donor): one effect per level, shared by a region's CpGs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair_by: Option<String>,
}

impl DesignConfig {
    /// Whether no covariate and no pairing was asked for.
    pub fn is_empty(&self) -> bool {
        self.covariates.is_empty() && self.pair_by.is_none()
    }
}

/// The design `input` asks for, checked against its sheet without reading any sample
/// (`methvb check`): its record, or `None` when it asks for none.
///
/// # Errors
/// As [`build`], and a sheet that cannot be read.
pub fn check_sheet(input: &crate::config::InputConfig) -> Result<Option<DesignRecord>> {
    if input.design.is_empty() {
        return Ok(None);
    }
    let sheet = input.sheet()?;
    let (_, model_group) = crate::samples::model_numbering(&sheet);
    Ok(build(&sheet, &input.design, &model_group)?.map(|b| b.record))
}

/// How one covariate entered the design (recorded in `run.json` and the Parquet metadata).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Covariate {
    /// A numeric column, centred: its coefficient is per unit of the column.
    Numeric {
        /// Column name as given.
        name: String,
        /// The mean subtracted (delta is reported at this value).
        centre: f64,
    },
    /// A categorical column: one 0/1 design column per level but the reference.
    Categorical {
        /// Column name as given.
        name: String,
        /// Levels in sheet order; the first is the reference (delta is reported there).
        levels: Vec<String>,
    },
}

/// The built design with its description.
#[derive(Debug, Clone)]
pub struct BuiltDesign {
    /// What the model uses.
    pub design: Design,
    /// What the outputs record.
    pub record: DesignRecord,
}

/// The description of a design, as `run.json` and the Parquet metadata (`methvb.design`)
/// record it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesignRecord {
    /// The covariates, in the order given.
    pub covariates: Vec<Covariate>,
    /// The design-matrix columns (one coefficient each, named as in `hyper.json`).
    pub columns: Vec<String>,
    /// The pairing column and its levels in sheet order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair_by: Option<String>,
    /// Levels of the pairing column.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pairs: Vec<String>,
    /// Where delta is evaluated, in words.
    pub delta_at: String,
}

/// A missing value in a covariate or pairing column.
fn is_missing(v: &str) -> bool {
    v.is_empty() || ["na", "nan", "null", "."].contains(&v.to_ascii_lowercase().as_str())
}

/// Builds the design `cfg` asks for from `sheet` (`None` when it asks for none);
/// `model_group` is the model's group of each sample.
///
/// # Errors
/// A sheet error naming the line for: a column that does not exist, a missing value, a
/// covariate with one value in every sample, a covariate fully confounded with the group or
/// with the covariates before it, a pairing column also given as a covariate, and a pair level
/// with a single sample.
pub fn build(
    sheet: &SampleSheet,
    cfg: &DesignConfig,
    model_group: &[usize],
) -> Result<Option<BuiltDesign>> {
    if cfg.is_empty() {
        return Ok(None);
    }
    let lines: Vec<u64> = sheet.samples.iter().map(|s| s.line).collect();
    let column = |name: &str| -> Result<Vec<&str>> {
        let values = sheet.column(name)?;
        if let Some(s) = values.iter().position(|v| is_missing(v)) {
            return Err(sheet
                .error(
                    lines[s],
                    format!(
                        "sample {}: no value in design column {name:?} ({:?}); every sample \
                         needs one (drop the sample or the column)",
                        sheet.samples[s].name, values[s]
                    ),
                )
                .into());
        }
        Ok(values)
    };
    let s_n = sheet.samples.len();
    let mut covariates = Vec::new();
    let mut columns: Vec<String> = Vec::new();
    // Design-matrix columns, each of length S.
    let mut x_cols: Vec<Vec<f64>> = Vec::new();
    for (c, name) in cfg.covariates.iter().enumerate() {
        if cfg.covariates[..c]
            .iter()
            .any(|o| o.eq_ignore_ascii_case(name))
        {
            return Err(sheet
                .error(0, format!("covariate {name:?} is given twice"))
                .into());
        }
        let values = column(name)?;
        let first = values[0];
        if values.iter().all(|v| *v == first) {
            return Err(sheet
                .error(
                    0,
                    format!(
                        "covariate {name:?} is {first:?} in every sample, so its effect cannot \
                         be told from the baseline; drop it from --covariates"
                    ),
                )
                .into());
        }
        let numbers: Option<Vec<f64>> = values
            .iter()
            .map(|v| v.parse::<f64>().ok().filter(|x| x.is_finite()))
            .collect();
        let added: Vec<(String, Vec<f64>)> = match numbers {
            Some(xs) => {
                let centre = xs.iter().sum::<f64>() / s_n as f64;
                covariates.push(Covariate::Numeric {
                    name: name.clone(),
                    centre,
                });
                vec![(name.clone(), xs.iter().map(|x| x - centre).collect())]
            }
            None => {
                let mut levels: Vec<String> = Vec::new();
                for v in &values {
                    if !levels.iter().any(|l| l == v) {
                        levels.push((*v).to_string());
                    }
                }
                let dummies = levels[1..]
                    .iter()
                    .map(|l| {
                        let col = values.iter().map(|v| f64::from(u8::from(v == l))).collect();
                        (format!("{name}={l}"), col)
                    })
                    .collect();
                covariates.push(Covariate::Categorical {
                    name: name.clone(),
                    levels,
                });
                dummies
            }
        };
        for (col_name, col) in added {
            check_not_confounded(sheet, name, model_group, &x_cols, &col)?;
            columns.push(col_name);
            x_cols.push(col);
        }
    }
    let (pairs, sample_pair) = match &cfg.pair_by {
        None => (Vec::new(), Vec::new()),
        Some(name) => {
            if cfg.covariates.iter().any(|c| c.eq_ignore_ascii_case(name)) {
                return Err(sheet
                    .error(
                        0,
                        format!(
                            "column {name:?} is both a covariate and the pairing column; give \
                             it to one of --covariates and --pair-by"
                        ),
                    )
                    .into());
            }
            let values = column(name)?;
            let mut levels: Vec<String> = Vec::new();
            let index: Vec<usize> = values
                .iter()
                .map(|v| match levels.iter().position(|l| l == v) {
                    Some(p) => p,
                    None => {
                        levels.push((*v).to_string());
                        levels.len() - 1
                    }
                })
                .collect();
            for (p, level) in levels.iter().enumerate() {
                let members: Vec<usize> = (0..s_n).filter(|&s| index[s] == p).collect();
                if let [only] = members[..] {
                    return Err(sheet
                        .error(
                            lines[only],
                            format!(
                                "{name} {level:?} has a single sample ({}); every level of \
                                 --pair-by needs two or more samples (fix the sheet or drop \
                                 the sample)",
                                sheet.samples[only].name
                            ),
                        )
                        .into());
                }
            }
            (levels, index)
        }
    };
    let x: Vec<f64> = (0..s_n)
        .flat_map(|s| x_cols.iter().map(move |c| c[s]))
        .collect();
    let design = Design::new(columns.clone(), x, pairs.clone(), sample_pair, model_group)
        .map_err(|e| sheet.error(0, format!("design: {e}")))?;
    let delta_at = describe_delta(&covariates, cfg.pair_by.as_deref());
    Ok(Some(BuiltDesign {
        design,
        record: DesignRecord {
            covariates,
            columns,
            pair_by: cfg.pair_by.clone(),
            pairs,
            delta_at,
        },
    }))
}

fn describe_delta(covariates: &[Covariate], pair_by: Option<&str>) -> String {
    let mut parts: Vec<String> = covariates
        .iter()
        .map(|c| match c {
            Covariate::Numeric { name, centre } => format!("{name} = {centre} (its mean)"),
            Covariate::Categorical { name, levels } => {
                format!("{name} = {} (its reference level)", levels[0])
            }
        })
        .collect();
    if let Some(p) = pair_by {
        parts.push(format!("the average {p} (pair effects at 0)"));
    }
    format!("group difference at {}", parts.join(", "))
}

/// Errors when design-matrix column `col` of covariate `name` is a linear combination of the
/// intercept, the group indicators and the columns before it: its coefficient, or the group's,
/// could not be told apart from the data.
fn check_not_confounded(
    sheet: &SampleSheet,
    name: &str,
    model_group: &[usize],
    before: &[Vec<f64>],
    col: &[f64],
) -> Result<()> {
    let s_n = col.len();
    let n_groups = model_group.iter().max().map_or(1, |g| g + 1);
    let mut basis: Vec<Vec<f64>> = Vec::new();
    let add = |v: Vec<f64>, basis: &mut Vec<Vec<f64>>| -> bool {
        let r = residual(&v, basis);
        let norm = r.iter().map(|x| x * x).sum::<f64>().sqrt();
        let scale = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-300);
        if norm > 1e-9 * scale {
            basis.push(r.iter().map(|x| x / norm).collect());
            true
        } else {
            false
        }
    };
    for g in 0..n_groups {
        let ind = model_group
            .iter()
            .map(|&x| f64::from(u8::from(x == g)))
            .collect();
        add(ind, &mut basis);
    }
    let with_groups = basis.clone();
    if !add(col.to_vec(), &mut basis.clone()) {
        return Err(sheet
            .error(
                0,
                format!(
                    "covariate {name:?} is fully confounded with the group (its values follow \
                     the groups exactly), so the group difference cannot be told from it; drop \
                     it from --covariates or fix the sheet"
                ),
            )
            .into());
    }
    let mut all = with_groups;
    for b in before {
        add(b.clone(), &mut all);
    }
    if !add(col.to_vec(), &mut all) {
        return Err(sheet
            .error(
                0,
                format!(
                    "covariate {name:?} is a combination of the group and the covariates \
                     before it ({s_n} samples), so its effect cannot be estimated; drop it from \
                     --covariates"
                ),
            )
            .into());
    }
    Ok(())
}

/// `v` minus its projection on the orthonormal `basis`.
fn residual(v: &[f64], basis: &[Vec<f64>]) -> Vec<f64> {
    let mut r = v.to_vec();
    for b in basis {
        let dot: f64 = r.iter().zip(b).map(|(x, y)| x * y).sum();
        for (x, y) in r.iter_mut().zip(b) {
            *x -= dot * y;
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn sheet(text: &str) -> SampleSheet {
        SampleSheet::parse(Path::new("s.tsv"), Path::new("."), text).unwrap()
    }

    const SHEET: &str = "sample\tgroup\tpath\tbatch\tage\tdonor\n\
        c1\tcontrol\ta\tA\t30\td1\n\
        c2\tcontrol\tb\tA\t40\td2\n\
        t1\tcase\tc\tB\t35\td1\n\
        t2\tcase\td\tA\t55\td2\n";

    fn cfg(covariates: &[&str], pair_by: Option<&str>) -> DesignConfig {
        DesignConfig {
            covariates: covariates.iter().map(|c| c.to_string()).collect(),
            pair_by: pair_by.map(str::to_string),
        }
    }

    fn error(text: &str, c: DesignConfig) -> String {
        let s = sheet(text);
        format!("{}", build(&s, &c, &[1, 1, 0, 0]).unwrap_err())
    }

    #[test]
    fn numeric_columns_are_centred_and_categorical_ones_dummy_coded() {
        let s = sheet(SHEET);
        let built = build(&s, &cfg(&["batch", "age"], Some("donor")), &[1, 1, 0, 0])
            .unwrap()
            .unwrap();
        assert_eq!(built.record.columns, ["batch=B", "age"]);
        assert_eq!(built.design.row(2), &[1.0, 35.0 - 40.0]);
        assert_eq!(built.design.row(0), &[0.0, -10.0]);
        assert_eq!(built.record.pairs, ["d1", "d2"]);
        assert_eq!(built.design.pair(3), Some(1));
        assert!(
            built.record.delta_at.contains("batch = A")
                && built.record.delta_at.contains("age = 40"),
            "{}",
            built.record.delta_at
        );
        assert!(
            build(&s, &DesignConfig::default(), &[1, 1, 0, 0])
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn design_problems_are_errors_naming_the_sheet_and_the_fix() {
        let e = error(SHEET, cfg(&["sex"], None));
        assert!(
            e.contains("s.tsv")
                && e.contains("no column \"sex\"")
                && e.contains("batch, age, donor"),
            "{e}"
        );
        let missing = SHEET.replace("t2\tcase\td\tA\t55", "t2\tcase\td\tNA\t55");
        let e = error(&missing, cfg(&["batch"], None));
        assert!(
            e.contains("s.tsv:5:") && e.contains("t2") && e.contains("no value"),
            "{e}"
        );
        let constant = SHEET.replace("\tB\t35", "\tA\t35");
        let e = error(&constant, cfg(&["batch"], None));
        assert!(
            e.contains("\"A\" in every sample") && e.contains("drop it"),
            "{e}"
        );
        let confounded = SHEET
            .replace("c1\tcontrol\ta\tA", "c1\tcontrol\ta\tB")
            .replace("c2\tcontrol\tb\tA", "c2\tcontrol\tb\tB")
            .replace("t1\tcase\tc\tB", "t1\tcase\tc\tA");
        let e = error(&confounded, cfg(&["batch"], None));
        assert!(e.contains("fully confounded with the group"), "{e}");
        let single = SHEET.replace("t2\tcase\td\tA\t55\td2", "t2\tcase\td\tA\t55\td3");
        let e = error(&single, cfg(&[], Some("donor")));
        assert!(
            e.contains("s.tsv:3:") && e.contains("\"d2\" has a single sample (c2)"),
            "{e}"
        );
        let e = error(SHEET, cfg(&["donor"], Some("donor")));
        assert!(e.contains("both a covariate and the pairing column"), "{e}");
        let e = error(SHEET, cfg(&["group"], None));
        assert!(e.contains("no column \"group\""), "{e}");
    }
}
