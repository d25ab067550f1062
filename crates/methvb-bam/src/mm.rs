//! A byte parser for the SAM base-modification tags `MM` (positions) and `ML` (probabilities),
//! including the legacy `Mm`/`Ml` names (SAM tags specification, section 1.7).
//!
//! `MM:Z` is a list of groups `B(+|-)codes[.?][,delta]*;` where `B` is the canonical base
//! (`A C G T U N`; `N` matches any base), the sign is the strand of the modification relative to
//! the original read, `codes` is one or more single-letter codes (`C+mh`: several modifications
//! reported jointly, one ML value per code per position) or one ChEBI number (`C+76792`), and the
//! optional mode is `.` (implicit: unlisted bases of that kind are unmodified), `?` (explicit:
//! unlisted bases are not called) or absent (legacy files, which the specification reads as
//! implicit). Each delta skips that many further matching bases of the **original** read (for a
//! reverse-strand record, the reverse complement of `SEQ`) before the base it marks.
//!
//! [`ParsedMods::parse`] turns the tags into groups and calls whose `seq_pos` is an index into
//! `SEQ` as stored in the record; it rejects a group that runs past the end of the sequence and an
//! `ML` array whose length differs from what `MM` needs. It reuses its buffers between records.

use std::fmt;

/// A modification code: a single character (`m`, `h`, `a`, ...) or a ChEBI number.
///
/// The order (characters before ChEBI numbers, then by value) is the order modkit sorts its
/// output rows in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ModCode {
    /// A single-character code such as `m` (5mC) or `h` (5hmC).
    Code(u8),
    /// A ChEBI identifier such as `76792`.
    ChEbi(u32),
}

impl fmt::Display for ModCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModCode::Code(c) => write!(f, "{}", char::from(*c)),
            ModCode::ChEbi(n) => write!(f, "{n}"),
        }
    }
}

impl ModCode {
    /// Parses `m`, `h`, ... or a ChEBI number such as `21839`.
    pub fn parse(s: &str) -> Option<ModCode> {
        let b = s.as_bytes();
        if b.len() == 1 && b[0].is_ascii_alphabetic() {
            Some(ModCode::Code(b[0]))
        } else if !b.is_empty() && b.iter().all(u8::is_ascii_digit) {
            s.parse().ok().map(ModCode::ChEbi)
        } else {
            None
        }
    }
}

/// How unlisted bases of a group's canonical kind are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipMode {
    /// `.`: an unlisted base is unmodified (canonical) with high confidence.
    Implicit,
    /// `?`: an unlisted base has no call.
    Explicit,
    /// No mode character (legacy tags): implicit by the specification.
    Legacy,
}

impl SkipMode {
    /// Whether unlisted bases count as canonical calls.
    pub fn is_implicit(self) -> bool {
        !matches!(self, SkipMode::Explicit)
    }
}

/// One `MM` group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModGroup {
    /// Canonical base as written (`A C G T N`; `U` is stored as `T`).
    pub base: u8,
    /// The modification is on the strand opposite to the original read (`-`).
    pub minus: bool,
    /// `.`, `?` or none.
    pub mode: SkipMode,
    codes: (u32, u32),
    calls: (u32, u32),
}

/// One listed position of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModCall {
    /// Index into `SEQ` as stored in the record (reference orientation for mapped reads).
    pub seq_pos: u32,
    /// Index of this call's first `ML` value (one per code of the group), if `ML` is present.
    pub ml: Option<u32>,
}

/// Why `MM`/`ML` were rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MmError {
    /// The `MM` text does not follow the grammar.
    #[error("malformed MM tag: {0}")]
    Syntax(&'static str),
    /// A delta list skips past the last matching base of the sequence.
    #[error("MM delta list runs past the end of the sequence")]
    OutOfBounds,
    /// `ML` length disagrees with `MM`.
    #[error("ML has {found} values but MM lists {expected} calls")]
    MlLength {
        /// Values MM needs (calls times codes).
        expected: usize,
        /// Values ML has.
        found: usize,
    },
}

/// The parsed `MM`/`ML` of one record (buffers are reused by [`ParsedMods::parse`]).
#[derive(Debug, Default, Clone)]
pub struct ParsedMods {
    groups: Vec<ModGroup>,
    codes: Vec<ModCode>,
    calls: Vec<ModCall>,
    ml: Vec<u8>,
    has_ml: bool,
    lenient_bounds: bool,
}

/// Complement of an upper-case base (`N` and others map to themselves).
#[inline]
pub fn complement(b: u8) -> u8 {
    match b {
        b'A' => b'T',
        b'C' => b'G',
        b'G' => b'C',
        b'T' => b'A',
        other => other,
    }
}

