//! Candidate DMRs at CpG resolution: the per-CpG evidence of a two-group difference
//! ([`site_evidence`]) and the scan of a run of CpGs for the stretches where it is strongest
//! ([`Scanner::scan`]). No files, no model: counts in, evidence and segments out.
//!
//! **Per-CpG evidence.** At CpG `j` each group's level is its pooled methylation
//! `p_gj = sum m / sum n` over its samples, and the difference is `d_j = p_1j - p_0j` (group 0
//! is the reference). Under no difference both groups share the level `p_j` (pooled over all
//! samples) and, with beta-binomial replicates of dispersion `phi`, the variance of `p_gj` is
//! `p_j (1 - p_j) sum_s n_s (1 + (n_s - 1) phi) / (sum_s n_s)^2`. `p_j` is clamped to
//! `[level_floor, 1 - level_floor]` first, so that a CpG fully methylated or unmethylated in
//! every sample (common in real data, and carrying no information on a difference) cannot
//! get a near-zero variance and dominate the stretch around it. `z_j = d_j / se_j`.
//!
//! **Scan.** A stretch `s..e` of CpGs scores the z statistic of one common difference fitted
//! by inverse-variance weighting, `T = sum_j (d_j / V_j) / sqrt(sum_j 1 / V_j)`: the likelihood
//! ratio statistic of "the difference is `d` inside the stretch and 0 outside" for normal
//! `d_j`, so the stretch of largest `|T|` is the maximum-likelihood location of a single
//! differentially methylated stretch. A CpG at an edge stays in only while it raises `|T|`,
//! i.e. while its difference is above about half the stretch's. [`Scanner::scan`] takes the
//! best stretch of `min_sites..=max_sites` CpGs, keeps it if `|T| >= min_score`, and scans what
//! lies left and right of it again (binary segmentation), so a run of CpGs can hold several
//! stretches, of either sign. Segments are disjoint and in order.
//!
//! **Dispersion, null and calibration.** [`run_dispersion`] estimates a run's replicate
//! dispersion from the spread within each group (the `phi` of the evidence).
//! [`Scanner::null_scores`] scans copies of a run whose differences are redrawn under no
//! difference, and [`Calibration`] turns the observed and null scores of a genome into the
//! scan's local false discovery rate by score.
//!
//! ```
//! use methvb_scan::{ScanOptions, Scanner, site_evidence};
//!
//! // 2 vs 2 samples, 8 CpGs; CpGs 2..6 differ by 0.6.
//! let groups = [0, 0, 1, 1];
//! let mut methylated = Vec::new();
//! let mut coverage = Vec::new();
//! for j in 0..8 {
//!     let other = if (2..6).contains(&j) { 16 } else { 4 };
//!     methylated.extend([4, 4, other, other]);
//!     coverage.extend([20, 20, 20, 20]);
//! }
//! let opts = ScanOptions::default();
//! let mut evidence = Vec::new();
//! site_evidence(&methylated, &coverage, &groups, &opts, &mut evidence);
//! let mut segments = Vec::new();
//! Scanner::default().scan(&evidence, &opts, &mut segments);
//! assert_eq!(segments.len(), 1);
//! assert_eq!((segments[0].first, segments[0].end), (2, 6));
//! assert!(segments[0].score > 0.0);
//! ```

use rand::{RngExt, SeedableRng, rngs::StdRng};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

/// Default of [`ScanOptions::min_sites`] (DSS `callDMR`'s `minCG`).
pub const DEFAULT_MIN_SITES: usize = 3;
/// Default of [`ScanOptions::max_sites`].
pub const DEFAULT_MAX_SITES: usize = 500;
/// Default of [`ScanOptions::min_score`].
pub const DEFAULT_MIN_SCORE: f64 = 3.0;
/// Default of [`ScanOptions::level_floor`].
pub const DEFAULT_LEVEL_FLOOR: f64 = 0.1;
/// Default of [`ScanOptions::dispersion`] (the model's default median `1 / (1 + kappa)`).
pub const DEFAULT_DISPERSION: f64 = 0.05;

/// How the evidence is computed and the stretches are scanned.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScanOptions {
    /// Beta-binomial dispersion `phi = 1 / (1 + kappa)` of the replicates, in `[0, 1)`.
    pub dispersion: f64,
    /// Levels used in the variance are clamped to `[level_floor, 1 - level_floor]`
    /// (in `[0, 0.5)`).
    pub level_floor: f64,
    /// Fewest CpGs of a stretch (>= 1).
    pub min_sites: usize,
    /// Most CpGs of a stretch (>= `min_sites`); bounds the scan's cost in long runs of CpGs.
    pub max_sites: usize,
    /// Smallest `|T|` of a stretch kept (> 0).
    pub min_score: f64,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            dispersion: DEFAULT_DISPERSION,
            level_floor: DEFAULT_LEVEL_FLOOR,
            min_sites: DEFAULT_MIN_SITES,
            max_sites: DEFAULT_MAX_SITES,
            min_score: DEFAULT_MIN_SCORE,
        }
    }
}

