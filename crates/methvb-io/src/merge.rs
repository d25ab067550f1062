//! Streaming k-way merge of per-sample site streams by (contig, position).
//!
//! [`SiteMerger`] holds one look-ahead site ("head") per sample and never loads a file. Each row
//! takes the smallest position among the heads on the current contig; the samples standing at
//! that position contribute their `(m, n)`, the others `0/0`. Contigs are visited one at a time
//! in the order described in [`crate::contigs`]. Heads are scanned linearly (N is small), and
//! rows are written straight into per-column vectors that become the Arrow arrays of a
//! [`RecordBatch`] (schema: [`crate::batch`]) — nothing is allocated per row.
//!
//! Checks made while merging, each an error naming the file (and line): a position repeated
//! within one sample ([`ErrorKind::Duplicate`]), positions going backwards ([`ErrorKind::Unsorted`]),
//! a contig reappearing in one sample ([`ErrorKind::ContigReappears`]), contig order or naming
//! disagreeing between samples or with the `--contigs` file ([`ErrorKind::Contigs`]).
//!
//! Sites where every sample has coverage 0 are dropped and counted in [`MergeStats`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, DictionaryArray, Int32Array, RecordBatch, StringArray};
use arrow_array::{UInt32Array, UInt64Array};
use arrow_schema::SchemaRef;

use crate::batch::site_schema;
use crate::contigs::{ContigOrder, contig_aliases};
use crate::error::{ErrorKind, ReadError};
use crate::{SampleSite, SiteSource, Strand};

/// Counts kept by the merge.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MergeStats {
    /// Sites read from each sample, in sample order.
    pub sites_per_sample: Vec<u64>,
    /// Merged rows emitted.
    pub rows: u64,
    /// Merged positions dropped because every sample had coverage 0 there.
    pub rows_dropped_all_zero: u64,
}

/// Look-ahead state of one sample.
#[derive(Debug, Clone, Copy)]
struct Head {
    /// Global contig id of the current site (valid when `has_site`).
    contig: u32,
    pos: u64,
    m: u32,
    n: u32,
    has_site: bool,
    /// Local contig id of the last site read, `usize::MAX` before the first.
    last_local: usize,
}

const NO_CONTIG: u32 = u32::MAX;

/// The k-way merge of per-sample [`SiteSource`]s into site batches.
pub struct SiteMerger {
    sources: Vec<Box<dyn SiteSource + Send>>,
    names: Vec<String>,
    groups: Vec<String>,
    schema: SchemaRef,
    order: ContigOrder,
    heads: Vec<Head>,
    /// Per source: local contig id -> global contig id (`NO_CONTIG` when not yet mapped).
    local_map: Vec<Vec<u32>>,
    contig_names: Vec<String>,
    contig_index: HashMap<String, u32>,
    /// Per global contig: the first source that had it.
    first_source: Vec<usize>,
    finished: Vec<bool>,
    /// Contigs in the order the merge started them.
    visited: Vec<u32>,
    cur: Option<u32>,
    stats: MergeStats,
}