/// Parses an unsigned decimal number at `s[*i..]`, advancing `i`.
fn parse_u32(s: &[u8], i: &mut usize) -> Result<u32, MmError> {
    let start = *i;
    let mut v: u64 = 0;
    while *i < s.len() && s[*i].is_ascii_digit() {
        v = v * 10 + u64::from(s[*i] - b'0');
        if v > u64::from(u32::MAX) {
            return Err(MmError::Syntax("number too large"));
        }
        *i += 1;
    }
    if *i == start {
        return Err(MmError::Syntax("expected a number"));
    }
    Ok(v as u32)
}

impl ParsedMods {
    /// An empty parse result.
    pub fn new() -> Self {
        Self::default()
    }

    /// Old htslib (up to 1.19, e.g. samtools 1.16) behaviour: delta-list entries past the end of
    /// SEQ are ignored (their `ML` values are skipped), instead of [`MmError::OutOfBounds`]. Off by
    /// default; only for reproducing outputs of those versions.
    pub fn set_lenient_bounds(&mut self, lenient: bool) {
        self.lenient_bounds = lenient;
    }

    /// Parses `mm` (the `MM`/`Mm` text) and pairs it with `ml` (the `ML`/`Ml` values, `None`
    /// when the tag is absent) against `seq` (as stored; upper or lower case) of a record that is
    /// reverse-complemented when `reverse`.
    pub fn parse(
        &mut self,
        mm: &[u8],
        ml: Option<&[u8]>,
        seq: &[u8],
        reverse: bool,
    ) -> Result<(), MmError> {
        self.groups.clear();
        self.codes.clear();
        self.calls.clear();
        self.ml.clear();
        self.has_ml = ml.is_some();
        if let Some(ml) = ml {
            self.ml.extend_from_slice(ml);
        }
        let n = seq.len();
        let mut i = 0usize;
        let mut ml_next = 0usize;
        while i < mm.len() {
            if mm[i] == b';' {
                i += 1;
                continue;
            }
            // Header: base, strand, codes, optional mode.
            let base = match mm[i].to_ascii_uppercase() {
                b @ (b'A' | b'C' | b'G' | b'T' | b'N') => b,
                b'U' => b'T',
                _ => return Err(MmError::Syntax("unknown canonical base")),
            };
            i += 1;
            let minus = match mm.get(i) {
                Some(b'+') => false,
                Some(b'-') => true,
                _ => return Err(MmError::Syntax("strand must be + or -")),
            };
            i += 1;
            let code_start = self.codes.len();
            match mm.get(i) {
                Some(c) if c.is_ascii_digit() => {
                    let id = parse_u32(mm, &mut i)?;
                    self.codes.push(ModCode::ChEbi(id));
                }
                _ => {
                    while let Some(&c) = mm.get(i) {
                        if c.is_ascii_alphabetic() {
                            self.codes.push(ModCode::Code(c));
                            i += 1;
                        } else {
                            break;
                        }
                    }
                }
            }
            let n_codes = self.codes.len() - code_start;
            if n_codes == 0 {
                return Err(MmError::Syntax("no modification code"));
            }
            let mode = match mm.get(i) {
                Some(b'.') => {
                    i += 1;
                    SkipMode::Implicit
                }
                Some(b'?') => {
                    i += 1;
                    SkipMode::Explicit
                }
                _ => SkipMode::Legacy,
            };
            // Delta list.
            let call_start = self.calls.len();
            let mut cursor = 0usize; // index into the original read
            loop {
                match mm.get(i) {
                    None => break,
                    Some(b';') => {
                        i += 1;
                        break;
                    }
                    Some(b',') => {
                        i += 1;
                        let mut skip = parse_u32(mm, &mut i)?;
                        // The base to look for in SEQ as stored (complemented for reverse reads).
                        let target = if reverse { complement(base) } else { base };
                        let hit = |b: &u8| base == b'N' || (b & 0xDF) == target;
                        let pos = loop {
                            // `cursor` counts bases of the original read already passed.
                            let found = if reverse {
                                seq[..n - cursor].iter().rposition(hit)
                            } else {
                                seq[cursor..].iter().position(hit).map(|o| cursor + o)
                            };
                            let Some(stored) = found else {
                                if self.lenient_bounds {
                                    break usize::MAX;
                                }
                                return Err(MmError::OutOfBounds);
                            };
                            cursor = if reverse { n - stored } else { stored + 1 };
                            if skip == 0 {
                                break stored;
                            }
                            skip -= 1;
                        };
                        if pos == usize::MAX {
                            // lenient: past the end, no call, but its ML value is consumed
                            ml_next += if self.has_ml { n_codes } else { 0 };
                            cursor = n;
                            continue;
                        }
                        let ml_idx = if self.has_ml {
                            let idx = ml_next;
                            ml_next += n_codes;
                            Some(idx as u32)
                        } else {
                            None
                        };
                        self.calls.push(ModCall {
                            seq_pos: pos as u32,
                            ml: ml_idx,
                        });
                    }
                    Some(_) => return Err(MmError::Syntax("unexpected character in delta list")),
                }
            }
            self.groups.push(ModGroup {
                base,
                minus,
                mode,
                codes: (code_start as u32, n_codes as u32),
                calls: (call_start as u32, (self.calls.len() - call_start) as u32),
            });
        }
        if self.has_ml && ml_next != self.ml.len() {
            return Err(MmError::MlLength {
                expected: ml_next,
                found: self.ml.len(),
            });
        }
        Ok(())
    }