impl ScanOptions {
    /// Why these options cannot be used, if they cannot.
    pub fn invalid(&self) -> Option<String> {
        if !(0.0..1.0).contains(&self.dispersion) {
            return Some(format!("dispersion {} must be in [0, 1)", self.dispersion));
        }
        if !(0.0..0.5).contains(&self.level_floor) {
            return Some(format!(
                "level floor {} must be in [0, 0.5)",
                self.level_floor
            ));
        }
        if self.min_sites == 0 || self.max_sites < self.min_sites {
            return Some(format!(
                "stretch sizes {}..={} need 1 <= min <= max",
                self.min_sites, self.max_sites
            ));
        }
        if !(self.min_score > 0.0 && self.min_score.is_finite()) {
            return Some(format!("min score {} must be positive", self.min_score));
        }
        None
    }
}

/// The evidence of one CpG.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SiteEvidence {
    /// Pooled methylation of the reference group and of the other (NaN where a group has no
    /// read).
    pub level: [f64; 2],
    /// Reads of each group.
    pub coverage: [u32; 2],
    /// `level[1] - level[0]` (0 where a group has no read).
    pub diff: f64,
    /// Standard error of `diff` under no difference (infinite where a group has no read).
    pub se: f64,
    /// `diff / se` (0 where a group has no read).
    pub z: f64,
    /// The best estimate of the standard error of `diff` under no difference: as `se`, with the
    /// level shrunk towards the run's level by [`SHRINK_READS`] reads instead of clamped (what
    /// the scan's null draws use; 0 where a group has no read).
    pub null_se: f64,
}

/// Reads' worth of the run's level in the level of a CpG's [`SiteEvidence::null_se`].
pub const SHRINK_READS: f64 = 10.0;

impl SiteEvidence {
    /// Weight `1 / se^2` of the CpG in a stretch (0 where a group has no read).
    fn weight(&self) -> f64 {
        if self.se.is_finite() {
            1.0 / (self.se * self.se)
        } else {
            0.0
        }
    }
}

/// The evidence of each CpG of a run: `methylated` and `coverage` are `J x S` row-major (CpG
/// `j`, sample `s` at `j * S + s`), `sample_group[s]` is 0 (reference), 1 (other) or anything
/// else for a sample left out. Clears `out` and writes one entry per CpG.
pub fn site_evidence(
    methylated: &[u32],
    coverage: &[u32],
    sample_group: &[usize],
    opts: &ScanOptions,
    out: &mut Vec<SiteEvidence>,
) {
    out.clear();
    let n_samples = sample_group.len();
    if n_samples == 0 {
        return;
    }
    let (run_meth, run_reads) = methylated
        .iter()
        .zip(coverage)
        .zip(sample_group.iter().cycle())
        .filter(|&(_, &g)| g <= 1)
        .fold((0u64, 0u64), |(m, n), ((&mi, &ni), _)| {
            (m + u64::from(mi), n + u64::from(ni))
        });
    let run_level = if run_reads > 0 {
        run_meth as f64 / run_reads as f64
    } else {
        0.5
    };
    for (m_row, n_row) in methylated
        .chunks_exact(n_samples)
        .zip(coverage.chunks_exact(n_samples))
    {
        let mut reads = [0u64; 2];
        let mut meth = [0u64; 2];
        // sum_s n_s (1 + (n_s - 1) phi): the variance inflation of each group's reads.
        let mut inflated = [0f64; 2];
        for ((&m, &n), &g) in m_row.iter().zip(n_row).zip(sample_group) {
            if g > 1 || n == 0 {
                continue;
            }
            reads[g] += u64::from(n);
            meth[g] += u64::from(m);
            let n = f64::from(n);
            inflated[g] += n * (1.0 + (n - 1.0) * opts.dispersion);
        }
        let level = [0, 1].map(|g| {
            if reads[g] > 0 {
                meth[g] as f64 / reads[g] as f64
            } else {
                f64::NAN
            }
        });
        let coverage = reads.map(|r| r.min(u64::from(u32::MAX)) as u32);
        let evidence = if reads[0] > 0 && reads[1] > 0 {
            let (m_all, n_all) = ((meth[0] + meth[1]) as f64, (reads[0] + reads[1]) as f64);
            let spread: f64 = (0..2)
                .map(|g| inflated[g] / (reads[g] as f64 * reads[g] as f64))
                .sum();
            let working = (m_all / n_all).clamp(opts.level_floor, 1.0 - opts.level_floor);
            let shrunk = (m_all + SHRINK_READS * run_level) / (n_all + SHRINK_READS);
            let diff = level[1] - level[0];
            let se = (spread * working * (1.0 - working)).sqrt();
            SiteEvidence {
                level,
                coverage,
                diff,
                se,
                z: diff / se,
                null_se: (spread * shrunk * (1.0 - shrunk)).sqrt(),
            }
        } else {
            SiteEvidence {
                level,
                coverage,
                diff: 0.0,
                se: f64::INFINITY,
                z: 0.0,
                null_se: 0.0,
            }
        };
        out.push(evidence);
    }
}

