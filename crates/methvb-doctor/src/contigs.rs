//! The contigs across inputs: the contig table of the report and the findings that compare the
//! samples, the regions BED and the reference index with each other (naming, contigs in only
//! some samples, spike-ins, a contig shared by every group, reference, regions, order).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use methvb_io::contigs::{ContigOrder, contig_aliases, natural_cmp};
use methvb_io::regions::BedRegions;

use crate::{CheckReport, ContigCheck, Findings, SampleCheck, Severity, looks_like_spike_in};

/// The inputs the samples are compared with.
#[derive(Debug)]
pub(crate) struct Inputs<'a> {
    /// Contig order: from the reference index, or learned from the samples.
    pub order: &'a ContigOrder,
    /// The regions BED, when one was given and could be read.
    pub regions: Option<&'a BedRegions>,
    /// Path of the reference index (`--contigs`).
    pub reference: Option<&'a Path>,
    /// `--exclude-contigs`.
    pub exclude: &'a HashSet<String>,
}

/// Compares the contigs of the samples (as [`SampleCheck::covered_contigs`] knows them; naming
/// takes every contig) with each other, the regions and the reference, and returns the contig
/// table: the samples' contigs in order of appearance, then contigs only in the regions.
pub(crate) fn compare(
    report: &CheckReport,
    inputs: &Inputs,
    found: &mut Findings,
) -> Vec<ContigCheck> {
    let mut table = contig_table(&report.samples, inputs);
    check_naming(&report.samples, inputs, found);
    warn_partial(&table, report.samples.len(), report.complete, found);
    warn_spike_ins(&table, found);
    check_shared(&table, report, found);
    check_reference(&table, inputs, found);
    check_regions(&table, inputs, report.complete, found);
    check_order(&report.samples, inputs.order, found);
    append_region_contigs(&mut table, inputs);
    table
}

/// One row per contig some sample covers: the samples having it, its sites, its regions and
/// whether the reference lists it.
fn contig_table(samples: &[SampleCheck], inputs: &Inputs) -> Vec<ContigCheck> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut table: Vec<ContigCheck> = Vec::new();
    for s in samples {
        for c in s.covered_contigs() {
            let k = *index.entry(c.name.as_str()).or_insert_with(|| {
                table.push(ContigCheck {
                    name: c.name.clone(),
                    samples: Vec::new(),
                    sites: 0,
                    regions: None,
                    in_reference: None,
                });
                table.len() - 1
            });
            table[k].samples.push(s.name.clone());
            table[k].sites += c.sites;
        }
    }
    if let Some(r) = inputs.regions {
        let counts: HashMap<&str, usize> = r.contigs().collect();
        for c in &mut table {
            c.regions = Some(counts.get(c.name.as_str()).copied().unwrap_or(0));
        }
    }
    if let Some(f) = inputs.order.fixed() {
        for c in &mut table {
            c.in_reference = Some(f.rank(&c.name).is_some());
        }
    }
    table
}

/// Naming: each input's contig set against every other input's; an error per pair of inputs
/// with contigs named as each other's aliases.
fn check_naming(samples: &[SampleCheck], inputs: &Inputs, found: &mut Findings) {
    let (sets, regions_input) = naming_inputs(samples, inputs);
    let mut seen_pairs: HashSet<(usize, usize)> = HashSet::new();
    for a in 0..sets.len() {
        for b in 0..sets.len() {
            if a == b || seen_pairs.contains(&(b, a)) {
                continue;
            }
            let pairs = alias_pairs(&sets[a].1, &sets[b].1, Some(a) == regions_input);
            if !pairs.is_empty() {
                seen_pairs.insert((a, b));
                found.push(
                    Severity::Error,
                    "contig-naming",
                    format!(
                        "contig naming differs: {} vs {}: {} — rename one side (add or strip \
                         the `chr` prefix; chrM ↔ MT) so both use the same names",
                        sets[a].0,
                        sets[b].0,
                        some(&pairs, 6)
                    ),
                );
            }
        }
    }
}

