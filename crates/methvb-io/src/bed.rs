//! Regions of a BED file, streamed per contig (see [`crate::regions`] for the rules on ids,
//! overlaps and contigs).
//!
//! Opening a BED reads it three times and keeps only what is per contig or per shared name: the
//! contigs with their region counts, where each contig's lines start, and the names that
//! several regions share. Names and region ids are checked for repeats through a Bloom filter
//! of fixed size ([`SeenFilter`], 8 MB while the file is opened); only those it flags are
//! compared as text (in a second and fourth read). A contig whose lines form one block sorted by
//! (start, end, id), as `sort -k1,1 -k2,2n -k3,3n` leaves them, is then streamed from that block
//! while the data are on it ([`BedRegions::cursor`]), so memory does not grow with the file;
//! any other contig's regions are read and sorted when the data reach it, and held until they
//! leave it.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufRead, BufReader, Cursor, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{ErrorKind, ReadError};

/// One BED region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BedRegion {
    pub start: u64,
    pub end: u64,
    pub id: String,
    /// The BED line it came from (1-based).
    pub line: u64,
}

/// Where the BED text is: its file (read again per contig) or bytes held in memory.
#[derive(Debug, Clone)]
enum Source {
    File,
    Bytes(Arc<[u8]>),
}

/// One contig of the BED.
#[derive(Debug, Clone)]
struct BedContig {
    name: String,
    regions: usize,
    /// Line of its first region.
    first_line: u64,
    /// Byte offset and line number of its first region's line, when its lines form one block
    /// in (start, end, id) order.
    block: Option<(u64, u64)>,
}

/// A name several regions share: how many, and their first lines (for the warning).
#[derive(Debug, Clone)]
struct SharedName {
    name: String,
    regions: usize,
    lines: Vec<u64>,
}

/// Lines of the warning about a shared name.
const SHARED_NAME_LINES: usize = 4;

/// Regions of a BED file, grouped by contig and sorted by (start, end, id).
#[derive(Debug, Clone)]
pub struct BedRegions {
    path: PathBuf,
    source: Source,
    contigs: Vec<BedContig>,
    index: HashMap<String, usize>,
    len: usize,
    /// Names that several regions share (their ids got the coordinates), in order of first line.
    shared: Vec<SharedName>,
    shared_set: HashSet<String>,
}

/// The fields of one region line; `name` is `None` when the line has none.
struct Fields<'a> {
    line: u64,
    offset: u64,
    chrom: &'a str,
    start: u64,
    end: u64,
    name: Option<Cow<'a, str>>,
}

/// The region lines of a BED, parsed one at a time.
struct Lines {
    path: PathBuf,
    reader: Box<dyn BufRead + Send>,
    buf: String,
    /// Number of the last line read and the byte offset after it.
    line: u64,
    offset: u64,
}

impl Lines {
    /// Reads from byte `offset`, which starts line `line + 1`.
    fn open(bed: &BedRegions, offset: u64, line: u64) -> Result<Self, ReadError> {
        let io = |e: std::io::Error| ReadError::new(&bed.path, line, e.into());
        let reader: Box<dyn BufRead + Send> = match &bed.source {
            Source::File => {
                let mut file = std::fs::File::open(&bed.path).map_err(io)?;
                file.seek(SeekFrom::Start(offset)).map_err(io)?;
                Box::new(BufReader::new(file))
            }
            Source::Bytes(bytes) => {
                let mut cursor = Cursor::new(Arc::clone(bytes));
                cursor.set_position(offset);
                Box::new(cursor)
            }
        };
        Ok(Self {
            path: bed.path.clone(),
            reader,
            buf: String::new(),
            line,
            offset,
        })
    }