/// A stretch of CpGs `first..end` (indices into the run) and its score `T` (the sign is the
/// direction of the difference).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// First CpG of the stretch.
    pub first: usize,
    /// One past its last CpG.
    pub end: usize,
    /// `T` of the stretch.
    pub score: f64,
    /// Its inverse-variance weighted mean difference.
    pub diff: f64,
}

/// The scan of [`site_evidence`] for stretches; keeps its buffers between runs, so scanning a
/// genome allocates only when a run is longer than every earlier one.
///
/// Cost: the best stretch from each first CpG is found once, in `J x max_sites` steps; after a
/// stretch is taken, only the first CpGs within `max_sites` before it are looked at again (their
/// stretches may have ended inside it), so binary segmentation of a long run stays linear in its
/// length rather than in its length times the stretches found.
#[derive(Debug, Default)]
pub struct Scanner {
    /// Prefix sums of `d_j / V_j` and of `1 / V_j`.
    prefix: Vec<(f64, f64)>,
    /// Per first CpG, its best stretch within the part of the run it is in.
    from: Vec<Option<Segment>>,
    /// Parts of the run still to scan.
    todo: Vec<(usize, usize)>,
}

impl Scanner {
    /// The stretches of `evidence` (see the crate docs), in order, into `out` (cleared first).
    pub fn scan(&mut self, evidence: &[SiteEvidence], opts: &ScanOptions, out: &mut Vec<Segment>) {
        out.clear();
        self.prefix.clear();
        self.prefix.push((0.0, 0.0));
        let (mut a, mut b) = (0.0, 0.0);
        for e in evidence {
            let w = e.weight();
            a += e.diff * w;
            b += w;
            self.prefix.push((a, b));
        }
        let n = evidence.len();
        self.from.clear();
        for first in 0..n {
            let best = self.best_from(first, n, opts);
            self.from.push(best);
        }
        self.todo.clear();
        self.todo.push((0, n));
        while let Some((lo, hi)) = self.todo.pop() {
            // The first of equal ones: lowest first CpG, then shortest.
            let mut best: Option<Segment> = None;
            for seg in self.from[lo..hi].iter().flatten() {
                if best.is_none_or(|b| seg.score.abs() > b.score.abs()) {
                    best = Some(*seg);
                }
            }
            let Some(best) = best.filter(|b| b.score.abs() >= opts.min_score) else {
                continue;
            };
            out.push(best);
            // Stretches from before `best` that ran into it now end at its first CpG at most.
            for first in lo.max(best.first.saturating_sub(opts.max_sites))..best.first {
                self.from[first] = self.best_from(first, best.first, opts);
            }
            self.todo.push((lo, best.first));
            self.todo.push((best.end, hi));
        }
        out.sort_by_key(|s| s.first);
    }

    /// The stretch of largest `|T|` from CpG `first` ending at `hi` at most (the shortest of
    /// equal ones).
    fn best_from(&self, first: usize, hi: usize, opts: &ScanOptions) -> Option<Segment> {
        let mut best: Option<Segment> = None;
        let (a0, b0) = self.prefix[first];
        let last_end = hi.min(first + opts.max_sites);
        for end in (first + opts.min_sites)..=last_end {
            let (a1, b1) = self.prefix[end];
            let weight = b1 - b0;
            if weight <= 0.0 {
                continue;
            }
            let score = (a1 - a0) / weight.sqrt();
            if best.is_none_or(|b| score.abs() > b.score.abs()) {
                best = Some(Segment {
                    first,
                    end,
                    score,
                    diff: (a1 - a0) / weight,
                });
            }
        }
        best
    }