/// The inputs whose contig names are compared: each sample file once (every contig, a BAM/SAM
/// header's too), then the regions BED and the reference index without the excluded contigs;
/// and the index of the BED among them.
fn naming_inputs(
    samples: &[SampleCheck],
    inputs: &Inputs,
) -> (Vec<(String, HashSet<String>)>, Option<usize>) {
    let mut sets: Vec<(String, HashSet<String>)> = Vec::new();
    for s in samples {
        // A file listed for several samples is compared once.
        if !sets.iter().any(|(p, _)| *p == s.path) {
            sets.push((
                s.path.clone(),
                s.contigs.iter().map(|c| c.name.clone()).collect(),
            ));
        }
    }
    let regions_input = inputs.regions.map(|_| sets.len());
    if let Some(r) = inputs.regions {
        sets.push((
            r.path().display().to_string(),
            r.contigs()
                .map(|(c, _)| c.to_string())
                .filter(|c| !inputs.exclude.contains(c))
                .collect(),
        ));
    }
    if let (Some(f), Some(p)) = (inputs.order.fixed(), inputs.reference) {
        sets.push((
            p.display().to_string(),
            f.names()
                .iter()
                .filter(|c| !inputs.exclude.contains(*c))
                .cloned()
                .collect(),
        ));
    }
    (sets, regions_input)
}

/// `name ↔ alias` for each contig of `a` (in natural order) missing from `b` whose alias `b`
/// has. The regions are compared one way only (`a_is_regions`): a BED contig whose alias a
/// sample has counts even when the BED also has the sample's name (those regions would be
/// dropped); elsewhere an input holding both names is left alone.
fn alias_pairs(a: &HashSet<String>, b: &HashSet<String>, a_is_regions: bool) -> Vec<String> {
    let mut names: Vec<&String> = a.iter().collect();
    names.sort_by(|x, y| natural_cmp(x, y));
    let mut pairs = Vec::new();
    for name in names {
        if b.contains(name) {
            continue;
        }
        if let Some(alias) = contig_aliases(name)
            .into_iter()
            .find(|al| b.contains(al) && (a_is_regions || !a.contains(al)))
        {
            pairs.push(format!("{name} ↔ {alias}"));
        }
    }
    pairs
}

/// Contigs present in only some samples: a warning (a note while some file was not read to
/// its end) that tells small contigs and spike-ins, worth excluding, from large ones.
fn warn_partial(table: &[ContigCheck], n_samples: usize, complete: bool, found: &mut Findings) {
    if n_samples < 2 {
        return;
    }
    let partial: Vec<&ContigCheck> = table
        .iter()
        .filter(|c| c.samples.len() < n_samples)
        .collect();
    if partial.is_empty() {
        return;
    }
    let names: Vec<String> = partial
        .iter()
        .map(|c| format!("{} ({}/{n_samples} samples)", c.name, c.samples.len()))
        .collect();
    let advice = partial_advice(table, &partial);
    found.push(
        if complete {
            Severity::Warning
        } else {
            Severity::Note
        },
        "partial-contigs",
        format!(
            "contigs present in only some samples{}: {}; the others count as missing there — \
             {advice}",
            if complete { "" } else { " (in the lines read)" },
            some(&names, 8),
        ),
    );
}

/// What to do about contigs in only some samples: small contigs (under 1% of all sites) and
/// spike-ins are worth excluding; large ones missing from some samples point at different
/// references or subsets.
fn partial_advice(table: &[ContigCheck], partial: &[&ContigCheck]) -> String {
    let total: u64 = table.iter().map(|c| c.sites).sum();
    let (minor, major): (Vec<&ContigCheck>, Vec<&ContigCheck>) = partial
        .iter()
        .partition(|c| looks_like_spike_in(&c.name) || (c.sites as f64) < 0.01 * total as f64);
    let mut advice = Vec::new();
    if !minor.is_empty() {
        let list: Vec<&str> = minor.iter().map(|c| c.name.as_str()).collect();
        advice.push(format!(
            "if the small ones are spike-ins or unplaced scaffolds, drop them with \
             --exclude-contigs {}",
            if list.len() <= 30 {
                list.join(",")
            } else {
                format!("{},... ({} in all)", list[..30].join(","), list.len())
            }
        ));
    }
    if !major.is_empty() {
        let list: Vec<String> = major.iter().map(|c| c.name.clone()).collect();
        advice.push(format!(
            "{} hold{} many sites: the samples may come from different references or be cut \
             to different regions",
            some(&list, 5),
            if major.len() == 1 { "s" } else { "" }
        ));
    }
    advice.join("; ")
}

