//! Indexed, parallel pileup: a BAM with a `.bai`/`.csi` index is cut into fixed-size regions per
//! contig, regions are piled up in parallel (rayon, in batches of a few regions per thread) and
//! their rows are emitted in contig and position order, so memory stays bounded by one batch.
//!
//! Each region `[start, end)` reads the records overlapping `[start, end]` (one base more, for
//! strand combining) and keeps the rows with `start <= pos < end`; a record is counted in the
//! stats by the region it starts in. Results equal the sequential single pass (tested).
//! [`pileup_region`] does the same over one region given as samtools does (`chr1:1000-2000`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use methvb_io::{ErrorKind, ReadError};
use noodles::bam;
use noodles::core::{Position, Region};
use noodles::csi;
use noodles::sam;
use rayon::prelude::*;

use crate::pileup::{Pileup, PileupError, PileupOptions, PileupRow, PileupStats};
use crate::record::{self, ReadBuf};
use crate::{BamOptions, pileup_err, resolve_filter};

#[derive(Clone)]
enum AnyIndex {
    Bai(bam::bai::Index),
    Csi(csi::Index),
}

type Reader = bam::io::Reader<noodles::bgzf::io::Reader<File>>;

impl AnyIndex {
    fn read(path: &Path) -> std::io::Result<AnyIndex> {
        let candidates = index_candidates(path);
        for candidate in &candidates {
            if candidate.exists() {
                return if candidate.extension().is_some_and(|e| e == "csi") {
                    Ok(AnyIndex::Csi(csi::fs::read(candidate)?))
                } else {
                    Ok(AnyIndex::Bai(bam::bai::fs::read(candidate)?))
                };
            }
        }
        let names: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "a region query needs an index, but there is none: {} not found (make one with `samtools index {}`)",
                names.join(", "),
                path.display()
            ),
        ))
    }

    /// Whether the index has any bins (records) for reference `tid`.
    fn has_records(&self, tid: usize) -> bool {
        match self {
            AnyIndex::Bai(i) => i
                .reference_sequences()
                .get(tid)
                .is_some_and(|r| !r.bins().is_empty()),
            AnyIndex::Csi(i) => i
                .reference_sequences()
                .get(tid)
                .is_some_and(|r| !r.bins().is_empty()),
        }
    }

    /// Opens a plain reader positioned after the header.
    fn open(path: &Path) -> std::io::Result<(Reader, sam::Header)> {
        let mut r = bam::io::Reader::new(File::open(path)?);
        let header = r.read_header()?;
        Ok((r, header))
    }

    fn query<'r>(
        &self,
        reader: &'r mut Reader,
        header: &sam::Header,
        region: &Region,
    ) -> std::io::Result<bam::io::reader::Query<'r, noodles::bgzf::io::Reader<File>>> {
        match self {
            AnyIndex::Bai(i) => reader.query(header, i, region),
            AnyIndex::Csi(i) => reader.query(header, i, region),
        }
    }
}

/// The index files looked for beside `path`, in this order: `<path>.bai`, `<path>.csi` and,
/// for `<stem>.bam`, `<stem>.bai` (Picard's naming).
pub fn index_candidates(path: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = ["bai", "csi"]
        .iter()
        .map(|ext| {
            let mut p = path.as_os_str().to_owned();
            p.push(".");
            p.push(ext);
            PathBuf::from(p)
        })
        .collect();
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("bam"))
    {
        out.push(path.with_extension("bai"));
    }
    out
}

/// Whether an index ([`index_candidates`]) exists beside `path`.
pub fn has_index(path: &Path) -> bool {
    index_candidates(path).iter().any(|p| p.exists())
}

struct Worker {
    reader: Reader,
    record: bam::Record,
    buf: ReadBuf,
}