    /// Scores `|T|` of the stretches the scan finds in `draws` copies of `evidence` whose
    /// differences are redrawn under no difference (`d_j = null_se_j x N(0, 1)`, independent),
    /// appended to `out`: the null distribution of the scan's scores for this run of CpGs, its
    /// length, coverage, missing cells and the maximisation over stretches included. The draws
    /// come from `seed` alone.
    pub fn null_scores(
        &mut self,
        evidence: &[SiteEvidence],
        opts: &ScanOptions,
        draws: usize,
        seed: u64,
        out: &mut Vec<f64>,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut null = evidence.to_vec();
        let mut segments = Vec::new();
        for _ in 0..draws {
            for e in null.iter_mut().filter(|e| e.se.is_finite()) {
                e.diff = e.null_se * rng.sample::<f64, _>(StandardNormal);
                e.z = e.diff / e.se;
            }
            self.scan(&null, opts, &mut segments);
            out.extend(segments.iter().map(|s| s.score.abs()));
        }
    }
}

/// The replicate dispersion of one run of CpGs: the method-of-moments estimate from the
/// spread of each group's samples around the group's level (so a difference between the groups
/// does not inflate it), shrunk towards `prior` with the weight of `prior_cells` typical
/// (CpG, group) cells, and clamped to `[1e-4, 0.5]`.
///
/// For a cell of `k` samples with reads `n_s`, `N = sum n_s` and pooled level `p`, the sum
/// `S = sum_s (m_s - n_s p)^2 / (p (1 - p))` has expectation `A + B phi` under beta-binomial
/// replicates, with `A = N - sum n_s^2 / N` and
/// `B = sum n_s (n_s - 1) (1 - 2 n_s / N) + (sum n_s^2 / N^2) sum n_s (n_s - 1)`; the estimate
/// is `(sum S - sum A) / sum B` over the cells with `0 < p < 1` and two or more samples.
pub fn run_dispersion(
    methylated: &[u32],
    coverage: &[u32],
    sample_group: &[usize],
    prior: f64,
    prior_cells: f64,
) -> f64 {
    let n_samples = sample_group.len();
    let (mut excess, mut info, mut cells) = (0.0, 0.0, 0.0);
    if n_samples > 0 {
        for (m_row, n_row) in methylated
            .chunks_exact(n_samples)
            .zip(coverage.chunks_exact(n_samples))
        {
            for g in 0..2 {
                let cell = || {
                    m_row
                        .iter()
                        .zip(n_row)
                        .zip(sample_group)
                        .filter(move |&((_, &n), &h)| h == g && n > 0)
                        .map(|((&m, &n), _)| (f64::from(m), f64::from(n)))
                };
                let (mut k, mut total, mut meth, mut sq) = (0usize, 0.0, 0.0, 0.0);
                for (m, n) in cell() {
                    k += 1;
                    total += n;
                    meth += m;
                    sq += n * n;
                }
                let p = meth / total.max(1.0);
                if k < 2 || p <= 0.0 || p >= 1.0 {
                    continue;
                }
                let (mut s_sum, mut b_own, mut b_all) = (0.0, 0.0, 0.0);
                for (m, n) in cell() {
                    s_sum += (m - n * p).powi(2);
                    b_own += n * (n - 1.0) * (1.0 - 2.0 * n / total);
                    b_all += n * (n - 1.0);
                }
                excess += s_sum / (p * (1.0 - p)) - (total - sq / total);
                info += b_own + sq / (total * total) * b_all;
                cells += 1.0;
            }
        }
    }
    let prior_info = if cells > 0.0 {
        prior_cells * info / cells
    } else {
        1.0
    };
    ((excess + prior * prior_info) / (info + prior_info)).clamp(1e-4, 0.5)
}

/// One bin of [`Calibration::table`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CalibrationBin {
    /// Lower edge of the bin (`|T|`; the bin is [`BIN_WIDTH`] wide, the last one open).
    pub score_from: f64,
    /// Observed stretches.
    pub observed: f64,
    /// Expected null stretches.
    pub null: f64,
    /// The local false discovery rate of the bin.
    pub lfdr: f64,
}

/// Width of a bin of [`Calibration`] in units of `|T|`.
pub const BIN_WIDTH: f64 = 0.25;
/// Bins of [`Calibration`]: `|T|` up to 50; larger scores share the last bin.
const BINS: usize = 200;