/// Contigs that look like spike-in controls: a warning with the `--exclude-contigs` list.
fn warn_spike_ins(table: &[ContigCheck], found: &mut Findings) {
    let spikes: Vec<&str> = table
        .iter()
        .filter(|c| looks_like_spike_in(&c.name))
        .map(|c| c.name.as_str())
        .collect();
    if spikes.is_empty() {
        return;
    }
    let one = spikes.len() == 1;
    found.push(
        Severity::Warning,
        "spike-in",
        format!(
            "{} {} like {} (a conversion control, not the genome studied): exclude {} with \
             --exclude-contigs {}",
            spikes.join(", "),
            if one { "looks" } else { "look" },
            if one {
                "a spike-in control"
            } else {
                "spike-in controls"
            },
            if one { "it" } else { "them" },
            spikes.join(",")
        ),
    );
}

/// Some contig must be covered in every group, or every site fails the group filter (told only
/// when every sample could be read).
fn check_shared(table: &[ContigCheck], report: &CheckReport, found: &mut Findings) {
    if report.groups.len() < 2 || report.samples.iter().any(|s| s.error.is_some()) {
        return;
    }
    let shared = table.iter().any(|c| {
        report.groups.iter().all(|g| {
            report
                .samples
                .iter()
                .any(|s| s.group == g.name && c.samples.contains(&s.name))
        })
    });
    if shared || table.is_empty() {
        return;
    }
    let complete = report.complete;
    found.push(
        if complete {
            Severity::Error
        } else {
            Severity::Warning
        },
        "no-shared-contig",
        format!(
            "no contig has data in every group{}: every site would be dropped by the group \
             filter — check that the samples come from the same reference and regions",
            if complete { "" } else { " (in the lines read)" }
        ),
    );
}

/// Every sample contig must be listed by the reference index: the merge stops on the others.
fn check_reference(table: &[ContigCheck], inputs: &Inputs, found: &mut Findings) {
    let (Some(f), Some(p)) = (inputs.order.fixed(), inputs.reference) else {
        return;
    };
    let missing: Vec<String> = table
        .iter()
        .filter(|c| f.rank(&c.name).is_none())
        .map(|c| c.name.clone())
        .collect();
    if !missing.is_empty() {
        found.push(
            Severity::Error,
            "not-in-reference",
            format!(
                "contigs of the samples not in {}: {} — the merge stops on them; use the \
                 reference the data were aligned to, or drop them with --exclude-contigs {}",
                p.display(),
                some(&missing, 8),
                missing.join(",")
            ),
        );
    }
}

/// Regions on contigs no sample has: dropped by the run (a warning), or, when that is every
/// region, the run stops (an error); notes while some file was not read to its end.
fn check_regions(table: &[ContigCheck], inputs: &Inputs, complete: bool, found: &mut Findings) {
    let Some(r) = inputs.regions else {
        return;
    };
    let had: HashSet<&str> = table.iter().map(|c| c.name.as_str()).collect();
    let absent: Vec<String> = r
        .contigs()
        .filter(|(c, _)| !had.contains(c) && !inputs.exclude.contains(*c))
        .map(|(c, n)| format!("{c} ({n} regions)"))
        .collect();
    if absent.is_empty() {
        return;
    }
    let every = absent.len() == r.contigs().count();
    found.push(
        match (complete, every) {
            (true, true) => Severity::Error,
            (true, false) => Severity::Warning,
            (false, _) => Severity::Note,
        },
        "regions-without-sites",
        format!(
            "{}: {}regions on contigs no sample has{}: {} — {}",
            r.path().display(),
            if every { "all " } else { "" },
            if complete { "" } else { " (in the lines read)" },
            some(&absent, 8),
            if every {
                "every region would be dropped and the run stop; use a BED made for the \
                 samples' reference"
            } else {
                "they will be dropped"
            }
        ),
    );
}

