//! The reference FASTA check: the first covered sites of each sample are looked up in the
//! FASTA to tell positions on CpGs from positions one base off (0- vs 1-based coordinates).

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use methvb_io::ReadError;

use crate::{Findings, SampleCheck, Severity};

/// Wanted 0-based positions per contig name, sorted.
type Wanted = HashMap<String, Vec<u64>>;

/// Looks the samples' probe sites up in the FASTA at `fa`, fills their `cpg_fraction` and
/// reports positions off by one base, data not on CpGs, and a FASTA none of whose contigs the
/// samples have; a FASTA that cannot be read is the `fasta` error.
pub(crate) fn check_positions(fa: &Path, samples: &mut [SampleCheck], found: &mut Findings) {
    let wanted = wanted_positions(samples);
    let bases = match read_bases(fa, &wanted) {
        Ok(b) => b,
        Err(e) => {
            found.push(Severity::Error, "fasta", e.to_string());
            return;
        }
    };
    for s in samples.iter_mut() {
        s.cpg_fraction = cpg_fraction(s, &wanted, &bases);
        position_findings(s, fa, found);
    }
    if samples.iter().all(|s| s.cpg_fraction.is_none())
        && samples.iter().any(|s| !s.probe.is_empty())
    {
        found.push(
            Severity::Warning,
            "fasta-contigs",
            format!(
                "{}: none of the samples' contigs is in this FASTA",
                fa.display()
            ),
        );
    }
}

/// Positions p - 2 ..= p + 3 around each probe site, per contig: enough to tell whether p - 1,
/// p or p + 1 is the C or the G of a CpG.
fn wanted_positions(samples: &[SampleCheck]) -> Wanted {
    let mut wanted = Wanted::new();
    for s in samples {
        for &(k, p) in &s.probe {
            let v = wanted.entry(s.contigs[k].name.clone()).or_default();
            v.extend((p.saturating_sub(2))..=p.saturating_add(3));
        }
    }
    for v in wanted.values_mut() {
        v.sort_unstable();
        v.dedup();
    }
    wanted
}

/// Streams the FASTA at `path` once and keeps only the wanted bases (upper case), per contig in
/// the order of its wanted positions; contigs without wanted positions are skipped.
fn read_bases(path: &Path, wanted: &Wanted) -> Result<HashMap<String, Vec<u8>>, ReadError> {
    let mut bases: HashMap<String, Vec<u8>> = HashMap::new();
    let mut reader = methvb_io::input::open(path)?;
    let mut line = Vec::with_capacity(256);
    let mut line_no = 0u64;
    // Current contig: its name, the next wanted position to fill, the bases.
    let mut cur: Option<(String, usize, Vec<u8>)> = None;
    // 0-based position of the current line's first base.
    let mut offset = 0u64;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| methvb_io::input::map_read_error(path, line_no + 1, e))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let l = methvb_io::format::trim_eol(&line);
        if let Some(h) = l.strip_prefix(b">") {
            if let Some((name, _, b)) = cur.take() {
                bases.insert(name, b);
            }
            let name =
                String::from_utf8_lossy(h.split(|b| b.is_ascii_whitespace()).next().unwrap_or(b""))
                    .into_owned();
            offset = 0;
            if let Some(w) = wanted.get(&name) {
                cur = Some((name, 0, vec![b'N'; w.len()]));
            }
            continue;
        }
        let end = offset + l.len() as u64;
        if let Some((name, next, b)) = cur.as_mut()
            && let Some(w) = wanted.get(name.as_str())
        {
            while *next < w.len() && w[*next] < end {
                if w[*next] >= offset {
                    b[*next] = l[(w[*next] - offset) as usize].to_ascii_uppercase();
                }
                *next += 1;
            }
        }
        offset = end;
    }
    if let Some((name, _, b)) = cur.take() {
        bases.insert(name, b);
    }
    Ok(bases)
}

/// The share of the sample's probe sites on a CpG when shifted by −1, 0 and +1 bases, and how
/// many were looked up (`None`: none of its contigs is in the FASTA).
fn cpg_fraction(
    s: &SampleCheck,
    wanted: &Wanted,
    bases: &HashMap<String, Vec<u8>>,
) -> Option<([f64; 3], usize)> {
    let base_at = |name: &str, q: u64| -> u8 {
        match (wanted.get(name), bases.get(name)) {
            (Some(w), Some(b)) => w.binary_search(&q).map_or(b'N', |i| b[i]),
            _ => b'N',
        }
    };
    let mut hits = [0usize; 3];
    let mut looked = 0usize;
    for &(k, p) in &s.probe {
        let name = s.contigs[k].name.as_str();
        if !bases.contains_key(name) {
            continue;
        }
        looked += 1;
        for (i, d) in [-1i64, 0, 1].into_iter().enumerate() {
            let Some(q) = p.checked_add_signed(d) else {
                continue;
            };
            let here = base_at(name, q);
            let on_cpg = (here == b'C' && base_at(name, q + 1) == b'G')
                || (here == b'G' && q > 0 && base_at(name, q - 1) == b'C');
            if on_cpg {
                hits[i] += 1;
            }
        }
    }
    let f = |h: usize| h as f64 / looked as f64;
    (looked > 0).then(|| ([f(hits[0]), f(hits[1]), f(hits[2])], looked))
}

/// From 20 looked-up sites on: positions mostly on a CpG once shifted by one base (an error:
/// the coordinate convention is wrong), or not on CpGs at all (a warning).
fn position_findings(s: &SampleCheck, fa: &Path, found: &mut Findings) {
    let Some(([lo, mid, hi], n)) = s.cpg_fraction else {
        return;
    };
    let (d, best) = if lo >= hi { (-1, lo) } else { (1, hi) };
    if n >= 20 && best >= 0.8 && mid < 0.5 {
        let (seen, truth) = if d == 1 {
            ("one base before", "0-based read as 1-based")
        } else {
            ("one base after", "1-based read as 0-based")
        };
        found.push(
            Severity::Error,
            "off-by-one",
            format!(
                "{}: positions sit {seen} the CpGs of {} ({:.0}% on a CpG shifted by {d:+}, \
                 {:.0}% as read, of {n} sites): the coordinates look {truth}; fix the file or \
                 name its format",
                s.path,
                fa.display(),
                100.0 * best,
                100.0 * mid
            ),
        );
    } else if n >= 20 && mid < 0.5 {
        found.push(
            Severity::Warning,
            "not-cpg",
            format!(
                "{}: only {:.0}% of {n} sites fall on a CpG of {}: not CpG data, or another \
                 reference assembly",
                s.path,
                100.0 * mid,
                fa.display()
            ),
        );
    }
}