/// The local false discovery rate of the scan's scores: counts of observed and of null
/// stretches (weighted: a null draw of `k` copies counts `1 / k`) in bins of `|T|`, and their
/// ratio made non-increasing in `|T|` by pooling adjacent bins (the Grenander-type estimate
/// of `f0 / f`, conservative because the null counts every run of CpGs, the differential ones
/// too). Memory is fixed, whatever the genome size.
#[derive(Debug, Clone)]
pub struct Calibration {
    observed: Vec<f64>,
    null: Vec<f64>,
    lfdr: Vec<f64>,
}

impl Default for Calibration {
    fn default() -> Self {
        Self {
            observed: vec![0.0; BINS],
            null: vec![0.0; BINS],
            lfdr: Vec::new(),
        }
    }
}

fn bin(score: f64) -> usize {
    ((score.abs() / BIN_WIDTH) as usize).min(BINS - 1)
}

impl Calibration {
    /// Counts an observed stretch.
    pub fn observe(&mut self, score: f64) {
        self.observed[bin(score)] += 1.0;
    }

    /// Counts a null stretch with `weight`.
    pub fn null(&mut self, score: f64, weight: f64) {
        self.null[bin(score)] += weight;
    }

    /// Adds the counts of `other`.
    pub fn merge(&mut self, other: &Calibration) {
        for (a, b) in self.observed.iter_mut().zip(&other.observed) {
            *a += b;
        }
        for (a, b) in self.null.iter_mut().zip(&other.null) {
            *a += b;
        }
    }

    /// Observed and null stretches at or above `|T| = score`.
    pub fn tail(&self, score: f64) -> (f64, f64) {
        let b = bin(score);
        (self.observed[b..].iter().sum(), self.null[b..].iter().sum())
    }

    /// Fixes the estimate from the counts so far.
    pub fn finish(&mut self) {
        // Pool adjacent violators, from the highest bin down: blocks of (null, observed) whose
        // ratio must not decrease towards lower scores. Empty bins join their neighbours.
        let mut blocks: Vec<(f64, f64, usize)> = Vec::new();
        for b in (0..BINS).rev() {
            blocks.push((self.null[b], self.observed[b], 1));
            while blocks.len() >= 2 {
                let (n1, o1, c1) = blocks[blocks.len() - 1];
                let (n0, o0, c0) = blocks[blocks.len() - 2];
                // Ratio of the lower-score block (last) must be >= the one above it.
                let lower = if o1 > 0.0 { n1 / o1 } else { f64::INFINITY };
                let upper = if o0 > 0.0 { n0 / o0 } else { f64::INFINITY };
                if o1 > 0.0 && lower >= upper {
                    break;
                }
                blocks.pop();
                let last = blocks.len() - 1;
                blocks[last] = (n0 + n1, o0 + o1, c0 + c1);
            }
        }
        self.lfdr.clear();
        for &(n, o, c) in blocks.iter().rev() {
            let ratio = if o > 0.0 { (n / o).min(1.0) } else { 1.0 };
            self.lfdr.extend(std::iter::repeat_n(ratio, c));
        }
        // Below the lowest observed score there is no evidence at all.
        let lowest = self.observed.iter().position(|&o| o > 0.0).unwrap_or(BINS);
        self.lfdr[..lowest].fill(1.0);
    }

    /// The bins holding an observed or a null stretch, in increasing `|T|`
    /// ([`Calibration::finish`] first).
    pub fn table(&self) -> Vec<CalibrationBin> {
        (0..BINS)
            .filter(|&b| self.observed[b] > 0.0 || self.null[b] > 0.0)
            .map(|b| CalibrationBin {
                score_from: b as f64 * BIN_WIDTH,
                observed: self.observed[b],
                null: self.null[b],
                lfdr: self.lfdr.get(b).copied().unwrap_or(1.0),
            })
            .collect()
    }

