//! Region-level Bayesian FDR control: the regions called are those with the smallest PEPs whose
//! mean PEP is `<= target`. [`PepCut::find`] finds that set as a threshold in a few passes over
//! the PEPs, with memory bounded whatever their number (a genome's regions need not be held);
//! [`call_by_pep`] applies it to a slice.

use std::convert::Infallible;

/// Bits of the sort key refined per pass: a histogram of `2^16` buckets (1 MB) per pass, at most
/// four passes for a 64-bit key.
const BITS_PER_PASS: u32 = 16;
const BUCKETS: usize = 1 << BITS_PER_PASS;

/// A key whose unsigned order is `f64::total_cmp`'s order, the order the calls are made in.
fn sort_key(pep: f64) -> u64 {
    let bits = pep.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

/// The calls' threshold: a PEP is called when its sort key is at most `max_key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PepCut {
    max_key: Option<u64>,
}

/// The running sums of one pass: everything below the refined key range, and the range's
/// histogram by the next [`BITS_PER_PASS`] bits.
struct Pass {
    below_count: u64,
    below_sum: f64,
    below_max: Option<u64>,
    counts: Vec<u64>,
    sums: Vec<f64>,
    in_range_max: Option<u64>,
}

impl PepCut {
    /// Finds the threshold of the calls at `target` over the PEPs that `pass` feeds (each call
    /// must feed the same PEPs in the same order; NaN PEPs are never called). `pass` runs at most
    /// four times.
    ///
    /// The called set is the largest prefix of the PEPs in ascending order whose mean is
    /// `<= target`, ties kept together (equal PEPs are all called or none are): because the
    /// prefix mean never falls as the prefix grows, that set is `pep <= t` for one `t`, and a
    /// pass can settle, bucket by bucket of a histogram of the keys, every bucket but the one
    /// where the mean crosses `target`, which the next pass refines.
    pub fn find<E>(
        target: f64,
        mut pass: impl FnMut(&mut dyn FnMut(f64)) -> Result<(), E>,
    ) -> Result<Self, E> {
        // Keys whose top `fixed` bits equal `prefix` are histogrammed by their next bits.
        let mut prefix = 0u64;
        let mut fixed = 0u32;
        loop {
            let shift = 64 - fixed - BITS_PER_PASS;
            let mut sums = Pass {
                below_count: 0,
                below_sum: 0.0,
                below_max: None,
                counts: vec![0; BUCKETS],
                sums: vec![0.0; BUCKETS],
                in_range_max: None,
            };
            pass(&mut |pep: f64| {
                if pep.is_nan() {
                    return;
                }
                let key = sort_key(pep);
                let top = if fixed == 0 { 0 } else { key >> (64 - fixed) };
                if top < prefix {
                    sums.below_count += 1;
                    sums.below_sum += pep;
                    sums.below_max = sums.below_max.max(Some(key));
                } else if top == prefix {
                    let bucket = ((key >> shift) as usize) & (BUCKETS - 1);
                    sums.counts[bucket] += 1;
                    sums.sums[bucket] += pep;
                    sums.in_range_max = sums.in_range_max.max(Some(key));
                }
            })?;
            // Everything below the range was accepted by the earlier passes.
            let mut count = sums.below_count;
            let mut sum = sums.below_sum;
            let mut accepted = sums.below_max;
            let mut crossing = None;
            for bucket in 0..BUCKETS {
                let n = sums.counts[bucket];
                if n == 0 {
                    continue;
                }
                if (sum + sums.sums[bucket]) / (count + n) as f64 > target {
                    crossing = Some(bucket as u64);
                    break;
                }
                count += n;
                sum += sums.sums[bucket];
                // The bucket's largest key: exact once every bit is fixed; otherwise refined
                // below only if a later bucket crosses, so the range maximum stands in for it
                // when none does.
                accepted = if shift == 0 {
                    Some((prefix << BITS_PER_PASS) | bucket as u64)
                } else {
                    sums.in_range_max
                };
            }
            match crossing {
                // A bucket of one key is one tie group: it is out as a whole.
                Some(_) if shift == 0 => return Ok(Self { max_key: accepted }),
                Some(bucket) => {
                    prefix = (prefix << BITS_PER_PASS) | bucket;
                    fixed += BITS_PER_PASS;
                }
                None => return Ok(Self { max_key: accepted }),
            }
        }
    }

    /// Whether a region with this PEP is called.
    pub fn called(&self, pep: f64) -> bool {
        !pep.is_nan() && self.max_key.is_some_and(|max| sort_key(pep) <= max)
    }
}

