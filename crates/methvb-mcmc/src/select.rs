//! Seeded choice of the regions to audit ("a seeded random sample of regions", MODEL.md),
//! independent of thread count and of how the genome is sharded.

use std::collections::BinaryHeap;

use methvb_model::vb::{region_seed, splitmix64};

/// Pseudo-random priority of a region for the audit sample: depends only on `(seed,
/// region_id)`. The audit sample of size `n` is the `n` regions with the smallest priorities,
/// so shards can each keep their `n` smallest and a merge keeps the `n` smallest overall.
pub fn audit_priority(seed: u64, region_id: &str) -> u64 {
    /// ASCII "AUDIT": separates this stream from the VB and chain streams.
    const AUDIT_TAG: u64 = 0x4155_4449_5400_0000;
    splitmix64(region_seed(seed, region_id) ^ AUDIT_TAG)
}

/// Indices (ascending) of the `n` regions with the smallest [`audit_priority`] among `ids`
/// (all of them if there are at most `n`); ties are broken by index. Streams over `ids`
/// keeping `n` candidates.
///
/// # Examples
/// ```
/// let ids = ["r1", "r2", "r3", "r4"];
/// let pick = methvb_mcmc::select_for_audit(ids, 2, 42);
/// assert_eq!(pick.len(), 2);
/// assert_eq!(pick, methvb_mcmc::select_for_audit(ids, 2, 42));
/// ```
pub fn select_for_audit<'a>(
    ids: impl IntoIterator<Item = &'a str>,
    n: usize,
    seed: u64,
) -> Vec<usize> {
    let mut heap: BinaryHeap<(u64, usize)> = BinaryHeap::with_capacity(n + 1);
    for (i, id) in ids.into_iter().enumerate() {
        if n == 0 {
            break;
        }
        heap.push((audit_priority(seed, id), i));
        if heap.len() > n {
            heap.pop();
        }
    }
    let mut out: Vec<usize> = heap.into_iter().map(|(_, i)| i).collect();
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_is_the_n_smallest_priorities_and_shard_independent() {
        let ids: Vec<String> = (0..500)
            .map(|i| format!("chr1:{}-{}", i * 100, i * 100 + 50))
            .collect();
        let pick = select_for_audit(ids.iter().map(String::as_str), 20, 7);
        assert_eq!(pick.len(), 20);
        // Brute force: sort all priorities.
        let mut all: Vec<(u64, usize)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (audit_priority(7, id), i))
            .collect();
        all.sort_unstable();
        let mut want: Vec<usize> = all[..20].iter().map(|x| x.1).collect();
        want.sort_unstable();
        assert_eq!(pick, want);
        // Two shards, each keeping its 20 smallest, then merged: the same regions.
        let (a, b) = ids.split_at(230);
        let mut merged: Vec<(u64, &str)> = select_for_audit(a.iter().map(String::as_str), 20, 7)
            .into_iter()
            .map(|i| (audit_priority(7, &a[i]), a[i].as_str()))
            .chain(
                select_for_audit(b.iter().map(String::as_str), 20, 7)
                    .into_iter()
                    .map(|i| (audit_priority(7, &b[i]), b[i].as_str())),
            )
            .collect();
        merged.sort_unstable();
        let mut got: Vec<&str> = merged[..20].iter().map(|x| x.1).collect();
        got.sort_unstable();
        let mut want_ids: Vec<&str> = want.iter().map(|&i| ids[i].as_str()).collect();
        want_ids.sort_unstable();
        assert_eq!(got, want_ids);
        // Another seed, another sample; n = 0 and n > len.
        assert_ne!(
            select_for_audit(ids.iter().map(String::as_str), 20, 8),
            pick
        );
        assert!(select_for_audit(ids.iter().map(String::as_str), 0, 7).is_empty());
        assert_eq!(select_for_audit(["x", "y"], 5, 7), vec![0, 1]);
    }
}