    /// The local false discovery rate at `|T| = score` ([`Calibration::finish`] first; 1
    /// before).
    pub fn lfdr(&self, score: f64) -> f64 {
        self.lfdr.get(bin(score)).copied().unwrap_or(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng, rngs::StdRng};
    use rand_distr::{Beta, Binomial, Distribution, StandardNormal};

    fn evidence_of(rows: &[(u32, u32)], groups: &[usize], opts: &ScanOptions) -> SiteEvidence {
        let (m, n): (Vec<u32>, Vec<u32>) = rows.iter().copied().unzip();
        let mut out = Vec::new();
        site_evidence(&m, &n, groups, opts, &mut out);
        out[0]
    }

    #[test]
    fn evidence_matches_the_beta_binomial_variance_by_hand() {
        let opts = ScanOptions {
            dispersion: 0.1,
            ..ScanOptions::default()
        };
        // Reference: 3/10 and 6/20; other: 12/15. Pooled 21/45.
        let e = evidence_of(&[(3, 10), (6, 20), (12, 15)], &[0, 0, 1], &opts);
        assert_eq!(e.level, [9.0 / 30.0, 12.0 / 15.0]);
        assert_eq!(e.coverage, [30, 15]);
        let p: f64 = 21.0 / 45.0;
        let infl = |n: f64| n * (1.0 + (n - 1.0) * 0.1);
        let var = p * (1.0 - p) * ((infl(10.0) + infl(20.0)) / 900.0 + infl(15.0) / 225.0);
        assert!((e.se - var.sqrt()).abs() < 1e-12);
        assert!((e.z - (0.8 - 0.3) / var.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn a_fully_unmethylated_cpg_gets_the_floored_variance_and_a_missing_group_no_weight() {
        let opts = ScanOptions::default();
        let e = evidence_of(&[(0, 30), (0, 30)], &[0, 1], &opts);
        assert_eq!(e.diff, 0.0);
        let floor: f64 = 0.1 * 0.9 * 2.0 * (1.0 + 29.0 * 0.05) / 30.0;
        assert!((e.se - floor.sqrt()).abs() < 1e-12);
        let missing = evidence_of(&[(3, 10), (0, 0)], &[0, 1], &opts);
        assert!(missing.level[1].is_nan());
        assert_eq!((missing.diff, missing.z, missing.weight()), (0.0, 0.0, 0.0));
        // A sample of a third group is left out.
        let third = evidence_of(&[(3, 10), (5, 10), (10, 10)], &[0, 1, 2], &opts);
        assert_eq!(third.coverage, [10, 10]);
    }

    fn flat(n: usize, diff: f64) -> Vec<SiteEvidence> {
        (0..n)
            .map(|_| SiteEvidence {
                level: [0.5, 0.5 + diff],
                coverage: [10, 10],
                diff,
                se: 0.1,
                z: diff / 0.1,
                null_se: 0.1,
            })
            .collect()
    }

    #[test]
    fn the_score_is_the_weighted_z_and_the_best_stretch_is_exact() {
        // 0 0 0 [0.3 x 5] 0 0 [-0.3 x 4] 0
        let mut e = flat(3, 0.0);
        e.extend(flat(5, 0.3));
        e.extend(flat(2, 0.0));
        e.extend(flat(4, -0.3));
        e.extend(flat(1, 0.0));
        let mut out = Vec::new();
        Scanner::default().scan(&e, &ScanOptions::default(), &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].first, out[0].end), (3, 8));
        assert_eq!((out[1].first, out[1].end), (10, 14));
        // T = sum(d / V) / sqrt(sum 1 / V) = 5 * 30 / sqrt(500).
        assert!((out[0].score - 150.0 / 500f64.sqrt()).abs() < 1e-9);
        assert!(out[1].score < 0.0);
        assert!((out[0].diff - 0.3).abs() < 1e-12);
    }

    #[test]
    fn options_bound_the_stretches() {
        let e = flat(10, 0.3);
        let mut out = Vec::new();
        let mut scanner = Scanner::default();
        let capped = ScanOptions {
            max_sites: 4,
            ..ScanOptions::default()
        };
        scanner.scan(&e, &capped, &mut out);
        // Two stretches of 4; the 2 CpGs left are fewer than min_sites.
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|s| s.end - s.first == 4));
        assert!(out[0].end <= out[1].first);
        let strict = ScanOptions {
            min_score: 100.0,
            ..ScanOptions::default()
        };
        scanner.scan(&e, &strict, &mut out);
        assert!(out.is_empty());
        scanner.scan(&flat(2, 0.3), &ScanOptions::default(), &mut out);
        assert!(out.is_empty(), "fewer CpGs than min_sites");
        assert!(ScanOptions::default().invalid().is_none());
        let bad = ScanOptions {
            min_sites: 5,
            max_sites: 4,
            ..ScanOptions::default()
        };
        assert!(bad.invalid().is_some());
    }

    /// Beta-binomial counts of `per_group` samples per group at `depth`, with a difference of
    /// `effect` on `window`; returns (methylated, coverage, groups).
    fn simulate(
        rng: &mut StdRng,
        n_sites: usize,
        window: std::ops::Range<usize>,
        effect: f64,
        phi: f64,
    ) -> (Vec<u32>, Vec<u32>, Vec<usize>) {
        let groups = vec![0, 0, 0, 1, 1, 1];
        let depth = 15;
        let (mut m, mut n) = (Vec::new(), Vec::new());
        let kappa = 1.0 / phi - 1.0;
        for j in 0..n_sites {
            let base: f64 = 0.3 + 0.4 * rng.random::<f64>();
            for &g in &groups {
                let p = if g == 1 && window.contains(&j) {
                    base + effect
                } else {
                    base
                };
                let pi = Beta::new(p * kappa, (1.0 - p) * kappa).unwrap().sample(rng);
                n.push(depth);
                m.push(Binomial::new(u64::from(depth), pi).unwrap().sample(rng) as u32);
            }
        }
        (m, n, groups)
    }