fn run_region(
    w: &mut Worker,
    index: &AnyIndex,
    header: &sam::Header,
    opts: &PileupOptions,
    contigs: &Arc<Vec<String>>,
    (tid, start, end, len): (usize, u64, u64, u64),
) -> Result<(Vec<PileupRow>, PileupStats), PileupError> {
    let to_pos = |x: u64| {
        Position::try_from(x as usize + 1)
            .map_err(|e| PileupError::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))
    };
    let region = Region::new(
        contigs[tid].as_str(),
        to_pos(start)?..=to_pos(end.min(len - 1))?,
    );
    let mut rows = Vec::new();
    let mut pileup: Option<Pileup> = None;
    let mut query = index.query(&mut w.reader, header, &region)?;
    while query.read_record(&mut w.record)? != 0 {
        w.buf.load_bam(&w.record)?;
        let p = match pileup.as_mut() {
            Some(p) => p,
            None => {
                let mut p = Pileup::new(opts.clone(), Arc::clone(contigs), true)?;
                p.set_region(tid, start, end)?;
                pileup.insert(p)
            }
        };
        p.push(&w.buf, &mut rows)?;
    }
    let Some(mut p) = pileup else {
        return Ok((rows, PileupStats::default()));
    };
    p.finish(&mut rows)?;
    rows.retain(|r| r.pos >= start && r.pos < end);
    let mut stats = p.stats().clone();
    stats.rows = rows.len() as u64;
    Ok((rows, stats))
}

fn add_stats(total: &mut PileupStats, s: &PileupStats) {
    total.records += s.records;
    total.records_with_calls += s.records_with_calls;
    total.calls += s.calls;
    total.rows += s.rows;
    total.skipped.add_all(&s.skipped);
}

/// The pileup of an indexed, coordinate-sorted BAM, regions of `chunk` bases processed in
/// parallel on the current rayon pool; rows reach `on_row` in order. Unmapped records are not
/// read (they carry no positions).
pub fn pileup_file_indexed(
    path: &Path,
    opts: &BamOptions,
    chunk: u64,
    on_row: impl FnMut(&PileupRow, &str) -> std::io::Result<()>,
) -> Result<PileupStats, ReadError> {
    pileup_indexed(path, opts, None, chunk, on_row)
}

/// The pileup of one region of an indexed, coordinate-sorted BAM: `region` is `contig`,
/// `contig:start-end` (1-based, inclusive, as samtools; commas allowed) or `contig:start`
/// (to the end of the contig). Rows at positions inside the region reach `on_row` in order; the
/// stats count the records that start inside it. Without an index (see [`index_candidates`])
/// this is an error that names the files looked for. Processed like
/// [`pileup_file_indexed`], in parallel on the current rayon pool.
pub fn pileup_region(
    path: &Path,
    opts: &BamOptions,
    region: &str,
    chunk: u64,
    on_row: impl FnMut(&PileupRow, &str) -> std::io::Result<()>,
) -> Result<PileupStats, ReadError> {
    pileup_indexed(path, opts, Some(region), chunk, on_row)
}

/// `region` as (reference index, 0-based start, end) within `contigs` and their `lengths`.
fn resolve_region(
    region: &str,
    contigs: &[String],
    lengths: &[u64],
) -> Result<(usize, u64, u64), String> {
    let find = |name: &str| contigs.iter().position(|c| c == name);
    let (tid, interval) = match find(region) {
        Some(tid) => (tid, None),
        None => {
            let Some((name, interval)) = region.rsplit_once(':') else {
                return Err(unknown_contig(region, contigs));
            };
            let tid = find(name).ok_or_else(|| unknown_contig(name, contigs))?;
            (tid, Some(interval.replace(',', "")))
        }
    };
    let len = lengths.get(tid).copied().unwrap_or(0);
    let (start, end) = match interval {
        None => (0, len),
        Some(text) => {
            let interval: noodles::core::region::Interval = text
                .parse()
                .map_err(|e| format!("region {region:?}: not contig:start-end ({e})"))?;
            let start = interval.start().map_or(0, |p| usize::from(p) as u64 - 1);
            let end = interval.end().map_or(len, |p| usize::from(p) as u64);
            (start, end.min(len))
        }
    };
    if start >= end {
        return Err(format!(
            "region {region:?} is empty (contig {} has {len} bases)",
            contigs[tid]
        ));
    }
    Ok((tid, start, end))
}

fn unknown_contig(name: &str, contigs: &[String]) -> String {
    let shown: Vec<&str> = contigs.iter().take(10).map(|c| c.as_str()).collect();
    let more = if contigs.len() > 10 { ", ..." } else { "" };
    format!(
        "contig {name:?} is not in the BAM header (contigs: {}{more})",
        shown.join(", ")
    )
}