    /// The next region line (blank, comment, `track` and `browser` lines skipped), or `None` at
    /// the end of the file. Errors name the line.
    fn next(&mut self) -> Result<Option<Fields<'_>>, ReadError> {
        loop {
            self.buf.clear();
            let lineno = self.line + 1;
            let offset = self.offset;
            let read = self
                .reader
                .read_line(&mut self.buf)
                .map_err(|e| ReadError::new(&self.path, lineno, e.into()))?;
            if read == 0 {
                return Ok(None);
            }
            self.line = lineno;
            self.offset += read as u64;
            let line = self.buf.trim_end_matches(['\r', '\n']);
            if line.trim().is_empty()
                || line.starts_with('#')
                || line.starts_with("track")
                || line.starts_with("browser")
            {
                continue;
            }
            // Borrowed again: a borrow that lives on past `continue` would keep `buf` borrowed
            // into the next turn of the loop (the borrow checker's conditional-return limit).
            let line = self.buf.trim_end_matches(['\r', '\n']);
            return parse_line(line, lineno, offset, &self.path).map(Some);
        }
    }
}

/// Parses one region line: tab-separated, or — when it has no tab — whitespace-separated with
/// the first three fields as chrom, start, end and the rest, joined by single spaces, as the
/// name.
fn parse_line<'a>(
    line: &'a str,
    lineno: u64,
    offset: u64,
    path: &Path,
) -> Result<Fields<'a>, ReadError> {
    let err = |msg: String| ReadError::new(path, lineno, ErrorKind::Regions(msg));
    let (chrom, start, end, name) = if line.contains('\t') {
        let mut f = line.split('\t');
        let chrom = f.next().unwrap_or("");
        let start = f.next();
        let end = f.next();
        let name = f.next().map(str::trim).filter(|s| !s.is_empty());
        (chrom, start, end, name.map(Cow::Borrowed))
    } else {
        let mut f = line.split_whitespace();
        let chrom = f.next().unwrap_or("");
        let start = f.next();
        let end = f.next();
        let rest: Vec<&str> = f.collect();
        let name = match rest.as_slice() {
            [] => None,
            [one] => Some(Cow::Borrowed(*one)),
            _ => Some(Cow::Owned(rest.join(" "))),
        };
        (chrom, start, end, name)
    };
    let (Some(start), Some(end)) = (start, end) else {
        return Err(err(
            "a BED line needs at least 3 fields: chrom, start, end".into()
        ));
    };
    if chrom.is_empty() {
        return Err(err("empty contig name".into()));
    }
    let parse = |s: &str, what: &str| {
        s.trim().parse::<u64>().map_err(|_| {
            err(format!(
                "{what} is not a non-negative integer: {:?}",
                s.chars().take(40).collect::<String>()
            ))
        })
    };
    let start = parse(start, "start")?;
    let end = parse(end, "end")?;
    if end < start {
        return Err(err(format!("end {end} is before start {start}")));
    }
    Ok(Fields {
        line: lineno,
        offset,
        chrom,
        start,
        end,
        name,
    })
}