    /// Under no difference the z statistics are close to standard normal when the dispersion is
    /// the true one: their variance over 6,000 CpGs is within 4 of its sd (sd of a sample
    /// variance of n normals is sqrt(2 / n) = 0.018; the pooled-level approximation adds a
    /// little).
    #[test]
    fn null_z_is_standard_normal_at_the_true_dispersion() {
        let mut rng = StdRng::seed_from_u64(7);
        let (m, n, groups) = simulate(&mut rng, 6000, 0..0, 0.0, 0.05);
        let mut e = Vec::new();
        site_evidence(&m, &n, &groups, &ScanOptions::default(), &mut e);
        let var = e.iter().map(|e| e.z * e.z).sum::<f64>() / e.len() as f64;
        assert!((var - 1.0).abs() < 4.0 * (2.0f64 / 6000.0).sqrt(), "{var}");
    }

    /// Windows of 12 CpGs with a difference of 0.25 inside 20-CpG runs (3 vs 3 at 15x): the
    /// scan finds the window in at least 90 of 100 runs (the detection power is near 1) and
    /// puts each end within one CpG of the truth in most of them (mean error under 1 CpG).
    #[test]
    fn scan_finds_a_window_and_its_ends() {
        let mut rng = StdRng::seed_from_u64(11);
        let opts = ScanOptions::default();
        let mut scanner = Scanner::default();
        let (mut found, mut end_error, mut e, mut out) = (0, 0usize, Vec::new(), Vec::new());
        for _ in 0..100 {
            let lo = rng.random_range(0..=8);
            let (m, n, groups) = simulate(&mut rng, 20, lo..lo + 12, 0.25, 0.05);
            site_evidence(&m, &n, &groups, &opts, &mut e);
            scanner.scan(&e, &opts, &mut out);
            let Some(best) = out
                .iter()
                .max_by(|a, b| a.score.abs().total_cmp(&b.score.abs()))
            else {
                continue;
            };
            if best.score > 0.0 && best.first < lo + 12 && best.end > lo {
                found += 1;
                end_error += best.first.abs_diff(lo) + best.end.abs_diff(lo + 12);
            }
        }
        assert!(found >= 90, "found {found} of 100");
        let mean = end_error as f64 / (2 * found) as f64;
        assert!(mean < 1.0, "mean end error {mean} CpGs");
    }

    /// The run's dispersion recovers the simulated one from 3 vs 3 at 15x over 2,000 CpGs (the
    /// sd of the moment estimate is about 0.005 there; bound 0.015), is not inflated by a
    /// group difference, and falls back to the prior without information.
    #[test]
    fn run_dispersion_recovers_phi_and_ignores_the_difference() {
        let mut rng = StdRng::seed_from_u64(3);
        for phi in [0.02, 0.1] {
            let (m, n, groups) = simulate(&mut rng, 2000, 0..1000, 0.3, phi);
            let est = run_dispersion(&m, &n, &groups, 0.05, 0.0);
            assert!((est - phi).abs() < 0.015, "phi {phi}: {est}");
            let shrunk = run_dispersion(&m, &n, &groups, 0.05, 1e9);
            assert!((shrunk - 0.05).abs() < 1e-3, "{shrunk}");
        }
        // Fully methylated everywhere: no information, the prior.
        let groups = [0, 0, 1, 1];
        let est = run_dispersion(&[10; 8], &[10; 8], &groups, 0.07, 20.0);
        assert!((est - 0.07).abs() < 1e-12, "{est}");
    }