impl std::fmt::Debug for SiteMerger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteMerger")
            .field("samples", &self.names)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl SiteMerger {
    /// Starts a merge of `sources` (one per sample) in the contig `order`.
    ///
    /// Samples are named after their file stems and all put in group `all` until
    /// [`SiteMerger::with_samples`] sets names and groups. Reads the first site of every source,
    /// so contig naming mismatches between first contigs are reported here.
    pub fn new(
        sources: Vec<Box<dyn SiteSource + Send>>,
        order: ContigOrder,
    ) -> Result<Self, ReadError> {
        let names: Vec<String> = sources
            .iter()
            .map(|s| {
                s.path()
                    .file_stem()
                    .map(|x| x.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .collect();
        let groups = vec!["all".to_string(); sources.len()];
        let k = sources.len();
        let mut me = Self {
            schema: site_schema(&names, &groups),
            names,
            groups,
            order,
            heads: vec![
                Head {
                    contig: NO_CONTIG,
                    pos: 0,
                    m: 0,
                    n: 0,
                    has_site: false,
                    last_local: usize::MAX,
                };
                k
            ],
            local_map: vec![Vec::new(); k],
            contig_names: Vec::new(),
            contig_index: HashMap::new(),
            first_source: Vec::new(),
            finished: Vec::new(),
            visited: Vec::new(),
            cur: None,
            stats: MergeStats {
                sites_per_sample: vec![0; k],
                ..MergeStats::default()
            },
            sources,
        };
        for i in 0..k {
            me.advance(i)?;
        }
        Ok(me)
    }

    /// Sets the sample names and groups (one each per source, in source order) used for the
    /// column names and schema metadata.
    ///
    /// # Panics
    /// If the lengths differ from the number of sources (a programming error).
    pub fn with_samples(mut self, names: Vec<String>, groups: Vec<String>) -> Self {
        assert_eq!(names.len(), self.sources.len(), "one name per source");
        assert_eq!(groups.len(), self.sources.len(), "one group per source");
        self.schema = site_schema(&names, &groups);
        self.names = names;
        self.groups = groups;
        self
    }

    /// Sample names, in column order.
    pub fn sample_names(&self) -> &[String] {
        &self.names
    }

    /// Group of each sample, in column order.
    pub fn sample_groups(&self) -> &[String] {
        &self.groups
    }

    /// The schema of the batches ([`crate::batch`]).
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Counts so far.
    pub fn stats(&self) -> &MergeStats {
        &self.stats
    }

    /// Contigs in the order the merge has started them so far.
    pub fn contigs_visited(&self) -> impl Iterator<Item = &str> {
        self.visited
            .iter()
            .map(|&g| self.contig_names[g as usize].as_str())
    }

    /// The next batch of at most `max_rows` (>= 1) merged rows, `None` when every source is
    /// exhausted.
    pub fn next_batch(&mut self, max_rows: usize) -> Result<Option<RecordBatch>, ReadError> {
        let max_rows = max_rows.max(1);
        let k = self.sources.len();
        let mut keys: Vec<i32> = Vec::with_capacity(max_rows);
        let mut batch_contigs: Vec<u32> = Vec::new();
        let mut pos: Vec<u64> = Vec::with_capacity(max_rows);
        let mut m: Vec<Vec<u32>> = (0..k).map(|_| Vec::with_capacity(max_rows)).collect();
        let mut n: Vec<Vec<u32>> = (0..k).map(|_| Vec::with_capacity(max_rows)).collect();
        while pos.len() < max_rows {
            let Some((c, p)) = self.next_position()? else {
                break;
            };
            let at = |h: &Head| h.has_site && h.contig == c && h.pos == p;
            if !self.heads.iter().any(|h| at(h) && h.n > 0) {
                self.stats.rows_dropped_all_zero += 1;
                for i in 0..k {
                    if at(&self.heads[i]) {
                        self.advance(i)?;
                    }
                }
                continue;
            }
            if batch_contigs.last() != Some(&c) {
                batch_contigs.push(c);
            }
            // At most as many contigs as rows, and max_rows is far below i32::MAX in practice;
            // saturate rather than wrap if it were not.
            keys.push(i32::try_from(batch_contigs.len() - 1).unwrap_or(i32::MAX));
            pos.push(p);
            for i in 0..k {
                let h = self.heads[i];
                if at(&h) {
                    m[i].push(h.m);
                    n[i].push(h.n);
                    self.advance(i)?;
                } else {
                    m[i].push(0);
                    n[i].push(0);
                }
            }
            self.stats.rows += 1;
        }
        if pos.is_empty() {
            return Ok(None);
        }
        let values = StringArray::from_iter_values(
            batch_contigs
                .iter()
                .map(|&g| self.contig_names[g as usize].as_str()),
        );
        let chrom = DictionaryArray::<Int32Type>::try_new(Int32Array::from(keys), Arc::new(values))
            .map_err(|e| self.output_error(e))?;
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(2 + 2 * k);
        cols.push(Arc::new(chrom));
        cols.push(Arc::new(UInt64Array::from(pos)));
        for (mm, nn) in m.into_iter().zip(n) {
            cols.push(Arc::new(UInt32Array::from(mm)));
            cols.push(Arc::new(UInt32Array::from(nn)));
        }
        RecordBatch::try_new(self.schema.clone(), cols)
            .map(Some)
            .map_err(|e| self.output_error(e))
    }

    fn output_error(&self, e: impl std::fmt::Display) -> ReadError {
        let path = self
            .sources
            .first()
            .map(|s| s.path().to_path_buf())
            .unwrap_or_default();
        ReadError::new(path, 0, ErrorKind::Output(e.to_string()))
    }

    /// The (contig, position) of the next merged row, advancing the current contig as needed.
    fn next_position(&mut self) -> Result<Option<(u32, u64)>, ReadError> {
        loop {
            if let Some(c) = self.cur {
                let best = self
                    .heads
                    .iter()
                    .filter(|h| h.has_site && h.contig == c)
                    .map(|h| h.pos)
                    .min();
                if let Some(p) = best {
                    return Ok(Some((c, p)));
                }
                self.finished[c as usize] = true;
                self.cur = None;
            }
            let mut best: Option<u32> = None;
            for h in self.heads.iter().filter(|h| h.has_site) {
                best = match best {
                    Some(b)
                        if b == h.contig
                            || self
                                .order
                                .cmp_names(
                                    &self.contig_names[b as usize],
                                    &self.contig_names[h.contig as usize],
                                )
                                .is_le() =>
                    {
                        Some(b)
                    }
                    _ => Some(h.contig),
                };
            }
            match best {
                None => return Ok(None),
                Some(c) => {
                    self.cur = Some(c);
                    self.visited.push(c);
                }
            }
        }
    }

    /// Reads the next site of source `i` into its head, checking order within the source.
    fn advance(&mut self, i: usize) -> Result<(), ReadError> {
        let prev = self.heads[i];
        let Some(site) = self.sources[i].next_site()? else {
            self.heads[i].has_site = false;
            return Ok(());
        };
        let g = self.global_contig(i, &site)?;
        let src = &self.sources[i];
        let err = |kind| Err(ReadError::new(src.path(), site.line, kind));
        if prev.last_local == site.contig {
            if site.pos == prev.pos {
                return err(ErrorKind::Duplicate {
                    contig: self.contig_names[g as usize].clone(),
                    pos: src.position_as_written(site.pos),
                });
            }
            if site.pos < prev.pos {
                return err(ErrorKind::Unsorted {
                    contig: self.contig_names[g as usize].clone(),
                    previous: src.position_as_written(prev.pos),
                    pos: src.position_as_written(site.pos),
                });
            }
        } else if prev.last_local != usize::MAX {
            // A new contig for this source.
            if site.contig < prev.last_local {
                return err(ErrorKind::ContigReappears {
                    contig: self.contig_names[g as usize].clone(),
                });
            }
            let before = &self.contig_names[prev.contig as usize];
            let this = &self.contig_names[g as usize];
            if let ContigOrder::Fixed(f) = &self.order
                && f.rank(this) < f.rank(before)
            {
                return err(ErrorKind::Contigs(format!(
                    "contig {this} comes after {before} here, but {} lists {this} before {before}",
                    f.path.display()
                )));
            }
            if self.finished[g as usize] {
                let other = self.sources[self.first_source[g as usize]].path();
                return err(ErrorKind::Contigs(format!(
                    "contig {this} comes after {before} here, but the merge had already finished \
                     {this} (it came earlier in {}): contig order differs between samples; \
                     pass --contigs genome.fai",
                    other.display()
                )));
            }
        }
        self.stats.sites_per_sample[i] += 1;
        self.heads[i] = Head {
            contig: g,
            pos: site.pos,
            m: site.methylated,
            n: site.coverage,
            has_site: true,
            last_local: site.contig,
        };
        Ok(())
    }

    /// Maps source `i`'s local contig id of `site` to a global id, registering new names.
    fn global_contig(&mut self, i: usize, site: &SampleSite) -> Result<u32, ReadError> {
        let map = &mut self.local_map[i];
        if let Some(&g) = map.get(site.contig)
            && g != NO_CONTIG
        {
            return Ok(g);
        }
        let src = &self.sources[i];
        let name = src.contig_name(site.contig);
        let g = match self.contig_index.get(name) {
            Some(&g) => g,
            None => {
                let err = |msg: String| {
                    Err(ReadError::new(
                        src.path(),
                        site.line,
                        ErrorKind::Contigs(msg),
                    ))
                };
                if let ContigOrder::Fixed(f) = &self.order
                    && f.rank(name).is_none()
                {
                    let alias = contig_aliases(name)
                        .into_iter()
                        .find(|a| f.rank(a).is_some());
                    return err(match alias {
                        Some(a) => format!(
                            "contig {name} is not in {} (which has {a}): the contig naming differs; \
                             rename {name} to {a} (add or strip the `chr` prefix) or pass a \
                             matching --contigs file",
                            f.path.display()
                        ),
                        None => format!("contig {name} is not in {}", f.path.display()),
                    });
                }
                for a in contig_aliases(name) {
                    if let Some(&g2) = self.contig_index.get(&a) {
                        let j = self.first_source[g2 as usize];
                        if j != i {
                            return err(format!(
                                "contig naming differs between samples: this file has {name}, \
                                 {} has {a}; they look like the same contig — rename one so \
                                 both use {a} (or both {name}), e.g. add or strip the `chr` prefix",
                                self.sources[j].path().display()
                            ));
                        }
                    }
                }
                let g = u32::try_from(self.contig_names.len()).map_err(|_| {
                    ReadError::new(
                        src.path(),
                        site.line,
                        ErrorKind::Contigs("more than 2^32 contigs".into()),
                    )
                })?;
                self.contig_names.push(name.to_string());
                self.contig_index.insert(name.to_string(), g);
                self.first_source.push(i);
                self.finished.push(false);
                g
            }
        };
        let map = &mut self.local_map[i];
        if map.len() <= site.contig {
            map.resize(site.contig + 1, NO_CONTIG);
        }
        map[site.contig] = g;
        Ok(g)
    }
}

/// An in-memory [`SiteSource`] over a list of sites: for tests, benchmarks and callers that
/// already hold their data.
#[derive(Debug, Clone)]
pub struct VecSource {
    path: PathBuf,
    contigs: Vec<String>,
    sites: Vec<SampleSite>,
    next: usize,
}

impl VecSource {
    /// A source named `path` yielding `rows` of `(contig, 0-based pos, methylated, coverage)`
    /// in the given order (contig ids are assigned in order of first appearance; line numbers
    /// are the 1-based row index).
    pub fn new(path: impl Into<PathBuf>, rows: &[(&str, u64, u32, u32)]) -> Self {
        let mut contigs: Vec<String> = Vec::new();
        let mut sites = Vec::with_capacity(rows.len());
        for (k, &(c, pos, m, n)) in rows.iter().enumerate() {
            let contig = match contigs.iter().position(|x| x == c) {
                Some(id) => id,
                None => {
                    contigs.push(c.to_string());
                    contigs.len() - 1
                }
            };
            sites.push(SampleSite {
                contig,
                pos,
                strand: Strand::Unknown,
                methylated: m,
                coverage: n,
                line: k as u64 + 1,
            });
        }
        Self {
            path: path.into(),
            contigs,
            sites,
            next: 0,
        }
    }
}

impl SiteSource for VecSource {
    fn next_site(&mut self) -> Result<Option<SampleSite>, ReadError> {
        let s = self.sites.get(self.next).copied();
        self.next += 1;
        Ok(s)
    }

    fn contig_name(&self, id: usize) -> &str {
        &self.contigs[id]
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::SiteBatchView;
    use crate::contigs::FixedOrder;

    type Row = (String, u64, Vec<(u32, u32)>);

    fn src(name: &str, rows: &[(&str, u64, u32, u32)]) -> Box<dyn SiteSource + Send> {
        Box::new(VecSource::new(name, rows))
    }

    fn collect(mut mg: SiteMerger, batch: usize) -> Result<Vec<Row>, ReadError> {
        let mut out = Vec::new();
        while let Some(b) = mg.next_batch(batch)? {
            let v = SiteBatchView::new(&b).unwrap();
            for r in 0..b.num_rows() {
                let cells = (0..v.n_samples()).map(|s| (v.m[s][r], v.n[s][r])).collect();
                out.push((v.chrom(r).to_string(), v.pos[r], cells));
            }
        }
        Ok(out)
    }

    #[test]
    fn merges_and_fills_zero() {
        let a = src(
            "a.txt",
            &[("chr1", 5, 1, 2), ("chr1", 9, 0, 3), ("chr2", 1, 1, 1)],
        );
        let b = src(
            "b.txt",
            &[("chr1", 9, 2, 2), ("chr2", 0, 0, 4), ("chr2", 1, 0, 1)],
        );
        let mg = SiteMerger::new(vec![a, b], ContigOrder::Learned).unwrap();
        assert_eq!(mg.sample_names(), ["a", "b"]);
        let rows = collect(mg, 2).unwrap();
        let want: Vec<Row> = vec![
            ("chr1".into(), 5, vec![(1, 2), (0, 0)]),
            ("chr1".into(), 9, vec![(0, 3), (2, 2)]),
            ("chr2".into(), 0, vec![(0, 0), (0, 4)]),
            ("chr2".into(), 1, vec![(1, 1), (0, 1)]),
        ];
        assert_eq!(rows, want);
    }

    #[test]
    fn all_zero_rows_dropped_and_counted() {
        let a = src("a", &[("c", 1, 0, 0), ("c", 2, 1, 1)]);
        let b = src("b", &[("c", 1, 0, 0), ("c", 3, 0, 0)]);
        let mut mg = SiteMerger::new(vec![a, b], ContigOrder::Learned).unwrap();
        let bt = mg.next_batch(10).unwrap().unwrap();
        assert_eq!(bt.num_rows(), 1);
        assert!(mg.next_batch(10).unwrap().is_none());
        assert_eq!(mg.stats().rows, 1);
        assert_eq!(mg.stats().rows_dropped_all_zero, 2);
        assert_eq!(mg.stats().sites_per_sample, vec![2, 2]);
    }

    #[test]
    fn duplicate_position_is_error() {
        let a = src("a.txt", &[("c", 1, 0, 1), ("c", 1, 0, 1)]);
        let mg = SiteMerger::new(vec![a], ContigOrder::Learned).unwrap();
        let e = collect(mg, 10).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Duplicate { pos: 1, .. }), "{e}");
        assert_eq!(e.line, 2);
    }

    #[test]
    fn unsorted_and_reappearing_contig_are_errors() {
        let a = src("a", &[("c", 5, 0, 1), ("c", 4, 0, 1)]);
        let e = collect(SiteMerger::new(vec![a], ContigOrder::Learned).unwrap(), 10).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Unsorted { .. }), "{e}");
        let a = src("a", &[("c", 5, 0, 1), ("d", 4, 0, 1), ("c", 9, 0, 1)]);
        let e = collect(SiteMerger::new(vec![a], ContigOrder::Learned).unwrap(), 10).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::ContigReappears { .. }), "{e}");
    }

    #[test]
    fn learned_order_uses_natural_order_then_detects_disagreement() {
        // Both agree: chr2 before chr10 in natural order, and a visits chr10 only.
        let a = src("a", &[("chr10", 1, 0, 1)]);
        let b = src("b", &[("chr2", 1, 0, 1), ("chr10", 1, 1, 1)]);
        let mg = SiteMerger::new(vec![a, b], ContigOrder::Learned).unwrap();
        let rows = collect(mg, 10).unwrap();
        assert_eq!(rows[0].0, "chr2");
        assert_eq!(rows[1].2, vec![(0, 1), (1, 1)]);

        // Disagreeing order: a has chr1 then chr2, b has chr2 then chr1.
        let a = src("a.tsv", &[("chr1", 1, 0, 1), ("chr2", 1, 0, 1)]);
        let b = src("b.tsv", &[("chr2", 5, 0, 1), ("chr1", 5, 0, 1)]);
        let mg = SiteMerger::new(vec![a, b], ContigOrder::Learned).unwrap();
        let e = collect(mg, 10).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("b.tsv:2:"), "{msg}");
        assert!(msg.contains("a.tsv"), "{msg}");
        assert!(
            msg.contains("contig order differs between samples; pass --contigs genome.fai"),
            "{msg}"
        );
    }

    #[test]
    fn chr_prefix_mismatch_suggests_alias() {
        let a = src("a.bed", &[("chr1", 1, 0, 1)]);
        let b = src("b.bed", &[("1", 1, 0, 1)]);
        let e = SiteMerger::new(vec![a, b], ContigOrder::Learned).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("contig naming differs"), "{msg}");
        assert!(msg.contains("a.bed has chr1"), "{msg}");
        assert!(msg.contains("this file has 1"), "{msg}");
        assert!(msg.starts_with("b.bed"), "{msg}");

        // MT vs chrM, discovered mid-stream.
        let a = src("a", &[("chr1", 1, 0, 1), ("chrM", 1, 0, 1)]);
        let b = src("b", &[("chr1", 1, 0, 1), ("MT", 1, 0, 1)]);
        let mg = SiteMerger::new(vec![a, b], ContigOrder::Learned).unwrap();
        let e = collect(mg, 10).unwrap_err();
        assert!(e.to_string().contains("has MT"), "{e}");
        assert!(e.to_string().contains("has chrM"), "{e}");
    }

    #[test]
    fn fixed_order_rules() {
        let fixed = |names: &[&str]| {
            ContigOrder::Fixed(
                FixedOrder::from_names("genome.fai", names.iter().map(|s| s.to_string()).collect())
                    .unwrap(),
            )
        };
        // The .fai order wins over natural order.
        let a = src("a", &[("chr10", 1, 0, 1), ("chr2", 1, 0, 1)]);
        let b = src("b", &[("chr2", 3, 0, 1)]);
        let rows = collect(
            SiteMerger::new(vec![a, b], fixed(&["chr10", "chr2"])).unwrap(),
            10,
        )
        .unwrap();
        let contigs: Vec<_> = rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(contigs, ["chr10", "chr2", "chr2"]);

        // A contig not in the .fai.
        let a = src("a", &[("chrUn", 1, 0, 1)]);
        let e = SiteMerger::new(vec![a], fixed(&["chr1"])).unwrap_err();
        assert!(
            e.to_string().contains("contig chrUn is not in genome.fai"),
            "{e}"
        );
        // Not in the .fai, but its alias is.
        let a = src("a", &[("1", 1, 0, 1)]);
        let e = SiteMerger::new(vec![a], fixed(&["chr1"])).unwrap_err();
        assert!(e.to_string().contains("rename 1 to chr1"), "{e}");

        // A sample against the .fai order.
        let a = src("a", &[("chr2", 1, 0, 1), ("chr1", 1, 0, 1)]);
        let e = collect(
            SiteMerger::new(vec![a], fixed(&["chr1", "chr2"])).unwrap(),
            10,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("genome.fai lists chr1 before chr2"),
            "{e}"
        );
    }
}