    /// The groups in `MM` order.
    pub fn groups(&self) -> &[ModGroup] {
        &self.groups
    }

    /// The codes of a group, in `MM` order.
    pub fn codes(&self, g: &ModGroup) -> &[ModCode] {
        &self.codes[g.codes.0 as usize..(g.codes.0 + g.codes.1) as usize]
    }

    /// The listed calls of a group, in `MM` order.
    pub fn calls(&self, g: &ModGroup) -> &[ModCall] {
        &self.calls[g.calls.0 as usize..(g.calls.0 + g.calls.1) as usize]
    }

    /// The `ML` value of code number `k` of a call (`None` without `ML`).
    pub fn ml_value(&self, call: &ModCall, k: usize) -> Option<u8> {
        call.ml.and_then(|i| self.ml.get(i as usize + k).copied())
    }

    /// Whether `ML` was present.
    pub fn has_ml(&self) -> bool {
        self.has_ml
    }

    /// Total number of listed calls over all groups.
    pub fn n_calls(&self) -> usize {
        self.calls.len()
    }

    /// Whether the stored base `stored_base` of a record (reverse-complemented when `reverse`)
    /// is of the group's canonical kind, i.e. could carry this group's modification.
    pub fn base_matches(g: &ModGroup, stored_base: u8, reverse: bool) -> bool {
        let b = stored_base.to_ascii_uppercase();
        let b = if reverse { complement(b) } else { b };
        g.base == b'N' || b == g.base
    }
}

/// modkit's probability for an ML value `v`: the midpoint `(v + 0.5) / 256` of the bin
/// `[v/256, (v+1)/256)` the SAM specification assigns to it.
#[inline]
pub fn ml_to_prob(v: u8) -> f32 {
    (f32::from(v) + 0.5) / 256.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_code_and_chebi() {
        let seq = b"AGCTCTCCAGAGTCGNACGCCATYCGCGCGCCACCA";
        let mut p = ParsedMods::new();
        p.parse(
            b"C+mh,2,2,0,0,4,1;N+n,15;",
            Some(&[77, 159, 103, 133, 128, 108, 154, 82, 179, 57, 204, 31, 240]),
            seq,
            false,
        )
        .unwrap();
        let g = p.groups()[0];
        assert_eq!(p.codes(&g), &[ModCode::Code(b'm'), ModCode::Code(b'h')]);
        let pos: Vec<u32> = p.calls(&g).iter().map(|c| c.seq_pos).collect();
        assert_eq!(pos, vec![6, 17, 19, 20, 31, 34]);
        assert_eq!(p.ml_value(&p.calls(&g)[1], 1), Some(133));
        p.parse(b"C+76792,6;", Some(&[1]), seq, false).unwrap();
        assert_eq!(p.codes(&p.groups()[0]), &[ModCode::ChEbi(76792)]);
    }

    #[test]
    fn rejects_bad_input() {
        let mut p = ParsedMods::new();
        assert_eq!(
            p.parse(b"C+m,3;", Some(&[1]), b"CCC", false),
            Err(MmError::OutOfBounds)
        );
        assert_eq!(
            p.parse(b"C+m,0;", Some(&[1, 2]), b"CCC", false),
            Err(MmError::MlLength {
                expected: 1,
                found: 2
            })
        );
        assert!(matches!(
            p.parse(b"X+m,0;", None, b"CCC", false),
            Err(MmError::Syntax(_))
        ));
        assert!(matches!(
            p.parse(b"C+,0;", None, b"CCC", false),
            Err(MmError::Syntax(_))
        ));
    }
}