fn hash_of(text: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// Bits of [`SeenFilter`] (8 MB).
const FILTER_BITS_LOG2: u32 = 26;
/// Bits set per text.
const FILTER_PROBES: u64 = 4;

/// A Bloom filter of fixed size over text hashes: whether a text may have been added before.
/// It never misses a repeat; a false alarm (about 2 in 10,000 at 2M texts) only sends one more
/// text to the exact check, so its size bounds the memory of opening a BED whatever its length.
struct SeenFilter {
    bits: Vec<u64>,
}

impl SeenFilter {
    fn new() -> Self {
        Self {
            bits: vec![0; 1 << (FILTER_BITS_LOG2 - 6)],
        }
    }

    /// Adds the text of `hash`; whether it may have been added before.
    fn insert(&mut self, hash: u64) -> bool {
        let mask = (1u64 << FILTER_BITS_LOG2) - 1;
        // Double hashing: the low bits start, the high bits give an odd stride.
        let stride = (hash >> 32) | 1;
        let mut seen = true;
        for probe in 0..FILTER_PROBES {
            let bit = hash.wrapping_add(probe.wrapping_mul(stride)) & mask;
            let (word, bit) = ((bit >> 6) as usize, bit & 63);
            seen &= (self.bits[word] >> bit) & 1 == 1;
            self.bits[word] |= 1 << bit;
        }
        seen
    }
}

/// Hashes of the texts fed to `seen` that may repeat (every true repeat among them).
type MaybeRepeated = HashSet<u64>;

impl BedRegions {
    /// Reads a BED file (plain text).
    ///
    /// Lines are tab-separated, or — when a line has no tab — whitespace-separated with the
    /// first three fields as chrom, start, end and the rest, joined by single spaces, as the
    /// name. Empty lines and lines starting with `#`, `track` or `browser` are skipped.
    pub fn from_path(path: &Path) -> Result<Self, ReadError> {
        Self::open(path, Source::File)
    }

    /// Parses BED text from `reader` (held in memory); `path` is used in error messages.
    ///
    /// Errors: a malformed line, no region at all, and two regions with the same id once
    /// repeated names carry their coordinates (see [`crate::regions`]).
    pub fn from_reader(path: &Path, mut reader: impl BufRead) -> Result<Self, ReadError> {
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .map_err(|e| ReadError::new(path, 0, e.into()))?;
        Self::open(path, Source::Bytes(bytes.into()))
    }

    fn open(path: &Path, source: Source) -> Result<Self, ReadError> {
        let mut bed = Self {
            path: path.to_path_buf(),
            source,
            contigs: Vec::new(),
            index: HashMap::new(),
            len: 0,
            shared: Vec::new(),
            shared_set: HashSet::new(),
        };
        let names = bed.scan_contigs()?;
        if bed.len == 0 {
            return Err(ReadError::new(
                path,
                0,
                ErrorKind::Regions(
                    "the BED has no regions (every line is blank, a comment, or a track or \
                     browser line)"
                        .into(),
                ),
            ));
        }
        bed.find_shared_names(&names)?;
        let ids = bed.find_blocks()?;
        bed.check_unique_ids(&ids)?;
        Ok(bed)
    }

    /// First read: every line parsed, the contigs counted, and the names that may repeat.
    fn scan_contigs(&mut self) -> Result<MaybeRepeated, ReadError> {
        let mut lines = Lines::open(self, 0, 0)?;
        let mut seen = SeenFilter::new();
        let mut maybe = MaybeRepeated::new();
        // Contigs whose block of lines has ended (another contig came after them).
        let mut ended: Vec<bool> = Vec::new();
        let mut current: Option<usize> = None;
        while let Some(f) = lines.next()? {
            let k = match self.index.get(f.chrom) {
                Some(&k) => k,
                None => {
                    self.index.insert(f.chrom.to_string(), self.contigs.len());
                    self.contigs.push(BedContig {
                        name: f.chrom.to_string(),
                        regions: 0,
                        first_line: f.line,
                        block: Some((f.offset, f.line - 1)),
                    });
                    ended.push(false);
                    self.contigs.len() - 1
                }
            };
            if current != Some(k) {
                if let Some(previous) = current {
                    ended[previous] = true;
                }
                if ended[k] {
                    self.contigs[k].block = None;
                }
                current = Some(k);
            }
            self.contigs[k].regions += 1;
            self.len += 1;
            if let Some(name) = &f.name {
                let hash = hash_of(name);
                if seen.insert(hash) {
                    maybe.insert(hash);
                }
            }
        }
        Ok(maybe)
    }

    /// Second read (when two names may be equal): the names several regions share.
    fn find_shared_names(&mut self, repeated: &MaybeRepeated) -> Result<(), ReadError> {
        if repeated.is_empty() {
            return Ok(());
        }
        let mut candidates: HashMap<String, SharedName> = HashMap::new();
        let mut lines = Lines::open(self, 0, 0)?;
        while let Some(f) = lines.next()? {
            let Some(name) = &f.name else { continue };
            if !repeated.contains(&hash_of(name)) {
                continue;
            }
            let entry = candidates
                .entry(name.to_string())
                .or_insert_with(|| SharedName {
                    name: name.to_string(),
                    regions: 0,
                    lines: Vec::new(),
                });
            entry.regions += 1;
            if entry.lines.len() < SHARED_NAME_LINES {
                entry.lines.push(f.line);
            }
        }
        self.shared = candidates.into_values().filter(|s| s.regions > 1).collect();
        self.shared.sort_by_key(|s| s.lines[0]);
        self.shared_set = self.shared.iter().map(|s| s.name.clone()).collect();
        Ok(())
    }

    /// The id of a region: its name (with its coordinates when the name is shared), else
    /// `chrom:start-end`.
    fn region_id(&self, f: &Fields) -> String {
        match &f.name {
            Some(name) if self.shared_set.contains(name.as_ref()) => {
                format!("{name}@{}:{}-{}", f.chrom, f.start, f.end)
            }
            Some(name) => name.to_string(),
            None => format!("{}:{}-{}", f.chrom, f.start, f.end),
        }
    }

    /// Third read: which contigs' blocks are in (start, end, id) order, and the ids that may
    /// repeat.
    fn find_blocks(&mut self) -> Result<MaybeRepeated, ReadError> {
        let mut seen = SeenFilter::new();
        let mut maybe = MaybeRepeated::new();
        let mut previous: Option<(usize, u64, u64, String)> = None;
        let mut unsorted: Vec<usize> = Vec::new();
        let mut lines = Lines::open(self, 0, 0)?;
        while let Some(f) = lines.next()? {
            let id = self.region_id(&f);
            let hash = hash_of(&id);
            if seen.insert(hash) {
                maybe.insert(hash);
            }
            let k = self.index[f.chrom];
            if let Some((pk, start, end, pid)) = &previous
                && *pk == k
                && (*start, *end, pid.as_str()) > (f.start, f.end, id.as_str())
            {
                unsorted.push(k);
            }
            previous = Some((k, f.start, f.end, id));
        }
        for k in unsorted {
            self.contigs[k].block = None;
        }
        Ok(maybe)
    }

    /// Fourth read (when two ids may be equal): errors at the first line whose id an earlier
    /// line has.
    fn check_unique_ids(&self, repeated: &MaybeRepeated) -> Result<(), ReadError> {
        if repeated.is_empty() {
            return Ok(());
        }
        let mut first_line: HashMap<String, u64> = HashMap::new();
        let mut lines = Lines::open(self, 0, 0)?;
        while let Some(f) = lines.next()? {
            let id = self.region_id(&f);
            if !repeated.contains(&hash_of(&id)) {
                continue;
            }
            if let Some(&first) = first_line.get(&id) {
                return Err(ReadError::new(
                    &self.path,
                    f.line,
                    ErrorKind::Regions(format!(
                        "region id {id:?} is already used by line {first}; region ids must be \
                         unique: remove the repeated line or give one of them another name"
                    )),
                ));
            }
            first_line.insert(id, f.line);
        }
        Ok(())
    }

    /// When several regions shared a name: what their ids became, for a warning.
    pub fn repeated_names_warning(&self) -> Option<String> {
        let first = self.shared.first()?;
        let regions: usize = self.shared.iter().map(|s| s.regions).sum();
        let lines: Vec<String> = first.lines.iter().map(u64::to_string).collect();
        let names = match self.shared.len() {
            1 => "1 name is".to_string(),
            n => format!("{n} names are"),
        };
        Some(format!(
            "{}: {names} shared by {regions} regions (e.g. {:?} on lines {}); region ids must \
             be unique, so each of those regions is named name@chrom:start-end",
            self.path.display(),
            first.name,
            lines.join(", ")
        ))
    }

    /// Number of regions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the file held no region.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Contig names in order of first appearance in the file, each with its number of regions.
    pub fn contigs(&self) -> impl Iterator<Item = (&str, usize)> {
        self.contigs.iter().map(|c| (c.name.as_str(), c.regions))
    }

    /// The file the regions came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The index of contig `name`, if the BED has it.
    pub(crate) fn contig_index(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The line of contig `k`'s first region.
    pub(crate) fn first_line(&self, k: usize) -> u64 {
        self.contigs[k].first_line
    }

    /// The regions of contig `k` in (start, end, id) order, one at a time.
    pub(crate) fn cursor(&self, k: usize) -> Result<BedCursor, ReadError> {
        let contig = &self.contigs[k];
        let source = match contig.block {
            Some((offset, line)) => CursorSource::Block(Lines::open(self, offset, line)?),
            None => CursorSource::Held(self.read_contig(k)?.into_iter()),
        };
        Ok(BedCursor {
            contig: contig.name.clone(),
            source,
            remaining: contig.regions,
            peeked: None,
        })
    }

    /// Every region of contig `k`, sorted, from a read of the whole file.
    fn read_contig(&self, k: usize) -> Result<Vec<BedRegion>, ReadError> {
        let name = self.contigs[k].name.as_str();
        let mut regions = Vec::with_capacity(self.contigs[k].regions);
        let mut lines = Lines::open(self, 0, 0)?;
        while let Some(f) = lines.next()? {
            if f.chrom == name {
                regions.push(BedRegion {
                    start: f.start,
                    end: f.end,
                    id: self.region_id(&f),
                    line: f.line,
                });
            }
        }
        regions.sort_by(|a, b| (a.start, a.end, &a.id).cmp(&(b.start, b.end, &b.id)));
        Ok(regions)
    }

    /// The error of a BED that no longer reads as it did when it was opened.
    fn changed(&self, line: u64) -> ReadError {
        ReadError::new(
            &self.path,
            line,
            ErrorKind::Regions(
                "the BED changed while methvb was reading it: leave it unchanged until the run \
                 ends"
                    .into(),
            ),
        )
    }
}

enum CursorSource {
    /// The contig's block of lines, read in place.
    Block(Lines),
    /// The contig's regions, read and sorted.
    Held(std::vec::IntoIter<BedRegion>),
}

/// The regions of one BED contig in (start, end, id) order ([`BedRegions::cursor`]).
pub(crate) struct BedCursor {
    contig: String,
    source: CursorSource,
    /// Regions not yet taken (the peeked one included).
    remaining: usize,
    peeked: Option<BedRegion>,
}

impl std::fmt::Debug for BedCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BedCursor")
            .field("contig", &self.contig)
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

impl BedCursor {
    /// The next region, not taken.
    pub(crate) fn peek(&mut self, bed: &BedRegions) -> Result<Option<&BedRegion>, ReadError> {
        if self.peeked.is_none() && self.remaining > 0 {
            self.peeked = Some(self.read(bed)?);
        }
        Ok(self.peeked.as_ref())
    }

    /// Takes the region [`Self::peek`] returned.
    pub(crate) fn take(&mut self) -> Option<BedRegion> {
        let region = self.peeked.take()?;
        self.remaining -= 1;
        Some(region)
    }

    /// Regions not yet taken.
    pub(crate) fn remaining(&self) -> usize {
        self.remaining
    }

    fn read(&mut self, bed: &BedRegions) -> Result<BedRegion, ReadError> {
        match &mut self.source {
            CursorSource::Held(regions) => regions.next().ok_or_else(|| bed.changed(0)),
            CursorSource::Block(lines) => {
                let line = lines.line;
                let Some(f) = lines.next()? else {
                    return Err(bed.changed(line));
                };
                if f.chrom != self.contig {
                    return Err(bed.changed(f.line));
                }
                Ok(BedRegion {
                    start: f.start,
                    end: f.end,
                    id: bed.region_id(&f),
                    line: f.line,
                })
            }
        }
    }
}

#[cfg(test)]
impl BedRegions {
    /// Every region of contig `name`, through its cursor.
    pub(crate) fn regions_of(&self, name: &str) -> Vec<BedRegion> {
        let k = self.index[name];
        let mut cursor = self.cursor(k).unwrap();
        let mut out = Vec::new();
        while cursor.peek(self).unwrap().is_some() {
            out.extend(cursor.take());
        }
        out
    }

    /// Whether contig `name` streams from its block of lines.
    pub(crate) fn streams(&self, name: &str) -> bool {
        self.contigs[self.index[name]].block.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_never_misses_a_repeat_and_rarely_cries_wolf() {
        let mut seen = SeenFilter::new();
        let texts: Vec<u64> = (0..200_000)
            .map(|i| hash_of(&format!("region_{i}")))
            .collect();
        let false_alarms = texts.iter().filter(|&&h| seen.insert(h)).count();
        // Expected about 0.004 at this load (4 probes, 200k of 2^26 bits); 5 would be a broken
        // probe sequence, not chance.
        assert!(false_alarms < 5, "{false_alarms} false alarms");
        assert!(texts.iter().all(|&h| seen.insert(h)));
    }
}
