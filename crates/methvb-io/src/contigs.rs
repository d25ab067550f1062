//! Contig order for the multi-sample merge.
//!
//! The merge walks the genome one contig at a time, so every input must visit its contigs in
//! one common order. That order is either
//!
//! * **fixed** by the user with `--contigs`: a FASTA index (`.fai`, the first column of each line
//!   names a contig) or a sequence dictionary (`.dict`, the `SN:` field of each `@SQ` line); every
//!   contig in the data must then be listed there, or
//! * **learned** while the inputs stream ([`ContigOrder::Learned`]).
//!
//! # The learned-order rule
//!
//! Samples are merged one contig at a time. When the current contig is exhausted in every sample,
//! the samples may stand at different next contigs; the merge then takes the one that comes first
//! in the fixed order if there is one, else the smallest by natural, numeric-aware name order
//! ([`natural_cmp`]: `chr2 < chr10`, `chr9 < chrX`). A contig is *finished* once every sample has
//! moved past it. A sample that later arrives at a finished contig had its contigs in a different
//! order from another sample: the merge stops with an [`ErrorKind::Contigs`] error naming both
//! files and saying "contig order differs between samples; pass --contigs genome.fai".
//!
//! The merge looks only one site ahead per sample, so a learned order can also fail on inputs
//! that do not contradict each other: sample A sorted `chr10, chr2` and sample B holding only
//! `chr2` — natural order takes `chr2` first (from B), and A's `chr2` then arrives after it was
//! finished. A fixed order from `--contigs` never has this problem.
//!
//! Contig naming mismatches (`1` in one sample, `chr1` in another; `MT` against `chrM`) are
//! reported as soon as a contig appears in one sample while its prefixed/unprefixed twin
//! ([`contig_aliases`]) was seen in another sample.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::error::{ErrorKind, ReadError};

/// The order in which the merge visits contigs: fixed by the user or learned from the inputs.
#[derive(Debug, Clone, Default)]
pub enum ContigOrder {
    /// Learned from the inputs as they stream (see the module docs for the rule).
    #[default]
    Learned,
    /// Fixed by a `.fai` or `.dict` file; contigs not listed there are an error.
    Fixed(FixedOrder),
}

/// A contig order read from a `.fai` or `.dict` file.
#[derive(Debug, Clone)]
pub struct FixedOrder {
    /// The file the order was read from.
    pub path: PathBuf,
    names: Vec<String>,
    rank: HashMap<String, usize>,
}

impl FixedOrder {
    /// Builds an order from names (in order); `path` is used for error messages.
    ///
    /// A name listed twice is an error.
    pub fn from_names(path: impl Into<PathBuf>, names: Vec<String>) -> Result<Self, ReadError> {
        let path = path.into();
        let mut rank = HashMap::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            if rank.insert(name.clone(), i).is_some() {
                return Err(ReadError::new(
                    &path,
                    0,
                    ErrorKind::Contigs(format!("contig {name} is listed twice")),
                ));
            }
        }
        if names.is_empty() {
            return Err(ReadError::new(
                &path,
                0,
                ErrorKind::Contigs("no contig listed".into()),
            ));
        }
        Ok(Self { path, names, rank })
    }

    /// The contig names in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The 0-based rank of `name`, `None` when it is not listed.
    pub fn rank(&self, name: &str) -> Option<usize> {
        self.rank.get(name).copied()
    }
}

impl ContigOrder {
    /// Reads a fixed order from `path`: a sequence dictionary when the name ends in `.dict`
    /// (or the first non-empty line starts with `@HD`/`@SQ`), else a `.fai` index.
    pub fn from_path(path: &Path) -> Result<Self, ReadError> {
        let file = std::fs::File::open(path).map_err(|e| ReadError::new(path, 0, e.into()))?;
        let reader = BufReader::new(file);
        let is_dict_name = path.extension().is_some_and(|e| e == "dict");
        let mut names = Vec::new();
        let mut dict: Option<bool> = if is_dict_name { Some(true) } else { None };
        for (i, line) in reader.lines().enumerate() {
            let lineno = i as u64 + 1;
            let line = line.map_err(|e| ReadError::new(path, lineno, e.into()))?;
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let is_dict = *dict.get_or_insert_with(|| line.starts_with('@'));
            if is_dict {
                if !line.starts_with("@SQ") {
                    continue;
                }
                let sn = line
                    .split('\t')
                    .skip(1)
                    .find_map(|f| f.strip_prefix("SN:"))
                    .ok_or_else(|| {
                        ReadError::new(
                            path,
                            lineno,
                            ErrorKind::Contigs("@SQ line without an SN: field".into()),
                        )
                    })?;
                names.push(sn.to_string());
            } else {
                let name = line.split('\t').next().unwrap_or("").trim();
                if name.is_empty() {
                    return Err(ReadError::new(
                        path,
                        lineno,
                        ErrorKind::Contigs("empty contig name in the first column".into()),
                    ));
                }
                names.push(name.to_string());
            }
        }
        FixedOrder::from_names(path, names).map(ContigOrder::Fixed)
    }

