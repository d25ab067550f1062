//! The Laplace approximation of one region's posterior: Newton steps to the mode of the log
//! joint, then the Gaussian with the inverse negative Hessian there as its covariance (issue
//! #14's "second-order steps from a Laplace start"; docs/model.md, "Variational fit").
//!
//! The negative Hessian of the log joint is an arrowhead: a dense region-level block, each site
//! effect `v_j` coupled to the block, and no site effect to another (a cell depends on one
//! `v_j`, and their prior is independent). It is built from central differences of the analytic
//! gradient along each block coordinate and along all site effects at once, `2 (n_block + 1)`
//! gradients, and solved through the Schur complement of the site effects. Its inverse is
//! exactly a [`Family::Coupled`] q.

use crate::Theta;
use crate::likelihood::{RegionData, log_joint_grad, log_joint_grad_lanes};
use crate::linalg::{cholesky, cholesky_inverse, cholesky_solve};
use crate::vb::{Family, GaussianQ, LOG_SD_MAX, LOG_SD_MIN};

/// Newton iterations before giving up on the mode.
const MAX_NEWTON: u32 = 30;
/// Converged when half the Newton decrement `g' H^-1 g / 2` (the predicted gain in log joint)
/// is below this many nats.
const DECREMENT_TOL: f64 = 1e-6;
/// Step of the central differences of the gradient.
const H_STEP: f64 = 1e-4;
/// No coordinate moves by more than this in one Newton step (keeps `exp(w)` and `exp(k)`
/// finite far from the mode).
const MAX_STEP: f64 = 2.0;

/// The negative Hessian of the log joint at a point, as an arrowhead.
struct Arrowhead {
    nb: usize,
    /// Region-level block, `nb x nb` row-major, symmetrised.
    block: Vec<f64>,
    /// `H[v_j, block_i]` at `j * nb + i`.
    coupling: Vec<f64>,
    /// `H[v_j, v_j]`.
    sites: Vec<f64>,
}

/// Buffers of one Laplace fit.
struct Workspace {
    plus: Vec<f64>,
    minus: Vec<f64>,
    g_plus: Vec<f64>,
    g_minus: Vec<f64>,
}

impl Arrowhead {
    fn at(data: &RegionData, theta: &Theta, z: &[f64], nb: usize, ws: &mut Workspace) -> Self {
        let d = z.len();
        let j_n = d - nb;
        let mut block = vec![0.0; nb * nb];
        let mut coupling = vec![0.0; j_n * nb];
        let mut sites = vec![0.0; j_n];
        // Column `i < nb` by a step along block coordinate `i`; column `nb` by a step along all
        // site effects at once (their mutual entries are zero, so each site's own entry is
        // what moves its gradient).
        for i in 0..=nb {
            ws.plus.copy_from_slice(z);
            ws.minus.copy_from_slice(z);
            let coords = if i < nb { i..i + 1 } else { nb..d };
            for c in coords {
                ws.plus[c] += H_STEP;
                ws.minus[c] -= H_STEP;
            }
            log_joint_grad_lanes(
                data,
                theta,
                [&ws.plus, &ws.minus],
                &mut [&mut ws.g_plus, &mut ws.g_minus],
            );
            let col = |r: usize| -(ws.g_plus[r] - ws.g_minus[r]) / (2.0 * H_STEP);
            if i < nb {
                for r in 0..nb {
                    block[r * nb + i] = col(r);
                }
                for j in 0..j_n {
                    coupling[j * nb + i] = col(nb + j);
                }
            } else {
                for (j, s) in sites.iter_mut().enumerate() {
                    *s = col(nb + j);
                }
            }
        }
        for r in 0..nb {
            for c in 0..r {
                let m = 0.5 * (block[r * nb + c] + block[c * nb + r]);
                block[r * nb + c] = m;
                block[c * nb + r] = m;
            }
        }
        Self {
            nb,
            block,
            coupling,
            sites,
        }
    }