/// Region-level Bayesian FDR control: calls the largest set of regions, taken in ascending
/// order of PEP, whose mean PEP is `<= target` (see [`PepCut::find`]).
///
/// Ties are kept together (regions with equal PEP are all called or none are), so the result
/// does not depend on input order; NaN PEPs are never called.
///
/// # Examples
/// ```
/// let calls = methvb_model::call_by_pep(&[0.01, 0.5, 0.02, 0.09], 0.05);
/// assert_eq!(calls, vec![true, false, true, true]);
/// ```
pub fn call_by_pep(pep: &[f64], target: f64) -> Vec<bool> {
    let Ok(cut) = PepCut::find(target, |add| {
        pep.iter().for_each(|&p| add(p));
        Ok::<(), Infallible>(())
    });
    pep.iter().map(|&p| cut.called(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    /// The definition, by sorting: ascending PEPs in tie groups while the mean stays in bound.
    fn calls_by_sorting(pep: &[f64], target: f64) -> Vec<bool> {
        let mut idx: Vec<usize> = (0..pep.len()).filter(|&i| !pep[i].is_nan()).collect();
        idx.sort_by(|&i, &j| pep[i].total_cmp(&pep[j]));
        let mut calls = vec![false; pep.len()];
        let (mut sum, mut i) = (0.0, 0);
        while i < idx.len() {
            let mut e = i + 1;
            while e < idx.len() && pep[idx[e]] == pep[idx[i]] {
                e += 1;
            }
            let group: f64 = idx[i..e].iter().map(|&t| pep[t]).sum();
            if (sum + group) / e as f64 > target {
                break;
            }
            sum += group;
            idx[i..e].iter().for_each(|&t| calls[t] = true);
            i = e;
        }
        calls
    }

    #[test]
    fn call_by_pep_prefix_and_ties() {
        assert_eq!(call_by_pep(&[], 0.05), Vec::<bool>::new());
        assert_eq!(call_by_pep(&[0.2, 0.3], 0.05), vec![false, false]);
        // Mean of {0, 0.04, 0.1} = 0.0467 <= 0.05; adding 0.12 gives 0.065.
        assert_eq!(
            call_by_pep(&[0.12, 0.0, 0.1, 0.04], 0.05),
            vec![false, true, true, true]
        );
        // A tie that would straddle the bound is excluded as a whole.
        assert_eq!(
            call_by_pep(&[0.0, 0.08, 0.08], 0.05),
            vec![true, false, false]
        );
        assert_eq!(
            call_by_pep(&[0.0, 0.0, 0.12, 0.12], 0.05),
            vec![true, true, false, false]
        );
        assert_eq!(call_by_pep(&[0.0, 0.0, 0.08, 0.08], 0.05), vec![true; 4]);
        assert_eq!(call_by_pep(&[f64::NAN, 0.01], 0.05), vec![false, true]);
        assert_eq!(call_by_pep(&[f64::NAN], 0.05), vec![false]);
    }

    #[test]
    fn the_threshold_equals_the_sorted_definition() {
        let mut rng = StdRng::seed_from_u64(7);
        for case in 0..60 {
            let n = [1, 10, 1_000, 50_000][case % 4];
            let pep: Vec<f64> = (0..n)
                .map(|_| match case % 3 {
                    // Spread over the unit interval, many near 0 as in a genome.
                    0 => rng.random::<f64>().powi(4),
                    // Half near 0, half crowded into a narrow band where the mean crosses
                    // 0.05, so the crossing needs all four passes.
                    1 if rng.random::<bool>() => 1e-3 * rng.random::<f64>(),
                    1 => 0.1 + 1e-12 * rng.random::<f64>(),
                    // Few distinct values: ties straddle the crossing.
                    _ => f64::from(rng.random_range(0..8u32)) / 40.0,
                })
                .collect();
            for target in [0.0, 0.01, 0.05, 0.2, 1.0] {
                assert_eq!(
                    call_by_pep(&pep, target),
                    calls_by_sorting(&pep, target),
                    "case {case}, n {n}, target {target}"
                );
            }
        }
    }

    #[test]
    fn each_pass_refines_sixteen_bits() {
        let pep: Vec<f64> = (0..5_000).map(|i| 0.05 + 1e-15 * f64::from(i)).collect();
        let mut passes = 0;
        let Ok(cut) = PepCut::find(0.05 + 1e-13, |add| {
            passes += 1;
            pep.iter().for_each(|&p| add(p));
            Ok::<(), Infallible>(())
        });
        // The values differ from the 40th bit of the mantissa on: the last pass is needed.
        assert_eq!(passes, 4);
        let calls: Vec<bool> = pep.iter().map(|&p| cut.called(p)).collect();
        assert_eq!(calls, calls_by_sorting(&pep, 0.05 + 1e-13));
        assert_eq!(calls.iter().filter(|&&c| c).count(), 201);
    }
}