    /// The fixed order, if any.
    pub fn fixed(&self) -> Option<&FixedOrder> {
        match self {
            ContigOrder::Learned => None,
            ContigOrder::Fixed(f) => Some(f),
        }
    }

    /// Compares two contig names for choosing the next contig: by rank in the fixed order
    /// (unlisted names last), else by [`natural_cmp`].
    pub fn cmp_names(&self, a: &str, b: &str) -> Ordering {
        match self {
            ContigOrder::Learned => natural_cmp(a, b),
            ContigOrder::Fixed(f) => match (f.rank(a), f.rank(b)) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => natural_cmp(a, b),
            },
        }
    }
}

/// Natural (numeric-aware) order of names: runs of ASCII digits compare as numbers, so
/// `chr2 < chr10 < chrX`; ties (e.g. `chr01` against `chr1`) are broken by plain byte order.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < x.len() && j < y.len() {
        if x[i].is_ascii_digit() && y[j].is_ascii_digit() {
            let si = i;
            while i < x.len() && x[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < y.len() && y[j].is_ascii_digit() {
                j += 1;
            }
            // Compare the digit runs as numbers without overflow: strip leading zeros, then
            // longer is larger, then lexicographic.
            let ra = trim_zeros(&x[si..i]);
            let rb = trim_zeros(&y[sj..j]);
            let ord = ra.len().cmp(&rb.len()).then_with(|| ra.cmp(rb));
            if ord != Ordering::Equal {
                return ord;
            }
        } else {
            let ord = x[i].cmp(&y[j]);
            if ord != Ordering::Equal {
                return ord;
            }
            i += 1;
            j += 1;
        }
    }
    (x.len() - i).cmp(&(y.len() - j)).then_with(|| x.cmp(y))
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let k = d.iter().position(|&c| c != b'0').unwrap_or(d.len());
    &d[k..]
}

/// The names another naming convention would use for `name`: `chr1` ↔ `1`, `chrX` ↔ `X`,
/// `chrM` ↔ `MT` (and `chrMT` ↔ `MT`, `M` ↔ `chrM`).
pub fn contig_aliases(name: &str) -> Vec<String> {
    let mut out = Vec::with_capacity(2);
    if let Some(rest) = name.strip_prefix("chr") {
        if !rest.is_empty() {
            out.push(rest.to_string());
        }
        if rest == "M" {
            out.push("MT".to_string());
        }
    } else {
        out.push(format!("chr{name}"));
        if name == "MT" {
            out.push("chrM".to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn natural_order() {
        let mut v = vec!["chr10", "chr2", "chrX", "chr1", "chr1_alt", "chrM", "chr22"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            vec!["chr1", "chr1_alt", "chr2", "chr10", "chr22", "chrM", "chrX"]
        );
        assert_eq!(natural_cmp("2", "10"), Ordering::Less);
        assert_eq!(natural_cmp("chr01", "chr1"), Ordering::Less);
        assert_eq!(natural_cmp("a", "a"), Ordering::Equal);
    }

    #[test]
    fn aliases() {
        assert_eq!(contig_aliases("chr1"), vec!["1"]);
        assert_eq!(contig_aliases("1"), vec!["chr1"]);
        assert_eq!(contig_aliases("chrM"), vec!["M", "MT"]);
        assert_eq!(contig_aliases("MT"), vec!["chrMT", "chrM"]);
    }

    #[test]
    fn reads_fai_and_dict() {
        let dir = tempfile::tempdir().unwrap();
        let fai = dir.path().join("g.fa.fai");
        std::fs::File::create(&fai)
            .unwrap()
            .write_all(b"chr10\t100\t6\t60\t61\nchr2\t50\t200\t60\t61\n")
            .unwrap();
        let o = ContigOrder::from_path(&fai).unwrap();
        assert_eq!(o.fixed().unwrap().names(), ["chr10", "chr2"]);
        assert_eq!(o.cmp_names("chr10", "chr2"), Ordering::Less);
        assert_eq!(o.cmp_names("chrZ", "chr2"), Ordering::Greater);

        let dict = dir.path().join("g.dict");
        std::fs::File::create(&dict)
            .unwrap()
            .write_all(b"@HD\tVN:1.6\n@SQ\tSN:chrB\tLN:10\n@SQ\tSN:chrA\tLN:5\tM5:x\n")
            .unwrap();
        let o = ContigOrder::from_path(&dict).unwrap();
        assert_eq!(o.fixed().unwrap().names(), ["chrB", "chrA"]);

        let dup = dir.path().join("d.fai");
        std::fs::write(&dup, "a\t1\nb\t1\na\t1\n").unwrap();
        let e = ContigOrder::from_path(&dup).unwrap_err();
        assert!(e.to_string().contains("listed twice"), "{e}");
    }
}