    /// Null draws of runs with no difference give the scores of real runs with no difference:
    /// over 400 runs of 15 CpGs (3 vs 3, phi 0.05), the stretches above 3 of the real data and
    /// of 10 null copies per run agree within 4 Poisson sd of their count (about 25 expected).
    #[test]
    fn null_draws_match_real_null_runs() {
        let mut rng = StdRng::seed_from_u64(17);
        let opts = ScanOptions::default();
        let (mut scanner, mut e, mut out, mut null) =
            (Scanner::default(), Vec::new(), Vec::new(), Vec::new());
        let (mut real, mut drawn) = (0.0, 0.0);
        for run in 0..400u64 {
            let (m, n, groups) = simulate(&mut rng, 15, 0..0, 0.0, 0.05);
            let o = ScanOptions {
                dispersion: run_dispersion(&m, &n, &groups, 0.05, 20.0),
                ..opts
            };
            site_evidence(&m, &n, &groups, &o, &mut e);
            scanner.scan(&e, &o, &mut out);
            real += out.len() as f64;
            null.clear();
            scanner.null_scores(&e, &o, 10, run, &mut null);
            drawn += null.len() as f64 / 10.0;
        }
        assert!(drawn > 5.0, "{drawn}");
        assert!(
            (real - drawn).abs() < 4.0 * drawn.sqrt(),
            "real {real}, null {drawn}"
        );
    }

    #[test]
    fn calibration_is_the_monotone_ratio_of_null_to_observed() {
        let mut c = Calibration::default();
        // Scores 3.1 (bin 12): 10 observed, 8 null; 4.1 (bin 16): 10 observed, 9 null (a
        // violation: pooled with bin 12); 6.1: 5 observed, none null.
        for _ in 0..10 {
            c.observe(3.1);
            c.observe(-4.1);
        }
        for _ in 0..5 {
            c.observe(6.1);
        }
        c.null(3.1, 8.0);
        c.null(4.1, 9.0);
        assert_eq!(c.lfdr(3.1), 1.0, "before finish");
        c.finish();
        assert!((c.lfdr(3.1) - 0.85).abs() < 1e-12);
        assert!((c.lfdr(4.1) - 0.85).abs() < 1e-12);
        assert_eq!(c.lfdr(6.1), 0.0);
        assert_eq!(c.lfdr(40.0), 0.0, "above the last observed: its block");
        assert_eq!(c.lfdr(1.0), 1.0, "below every observed: no evidence");
        let table = c.table();
        assert_eq!(table.len(), 3);
        assert_eq!(c.tail(4.0), (15.0, 9.0));
        let mut merged = Calibration::default();
        merged.merge(&c);
        assert_eq!(merged.tail(0.0), (25.0, 17.0));
    }

    /// The cached scan equals a direct binary segmentation (every stretch of every part
    /// looked at again) on long random runs with several stretches, bit for bit.
    #[test]
    fn the_scan_equals_direct_binary_segmentation() {
        fn direct(e: &[SiteEvidence], opts: &ScanOptions) -> Vec<Segment> {
            let mut out = Vec::new();
            let mut todo = vec![(0, e.len())];
            while let Some((lo, hi)) = todo.pop() {
                let mut best: Option<Segment> = None;
                for first in lo..hi {
                    for end in (first + opts.min_sites)..=hi.min(first + opts.max_sites) {
                        let a: f64 = e[first..end].iter().map(|x| x.diff * x.weight()).sum();
                        let b: f64 = e[first..end].iter().map(SiteEvidence::weight).sum();
                        if b <= 0.0 {
                            continue;
                        }
                        let score = a / b.sqrt();
                        if best.is_none_or(|s| score.abs() > s.score.abs()) {
                            best = Some(Segment {
                                first,
                                end,
                                score,
                                diff: a / b,
                            });
                        }
                    }
                }
                if let Some(best) = best.filter(|b| b.score.abs() >= opts.min_score) {
                    out.push(best);
                    todo.push((lo, best.first));
                    todo.push((best.end, hi));
                }
            }
            out.sort_by_key(|s| s.first);
            out
        }
        let mut rng = StdRng::seed_from_u64(29);
        let opts = ScanOptions {
            max_sites: 12,
            min_score: 2.0,
            ..ScanOptions::default()
        };
        let mut scanner = Scanner::default();
        let mut out = Vec::new();
        for _ in 0..20 {
            let e: Vec<SiteEvidence> = (0..120)
                .map(|j| {
                    let shift = if (j / 15) % 3 == 1 { 0.2 } else { 0.0 };
                    let se = 0.05 + 0.1 * rng.random::<f64>();
                    let diff = shift + se * rng.sample::<f64, _>(StandardNormal);
                    SiteEvidence {
                        level: [0.5; 2],
                        coverage: [9; 2],
                        diff,
                        se,
                        z: diff / se,
                        null_se: se,
                    }
                })
                .collect();
            scanner.scan(&e, &opts, &mut out);
            let want = direct(&e, &opts);
            assert!(want.len() >= 3);
            assert_eq!(out.len(), want.len());
            for (a, b) in out.iter().zip(&want) {
                assert_eq!((a.first, a.end), (b.first, b.end));
                assert!((a.score - b.score).abs() < 1e-9);
            }
        }
    }
}