/// Contig order across samples: against the reference index, sample by sample; without one,
/// by replaying the merge's learned rule over all samples ([`order_conflict`]).
fn check_order(samples: &[SampleCheck], order: &ContigOrder, found: &mut Findings) {
    let seqs: Vec<Vec<&str>> = samples
        .iter()
        .map(|s| s.covered_contigs().map(|c| c.name.as_str()).collect())
        .collect();
    if let Some(f) = order.fixed() {
        for (s, seq) in samples.iter().zip(&seqs) {
            if let Some(w) = seq
                .windows(2)
                .find(|w| matches!((f.rank(w[0]), f.rank(w[1])), (Some(a), Some(b)) if b < a))
            {
                found.push(
                    Severity::Error,
                    "contig-order",
                    format!(
                        "{}: contig {} comes after {} here, but {} lists {} first: sort the \
                         file in the reference's order",
                        s.path,
                        w[1],
                        w[0],
                        f.path.display(),
                        w[1]
                    ),
                );
            }
        }
    } else if let Some((i, c, before, first)) = order_conflict(&seqs, order) {
        found.push(
            Severity::Error,
            "contig-order",
            format!(
                "{}: contig {c} comes after {before} here, but the merge would already have \
                 finished {c} (taken from {}): contig order differs between samples; pass \
                 --contigs genome.fai",
                samples[i].path, samples[first].path
            ),
        );
    }
}

/// Replays the merge's learned contig rule on the samples' contig sequences: returns the first
/// conflict as (sample that would fail, contig, contig it comes after, sample that had it first).
pub(crate) fn order_conflict(
    seqs: &[Vec<&str>],
    order: &ContigOrder,
) -> Option<(usize, String, String, usize)> {
    let mut next = vec![0usize; seqs.len()];
    let mut finished: HashMap<&str, usize> = HashMap::new();
    loop {
        // Heads; a head at a finished contig means the merge stops there.
        for (i, s) in seqs.iter().enumerate() {
            if let Some(&c) = s.get(next[i])
                && let Some(&first) = finished.get(c)
            {
                let before = s[next[i] - 1].to_string();
                return Some((i, c.to_string(), before, first));
            }
        }
        let mut best: Option<(&str, usize)> = None;
        for (i, s) in seqs.iter().enumerate() {
            if let Some(&c) = s.get(next[i]) {
                best = match best {
                    Some((b, j)) if order.cmp_names(b, c).is_le() => Some((b, j)),
                    _ => Some((c, i)),
                };
            }
        }
        let (c, first) = best?;
        for (i, s) in seqs.iter().enumerate() {
            if s.get(next[i]) == Some(&c) {
                next[i] += 1;
            }
        }
        finished.insert(c, first);
    }
}

/// Contigs only in the regions file, listed after the samples' contigs.
fn append_region_contigs(table: &mut Vec<ContigCheck>, inputs: &Inputs) {
    let Some(r) = inputs.regions else {
        return;
    };
    let had: HashSet<String> = table.iter().map(|c| c.name.clone()).collect();
    for (c, n) in r.contigs() {
        if !had.contains(c) && !inputs.exclude.contains(c) {
            table.push(ContigCheck {
                name: c.to_string(),
                samples: Vec::new(),
                sites: 0,
                regions: Some(n),
                in_reference: inputs.order.fixed().map(|f| f.rank(c).is_some()),
            });
        }
    }
}

/// Up to `k` names, comma-separated, with "and N more".
fn some(names: &[String], k: usize) -> String {
    let mut s = names.iter().take(k).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > k {
        s.push_str(&format!(" and {} more", names.len() - k));
    }
    s
}