    /// The Schur complement of the site effects, `H_BB - sum_j H_Bj H_jB / H_jj`, with `damp`
    /// added to the whole diagonal, and the damped site entries; `None` if not positive.
    fn schur(&self, damp: f64) -> Option<(Vec<f64>, Vec<f64>)> {
        let nb = self.nb;
        let sites: Vec<f64> = self.sites.iter().map(|s| s + damp).collect();
        if sites.iter().any(|s| s.is_nan() || *s <= 0.0) {
            return None;
        }
        let mut s = self.block.clone();
        for i in 0..nb {
            s[i * nb + i] += damp;
        }
        for (j, hj) in sites.iter().enumerate() {
            let row = &self.coupling[j * nb..(j + 1) * nb];
            for r in 0..nb {
                for c in 0..nb {
                    s[r * nb + c] -= row[r] * row[c] / hj;
                }
            }
        }
        Some((s, sites))
    }

    /// The Newton direction `(H + damp I)^-1 g`, or `None` if that matrix is not positive
    /// definite.
    fn solve(&self, g: &[f64], damp: f64) -> Option<Vec<f64>> {
        let nb = self.nb;
        let (s, sites) = self.schur(damp)?;
        let l = cholesky(&s, nb)?;
        let mut x = g[..nb].to_vec();
        for (j, hj) in sites.iter().enumerate() {
            let row = &self.coupling[j * nb..(j + 1) * nb];
            for r in 0..nb {
                x[r] -= row[r] * g[nb + j] / hj;
            }
        }
        cholesky_solve(&l, nb, &mut x);
        let mut step = x.clone();
        for (j, hj) in sites.iter().enumerate() {
            let row = &self.coupling[j * nb..(j + 1) * nb];
            let dot: f64 = row.iter().zip(&x).map(|(c, xb)| c * xb).sum();
            step.push((g[nb + j] - dot) / hj);
        }
        Some(step)
    }

    /// The Gaussian with covariance `H^-1` at `mode`, as a coupled q: the block's Cholesky
    /// factor `L_B` of `S^-1` (S the Schur complement), the site effects' sds `H_jj^-1/2`
    /// and the coupling `C_j = -H_jB L_B / H_jj`, so that `L L'` is `H^-1` exactly.
    fn gaussian(&self, mode: &[f64]) -> Option<GaussianQ> {
        let nb = self.nb;
        let (s, sites) = self.schur(0.0)?;
        let lb = cholesky(&cholesky_inverse(&cholesky(&s, nb)?, nb), nb)?;
        let mut log_sd: Vec<f64> = (0..nb).map(|i| lb[i * nb + i].ln()).collect();
        log_sd.extend(sites.iter().map(|h| -0.5 * h.ln()));
        if log_sd
            .iter()
            .any(|l| !l.is_finite() || !(LOG_SD_MIN..=LOG_SD_MAX).contains(l))
        {
            return None;
        }
        let mut q = GaussianQ::new(Family::Coupled, nb, mode, &log_sd);
        let d = mode.len();
        let off_at = 2 * d;
        for i in 1..nb {
            for j in 0..i {
                q.params[off_at + i * (i - 1) / 2 + j] = lb[i * nb + j];
            }
        }
        let coup_at = off_at + GaussianQ::n_off(Family::Coupled, nb);
        for (j, hj) in sites.iter().enumerate() {
            let row = &self.coupling[j * nb..(j + 1) * nb];
            for c in 0..nb {
                let hl: f64 = (c..nb).map(|r| row[r] * lb[r * nb + c]).sum();
                q.params[coup_at + j * nb + c] = -hl / hj;
            }
        }
        Some(q)
    }
}

/// A Laplace fit: q, the Newton iterations run, and whether the mode was reached.
#[derive(Debug, Clone, PartialEq)]
pub struct LaplaceFit {
    /// The Gaussian at the mode with the inverse negative Hessian as covariance.
    pub q: GaussianQ,
    /// Newton iterations (each one negative Hessian and a line search).
    pub iterations: u32,
    /// Whether the Newton decrement fell below its tolerance before the cap.
    pub converged: bool,
}