fn pileup_indexed(
    path: &Path,
    opts: &BamOptions,
    query: Option<&str>,
    chunk: u64,
    mut on_row: impl FnMut(&PileupRow, &str) -> std::io::Result<()>,
) -> Result<PileupStats, ReadError> {
    let io_err = |e: std::io::Error| ReadError::new(path, 0, ErrorKind::Io(e));
    // The index first: without one there is nothing to do.
    let index = AnyIndex::read(path).map_err(io_err)?;
    let filter = resolve_filter(path, opts)?;
    let popts = PileupOptions {
        filter,
        ..opts.pileup.clone()
    };
    let (_, header) = AnyIndex::open(path).map_err(io_err)?;
    let contigs = Arc::new(record::contig_names(&header));
    let lengths: Vec<u64> = header
        .reference_sequences()
        .values()
        .map(|r| usize::from(r.length()) as u64)
        .collect();
    let chunk = chunk.max(1_000);
    let bounds: Vec<(usize, u64, u64)> = match query {
        Some(q) => {
            vec![resolve_region(q, &contigs, &lengths).map_err(|e| crate::bam_err(path, e))?]
        }
        None => lengths
            .iter()
            .enumerate()
            .map(|(tid, &len)| (tid, 0, len))
            .collect(),
    };
    let regions: Vec<(usize, u64, u64, u64)> = bounds
        .into_iter()
        .filter(|&(tid, start, end)| end > start && index.has_records(tid))
        .flat_map(|(tid, start, end)| {
            let len = lengths[tid];
            (0..(end - start).div_ceil(chunk)).map(move |i| {
                let from = start + i * chunk;
                (tid, from, (from + chunk).min(end), len)
            })
        })
        .collect();
    let threads = rayon::current_num_threads().max(1);
    let batch = threads * 8;
    // One reader per pool thread, opened once; the index is shared.
    let workers: Vec<Mutex<Option<Worker>>> = (0..threads).map(|_| Mutex::new(None)).collect();
    let mut total = PileupStats::default();
    for group in regions.chunks(batch) {
        let results: Vec<Result<(Vec<PileupRow>, PileupStats), PileupError>> = group
            .par_iter()
            .map(|&reg| {
                let slot = rayon::current_thread_index().unwrap_or(0) % threads;
                let mut guard = workers[slot].lock().unwrap_or_else(|e| e.into_inner());
                if guard.is_none() {
                    *guard = Some(Worker {
                        reader: AnyIndex::open(path)?.0,
                        record: bam::Record::default(),
                        buf: ReadBuf::default(),
                    });
                }
                // Invariant: just filled above.
                let w = guard
                    .as_mut()
                    .ok_or_else(|| PileupError::Io(std::io::Error::other("worker")))?;
                run_region(w, &index, &header, &popts, &contigs, reg)
            })
            .collect();
        for r in results {
            let (rows, stats) = r.map_err(|e| pileup_err(path, e))?;
            for row in &rows {
                on_row(row, &contigs[row.tid]).map_err(io_err)?;
            }
            add_stats(&mut total, &stats);
        }
    }
    crate::pileup::require_calls(&popts, &total).map_err(|e| pileup_err(path, e))?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_resolve_like_samtools() {
        let contigs = vec!["chr1".to_string(), "HLA-A*01:01".to_string()];
        let lengths = [1000, 50];
        let r = |q: &str| resolve_region(q, &contigs, &lengths);
        assert_eq!(r("chr1"), Ok((0, 0, 1000)));
        assert_eq!(r("chr1:11-20"), Ok((0, 10, 20)));
        assert_eq!(r("chr1:1,0-2,0"), Ok((0, 9, 20)));
        assert_eq!(r("chr1:101"), Ok((0, 100, 1000)));
        assert_eq!(r("chr1:900-5000"), Ok((0, 899, 1000)));
        assert_eq!(r("HLA-A*01:01"), Ok((1, 0, 50)));
        assert_eq!(r("HLA-A*01:01:2-3"), Ok((1, 1, 3)));
        assert!(r("chr2:1-5").unwrap_err().contains("not in the BAM header"));
        assert!(r("chr1:x-y").unwrap_err().contains("not contig:start-end"));
    }
}