/// Newton steps with a backtracking line search from `start`'s mean to the mode of the log
/// joint under `theta`, then the Laplace approximation there. `None` when the negative Hessian
/// at the last point is not positive definite (no Gaussian to report; the caller falls back to
/// the stochastic fit).
pub fn fit_laplace(data: &RegionData, theta: &Theta, start: &GaussianQ) -> Option<LaplaceFit> {
    let nb = start.n_block;
    let d = start.dim;
    let mut ws = Workspace {
        plus: vec![0.0; d],
        minus: vec![0.0; d],
        g_plus: vec![0.0; d],
        g_minus: vec![0.0; d],
    };
    let mut z = start.mu().to_vec();
    let mut g = vec![0.0; d];
    let mut lp = log_joint_grad(data, theta, &z, &mut g);
    let mut trial = vec![0.0; d];
    let mut g_trial = vec![0.0; d];
    let mut converged = false;
    let mut iterations = 0;
    let mut hessian = Arrowhead::at(data, theta, &z, nb, &mut ws);
    while iterations < MAX_NEWTON && lp.is_finite() {
        iterations += 1;
        // Levenberg damping only where the Hessian is not positive definite (far from the
        // mode); at the mode the step is Newton's.
        let mut damp = 0.0;
        let step = loop {
            match hessian.solve(&g, damp) {
                Some(s) => break Some(s),
                None if damp < 1e6 => damp = (damp * 10.0).max(1e-3),
                None => break None,
            }
        };
        let Some(mut step) = step else { break };
        let decrement: f64 = step.iter().zip(&g).map(|(s, gi)| s * gi).sum();
        if damp == 0.0 && 0.5 * decrement < DECREMENT_TOL {
            converged = true;
            break;
        }
        let largest = step.iter().fold(0.0_f64, |m, s| m.max(s.abs()));
        if largest > MAX_STEP {
            step.iter_mut().for_each(|s| *s *= MAX_STEP / largest);
        }
        let slope: f64 = step.iter().zip(&g).map(|(s, gi)| s * gi).sum();
        let mut t = 1.0;
        let mut moved = false;
        for _ in 0..20 {
            for ((x, z0), s) in trial.iter_mut().zip(&z).zip(&step) {
                *x = z0 + t * s;
            }
            let lp_trial = log_joint_grad(data, theta, &trial, &mut g_trial);
            if lp_trial.is_finite() && lp_trial >= lp + 1e-4 * t * slope {
                std::mem::swap(&mut z, &mut trial);
                std::mem::swap(&mut g, &mut g_trial);
                lp = lp_trial;
                moved = true;
                break;
            }
            t *= 0.5;
        }
        if !moved {
            break;
        }
        hessian = Arrowhead::at(data, theta, &z, nb, &mut ws);
    }
    hessian.gaussian(&z).map(|q| LaplaceFit {
        q,
        iterations,
        converged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2 x 2 block with two sites: the arrowhead solve and the Gaussian against dense
    /// linear algebra on the full matrix.
    #[test]
    fn the_arrowhead_solve_and_covariance_match_the_dense_inverse() {
        let nb = 2;
        let h = Arrowhead {
            nb,
            block: vec![4.0, 1.0, 1.0, 3.0],
            coupling: vec![0.5, -0.3, 0.2, 0.7],
            sites: vec![2.0, 1.5],
        };
        let dense = [
            4.0, 1.0, 0.5, 0.2, //
            1.0, 3.0, -0.3, 0.7, //
            0.5, -0.3, 2.0, 0.0, //
            0.2, 0.7, 0.0, 1.5,
        ];
        let inv = cholesky_inverse(&cholesky(&dense, 4).expect("SPD"), 4);
        let g = [1.0, -2.0, 0.5, 3.0];
        let step = h.solve(&g, 0.0).expect("SPD");
        for (i, s) in step.iter().enumerate() {
            let want: f64 = (0..4).map(|c| inv[i * 4 + c] * g[c]).sum();
            assert!((s - want).abs() < 1e-12, "step {i}: {s} vs {want}");
        }
        let q = h.gaussian(&[0.0; 4]).expect("SPD");
        // L L' from q's transform of the unit vectors.
        let mut cols = [[0.0; 4]; 4];
        for (c, col) in cols.iter_mut().enumerate() {
            let mut eps = [0.0; 4];
            eps[c] = 1.0;
            q.transform(&eps, col);
        }
        for r in 0..4 {
            for c in 0..4 {
                let cov: f64 = (0..4).map(|t| cols[t][r] * cols[t][c]).sum();
                assert!((cov - inv[r * 4 + c]).abs() < 1e-12, "cov {r},{c}");
            }
        }
    }
}
