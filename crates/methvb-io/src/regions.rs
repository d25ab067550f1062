//! Grouping merged site batches into regions for the model.
//!
//! [`RegionBuilder`] consumes site batches ([`crate::batch`]) in merge order and hands out
//! [`Region`]s in genomic order (the merge's contig order, then start, then end, then id). Memory
//! is bounded: only the sites of regions still open (or waiting for an earlier-starting region
//! to close) are held.
//!
//! # Region modes ([`RegionSpec`])
//!
//! * **BED** ([`BedRegions`]): regions from a file, taken per contig in (start, end, id) order;
//!   overlapping regions are allowed (a site then belongs to each). A contig whose lines are one
//!   sorted block (`sort -k1,1 -k2,2n -k3,3n`) is streamed from the file, any other contig's regions
//!   are read and sorted when the data reach it, so memory grows with the file only when it is
//!   unsorted. The name column is the
//!   region id, else `chrom:start-end`. **Region ids are unique**: a name that several regions
//!   share (UCSC CpG-island files repeat `CpG: 35`) becomes `name@chrom:start-end` for each of
//!   them ([`BedRegions::repeated_names_warning`] says so), and two regions that still share an
//!   id (the same line twice) are an error naming both lines. A file without any region is an
//!   error. A BED contig that is an alias of a contig of the data ([`contig_aliases`]: `18` for
//!   `chr18`) is an error as soon as the data reach that contig, as between samples. Regions on
//!   contigs absent from the data are counted apart (`regions_dropped_contig_absent`), regions
//!   that catch no site as `regions_dropped_no_sites`.
//! * **Tiles** (`Tile { size, step }`): windows `[k*step, k*step + size)` on every contig; only
//!   windows with at least one site are formed. `step == size` gives non-overlapping tiles.
//! * **Clusters** (`Cluster { max_gap, min_sites }`, the default): runs of consecutive sites that
//!   pass the filters with `pos[j+1] - pos[j] <= max_gap`; the region is `[first, last + 1)`.
//!   Defaults follow DSS `callDMR` (`dis.merge = 100`, `minCG = 3`): `max_gap = 100`,
//!   `min_sites = 3`. The effective minimum for clusters is the larger of this and
//!   [`RegionFilters::min_sites`].
//!
//! Region ids of tiles and clusters, and of unnamed BED regions, are `chrom:start-end`
//! (0-based, half-open, like BED).
//!
//! # Filters ([`RegionFilters`]), in this order, every drop counted in [`RegionStats`]
//!
//! 1. `min_cov` (default 1): a cell (site × sample) with `0 < n < min_cov` becomes missing
//!    (`m = n = 0`); counted in `cells_masked_min_cov`. A site left with no covered cell is
//!    dropped (`sites_dropped_min_cov`).
//! 2. `min_samples_per_group` (default 1): a site needs at least this many samples with `n > 0`
//!    in **each** group, else it is dropped (`sites_dropped_min_samples_per_group`).
//! 3. Sites that fall in no region (BED gaps, tiles with `step > size`) are counted in
//!    `sites_outside_regions`.
//! 4. `min_sites` (default 3): a region with fewer sites is dropped
//!    (`regions_dropped_too_few_sites`; a region with none: `regions_dropped_no_sites`).
//!
//! When no region comes out at all, [`RegionStream::why_no_regions`] names the first of these
//! steps that left nothing, so the message is the true cause (not "check every filter").

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;

use arrow_array::RecordBatch;
use arrow_schema::Schema;

use crate::batch::{SiteBatchView, schema_samples};
use crate::bed::BedCursor;
pub use crate::bed::BedRegions;
use crate::contigs::contig_aliases;
use crate::error::{ErrorKind, ReadError};
use crate::merge::SiteMerger;

/// Default maximal gap between consecutive sites of a cluster (DSS `dis.merge`).
pub const DEFAULT_MAX_GAP: u64 = 100;
/// Default minimal number of sites of a cluster (DSS `minCG`).
pub const DEFAULT_CLUSTER_MIN_SITES: usize = 3;

/// A region ready for the model: its sites and the `J x S` count matrices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Region id: the BED name, else `chrom:start-end`.
    pub id: String,
    /// Contig name.
    pub chrom: String,
    /// 0-based start (inclusive).
    pub start: u64,
    /// 0-based end (exclusive).
    pub end: u64,
    /// 0-based positions of the `J` sites, increasing.
    pub positions: Vec<u64>,
    /// Methylated counts, `J x S` row-major: site `j`, sample `s` at `j * S + s`.
    pub methylated: Vec<u32>,
    /// Coverages, same layout as `methylated`.
    pub coverage: Vec<u32>,
}

impl Region {
    /// Number of sites `J`.
    pub fn n_sites(&self) -> usize {
        self.positions.len()
    }
}

/// How sites are grouped into regions.
#[derive(Debug, Clone)]
pub enum RegionSpec {
    /// Regions from a BED file.
    Bed(BedRegions),
    /// Fixed windows `[k*step, k*step + size)`.
    Tile {
        /// Window length (>= 1).
        size: u64,
        /// Distance between window starts (>= 1; usually `size`).
        step: u64,
    },
    /// Clusters of consecutive sites.
    Cluster {
        /// Largest allowed distance between consecutive sites.
        max_gap: u64,
        /// Fewest sites a cluster needs.
        min_sites: usize,
    },
}

impl Default for RegionSpec {
    fn default() -> Self {
        RegionSpec::Cluster {
            max_gap: DEFAULT_MAX_GAP,
            min_sites: DEFAULT_CLUSTER_MIN_SITES,
        }
    }
}

/// Site and region filters (see the module docs for the order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RegionFilters {
    /// Minimal coverage of a cell; lower cells become missing.
    pub min_cov: u32,
    /// Minimal number of samples with coverage in each group, per site.
    pub min_samples_per_group: usize,
    /// Minimal number of sites per region.
    pub min_sites: usize,
}

impl Default for RegionFilters {
    fn default() -> Self {
        Self {
            min_cov: 1,
            min_samples_per_group: 1,
            min_sites: 3,
        }
    }
}

/// What the region builder read, dropped and emitted. Invariants:
/// `sites_read = sites_dropped_min_cov + sites_dropped_min_samples_per_group +
/// sites_outside_regions + sites_in_regions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RegionStats {
    /// Site rows read from the batches.
    pub sites_read: u64,
    /// Cells (site × sample) set to missing by `min_cov`.
    pub cells_masked_min_cov: u64,
    /// Sites left without any covered cell by `min_cov`.
    pub sites_dropped_min_cov: u64,
    /// Sites dropped by `min_samples_per_group`.
    pub sites_dropped_min_samples_per_group: u64,
    /// Sites that passed the filters but fell in no region.
    pub sites_outside_regions: u64,
    /// Sites that passed the filters and fell in at least one region (emitted or not).
    pub sites_in_regions: u64,
    /// Regions handed out.
    pub regions_emitted: u64,
    /// Sites summed over emitted regions (a site in two overlapping regions counts twice).
    pub sites_in_emitted_regions: u64,
    /// Regions dropped for having fewer than `min_sites` (but at least one) sites.
    pub regions_dropped_too_few_sites: u64,
    /// BED regions with no site at all, on contigs the data have.
    pub regions_dropped_no_sites: u64,
    /// BED regions on contigs that never appear in the data.
    pub regions_dropped_contig_absent: u64,
}

/// A region being filled, or closed and waiting for earlier ones.
#[derive(Debug)]
struct Pending {
    region: Region,
    closed: bool,
}

/// Builds regions from site batches; see the module docs.
#[derive(Debug)]
pub struct RegionBuilder {
    spec: RegionSpec,
    filters: RegionFilters,
    group_of_sample: Vec<usize>,
    n_groups: usize,
    stats: RegionStats,
    label: PathBuf,
    cur: Option<String>,
    seen: HashSet<String>,
    pending: VecDeque<Pending>,
    ready: VecDeque<Region>,
    /// BED: the regions of the current contig not yet opened, and the contigs the data reached.
    bed_cursor: Option<BedCursor>,
    bed_visited: Vec<bool>,
    /// Tiles: next window index to open on the current contig.
    tile_next: u64,
    /// Last position added on the current contig (order check).
    last_pos: Option<u64>,
    /// Scratch: the filtered cells of one site, and per-group counts.
    cell_m: Vec<u32>,
    cell_n: Vec<u32>,
    per_group: Vec<usize>,
    finished: bool,
}

impl RegionBuilder {
    /// A builder for sites of `group_of_sample.len()` samples, sample `s` belonging to group
    /// `group_of_sample[s]` (groups numbered from 0).
    ///
    /// Errors when a group has fewer samples than `min_samples_per_group` (every site would be
    /// dropped), or when tile sizes are 0.
    pub fn new(
        spec: RegionSpec,
        filters: RegionFilters,
        group_of_sample: Vec<usize>,
    ) -> Result<Self, ReadError> {
        let label = match &spec {
            RegionSpec::Bed(b) => b.path().to_path_buf(),
            _ => PathBuf::from("<regions>"),
        };
        let err = |msg: String| Err(ReadError::new(&label, 0, ErrorKind::Regions(msg)));
        if group_of_sample.is_empty() {
            return err("no samples".into());
        }
        let n_groups = group_of_sample.iter().max().map_or(0, |g| g + 1);
        let mut sizes = vec![0usize; n_groups];
        for &g in &group_of_sample {
            sizes[g] += 1;
        }
        if let Some(g) = sizes
            .iter()
            .position(|&n| n < filters.min_samples_per_group)
        {
            return err(format!(
                "group {g} (groups numbered from 0, the reference group first) has {} sample{}, \
                 fewer than --min-samples-per-group {}: every site would be dropped",
                sizes[g],
                if sizes[g] == 1 { "" } else { "s" },
                filters.min_samples_per_group
            ));
        }
        if let RegionSpec::Tile { size, step } = spec
            && (size == 0 || step == 0)
        {
            return err(format!(
                "tile size and step must be >= 1 (size {size}, step {step})"
            ));
        }
        let bed_len = match &spec {
            RegionSpec::Bed(b) => b.contigs().count(),
            _ => 0,
        };
        let s = group_of_sample.len();
        Ok(Self {
            spec,
            filters,
            n_groups,
            stats: RegionStats::default(),
            label,
            cur: None,
            seen: HashSet::new(),
            pending: VecDeque::new(),
            ready: VecDeque::new(),
            bed_cursor: None,
            bed_visited: vec![false; bed_len],
            tile_next: 0,
            last_pos: None,
            cell_m: vec![0; s],
            cell_n: vec![0; s],
            per_group: vec![0; n_groups],
            finished: false,
            group_of_sample,
        })
    }

    /// A builder whose sample groups come from the site schema's metadata
    /// ([`crate::batch::META_GROUPS`]); groups are numbered in order of first appearance.
    pub fn for_schema(
        spec: RegionSpec,
        filters: RegionFilters,
        schema: &Schema,
    ) -> Result<Self, ReadError> {
        let Some((_, groups)) = schema_samples(schema) else {
            return Err(ReadError::new(
                "<sites>",
                0,
                ErrorKind::Regions("site schema lacks methvb.samples/methvb.groups".into()),
            ));
        };
        let mut names: Vec<&str> = Vec::new();
        let idx = groups
            .iter()
            .map(|g| match names.iter().position(|x| x == g) {
                Some(i) => i,
                None => {
                    names.push(g);
                    names.len() - 1
                }
            })
            .collect();
        Self::new(spec, filters, idx)
    }

    /// Counts so far (final after [`finish`](Self::finish)).
    pub fn stats(&self) -> &RegionStats {
        &self.stats
    }

    /// Number of groups.
    pub fn n_groups(&self) -> usize {
        self.n_groups
    }

    /// Feeds one site batch (rows in merge order).
    pub fn push_batch(&mut self, batch: &RecordBatch) -> Result<(), ReadError> {
        let label = self.label.clone();
        let err = |msg: String| ReadError::new(&label, 0, ErrorKind::Regions(msg));
        if self.finished {
            return Err(err("push_batch after finish".into()));
        }
        let view = SiteBatchView::new(batch).map_err(err)?;
        let s = self.group_of_sample.len();
        if view.n_samples() != s {
            return Err(err(format!(
                "site batch has {} samples, the builder expects {s}",
                view.n_samples()
            )));
        }
        let mut last_key = None;
        for r in 0..batch.num_rows() {
            let key = view.chrom_keys[r];
            if last_key != Some(key) {
                last_key = Some(key);
                let name = view.chrom(r);
                if self.cur.as_deref() != Some(name) {
                    self.start_contig(name)?;
                }
            }
            let p = view.pos[r];
            if let Some(q) = self.last_pos
                && p <= q
            {
                return Err(err(format!(
                    "site stream not sorted: {}:{p} after {q}",
                    self.cur.as_deref().unwrap_or("")
                )));
            }
            self.last_pos = Some(p);
            self.stats.sites_read += 1;
            // 1. min_cov.
            let mut any = false;
            for k in 0..s {
                let (m, n) = (view.m[k][r], view.n[k][r]);
                if n > 0 && n < self.filters.min_cov {
                    self.stats.cells_masked_min_cov += 1;
                    self.cell_m[k] = 0;
                    self.cell_n[k] = 0;
                } else {
                    self.cell_m[k] = m;
                    self.cell_n[k] = n;
                    any |= n > 0;
                }
            }
            if !any {
                self.stats.sites_dropped_min_cov += 1;
                continue;
            }
            // 2. min_samples_per_group.
            self.per_group.fill(0);
            for k in 0..s {
                if self.cell_n[k] > 0 {
                    self.per_group[self.group_of_sample[k]] += 1;
                }
            }
            if self
                .per_group
                .iter()
                .any(|&c| c < self.filters.min_samples_per_group)
            {
                self.stats.sites_dropped_min_samples_per_group += 1;
                continue;
            }
            self.add_site(p)?;
        }
        Ok(())
    }

    /// Ends the input: closes open regions and counts BED regions never reached.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.end_contig();
        if let RegionSpec::Bed(b) = &self.spec {
            for ((_, regions), visited) in b.contigs().zip(&self.bed_visited) {
                if !visited {
                    self.stats.regions_dropped_contig_absent += regions as u64;
                }
            }
        }
        self.finished = true;
    }

    /// BED contigs the data never reached, with their number of regions (after
    /// [`finish`](Self::finish)).
    fn absent_bed_contigs(&self) -> Vec<(&str, usize)> {
        match &self.spec {
            RegionSpec::Bed(b) => b
                .contigs()
                .zip(&self.bed_visited)
                .filter(|(_, visited)| !**visited)
                .map(|(contig, _)| contig)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The next finished region, in genomic order.
    pub fn pop_region(&mut self) -> Option<Region> {
        self.ready.pop_front()
    }

    fn start_contig(&mut self, name: &str) -> Result<(), ReadError> {
        self.end_contig();
        if !self.seen.insert(name.to_string()) {
            return Err(ReadError::new(
                &self.label,
                0,
                ErrorKind::Regions(format!(
                    "contig {name} appears again in the site stream after other contigs"
                )),
            ));
        }
        self.cur = Some(name.to_string());
        self.tile_next = 0;
        self.last_pos = None;
        if let RegionSpec::Bed(b) = &self.spec {
            bed_naming_matches(b, name)?;
            if let Some(k) = b.contig_index(name) {
                self.bed_visited[k] = true;
                self.bed_cursor = Some(b.cursor(k)?);
            }
        }
        Ok(())
    }

    fn end_contig(&mut self) {
        for p in &mut self.pending {
            p.closed = true;
        }
        self.drain();
        if let Some(cursor) = self.bed_cursor.take() {
            self.stats.regions_dropped_no_sites += cursor.remaining() as u64;
        }
        self.cur = None;
    }

    fn new_region(&self, id: String, start: u64, end: u64) -> Region {
        Region {
            id,
            chrom: self.cur.clone().unwrap_or_default(),
            start,
            end,
            positions: Vec::new(),
            methylated: Vec::new(),
            coverage: Vec::new(),
        }
    }

    /// Adds a site that passed the filters at `p` on the current contig.
    fn add_site(&mut self, p: u64) -> Result<(), ReadError> {
        let chrom = self.cur.as_deref().unwrap_or("");
        match &self.spec {
            RegionSpec::Bed(b) => {
                for o in self.pending.iter_mut() {
                    if o.region.end <= p {
                        o.closed = true;
                    }
                }
                if let Some(cursor) = self.bed_cursor.as_mut() {
                    while cursor.peek(b)?.is_some_and(|r| r.start <= p) {
                        let Some(r) = cursor.take() else { break };
                        let region = Region {
                            id: r.id,
                            chrom: chrom.to_string(),
                            start: r.start,
                            end: r.end,
                            positions: Vec::new(),
                            methylated: Vec::new(),
                            coverage: Vec::new(),
                        };
                        self.pending.push_back(Pending {
                            region,
                            closed: r.end <= p,
                        });
                    }
                }
            }
            &RegionSpec::Tile { size, step } => {
                for o in self.pending.iter_mut() {
                    if o.region.end <= p {
                        o.closed = true;
                    }
                }
                let k_max = p / step;
                let k_min = if p >= size { (p - size) / step + 1 } else { 0 };
                for k in self.tile_next.max(k_min)..=k_max {
                    let start = k * step;
                    let end = start.saturating_add(size);
                    let id = format!("{chrom}:{start}-{end}");
                    let region = self.new_region(id, start, end);
                    self.pending.push_back(Pending {
                        region,
                        closed: false,
                    });
                }
                self.tile_next = self.tile_next.max(k_max + 1);
            }
            &RegionSpec::Cluster { max_gap, .. } => {
                let extend = self.pending.back().is_some_and(|o| {
                    !o.closed && o.region.positions.last().is_some_and(|&q| p - q <= max_gap)
                });
                if !extend {
                    if let Some(o) = self.pending.back_mut() {
                        o.closed = true;
                    }
                    let region = self.new_region(String::new(), p, p + 1);
                    self.pending.push_back(Pending {
                        region,
                        closed: false,
                    });
                }
            }
        }
        let mut any = false;
        for o in self.pending.iter_mut().filter(|o| !o.closed) {
            o.region.positions.push(p);
            o.region.methylated.extend_from_slice(&self.cell_m);
            o.region.coverage.extend_from_slice(&self.cell_n);
            any = true;
        }
        if any {
            self.stats.sites_in_regions += 1;
        } else {
            self.stats.sites_outside_regions += 1;
        }
        self.drain();
        Ok(())
    }

    /// Moves closed regions at the front of the queue to the output (or drops them).
    fn drain(&mut self) {
        let min_sites = match self.spec {
            RegionSpec::Cluster { min_sites, .. } => min_sites.max(self.filters.min_sites),
            _ => self.filters.min_sites,
        };
        while self.pending.front().is_some_and(|o| o.closed) {
            // The loop condition guarantees the front exists.
            let Some(Pending { mut region, .. }) = self.pending.pop_front() else {
                break;
            };
            let j = region.positions.len();
            if j == 0 {
                self.stats.regions_dropped_no_sites += 1;
            } else if j < min_sites {
                self.stats.regions_dropped_too_few_sites += 1;
            } else {
                if let RegionSpec::Cluster { .. } = self.spec {
                    // Cluster bounds are known only now.
                    region.start = region.positions[0];
                    region.end = region.positions[j - 1] + 1;
                    region.id = format!("{}:{}-{}", region.chrom, region.start, region.end);
                }
                self.stats.regions_emitted += 1;
                self.stats.sites_in_emitted_regions += j as u64;
                self.ready.push_back(region);
            }
        }
    }
}

/// Errors when the BED names the data's contig `name` otherwise (`18` for `chr18`): its regions
/// there would be dropped without a word. The same alias rule as between samples.
fn bed_naming_matches(bed: &BedRegions, name: &str) -> Result<(), ReadError> {
    let Some((alias, k)) = contig_aliases(name)
        .into_iter()
        .find_map(|a| bed.contig_index(&a).map(|k| (a, k)))
    else {
        return Ok(());
    };
    let line = bed.first_line(k);
    Err(ReadError::new(
        bed.path(),
        line,
        ErrorKind::Regions(format!(
            "contig {alias} is not in the samples, which have {name}: the contig naming differs; \
             rename {alias} to {name} in the BED (add or strip the `chr` prefix)"
        )),
    ))
}

/// Up to 6 `name (n)` items, comma-separated, with "and N more".
fn counted_list(items: &[(&str, usize)]) -> String {
    let mut s: Vec<String> = items
        .iter()
        .take(6)
        .map(|(name, n)| format!("{name} ({n})"))
        .collect();
    if items.len() > 6 {
        s.push(format!("and {} more", items.len() - 6));
    }
    s.join(", ")
}

/// Regions straight from a [`SiteMerger`]: pulls batches as needed.
#[derive(Debug)]
pub struct RegionStream {
    merger: SiteMerger,
    builder: RegionBuilder,
    batch_rows: usize,
    done: bool,
}

impl RegionStream {
    /// Wraps `merger` and `builder`, pulling batches of `batch_rows` rows.
    pub fn new(merger: SiteMerger, builder: RegionBuilder, batch_rows: usize) -> Self {
        Self {
            merger,
            builder,
            batch_rows,
            done: false,
        }
    }

    /// The merge's counts.
    pub fn merge_stats(&self) -> &crate::merge::MergeStats {
        self.merger.stats()
    }

    /// The region builder's counts (final once the iterator returned `None`).
    pub fn region_stats(&self) -> &RegionStats {
        self.builder.stats()
    }

    /// The merger, e.g. for sample names.
    pub fn merger(&self) -> &SiteMerger {
        &self.merger
    }

    /// Once the stream has ended: what it renamed or dropped that deserves a look — BED names
    /// shared by several regions ([`BedRegions::repeated_names_warning`]) and BED regions on
    /// contigs the data lack (unless that is all of them, which
    /// [`why_no_regions`](Self::why_no_regions) explains).
    pub fn warnings(&self) -> Vec<String> {
        let RegionSpec::Bed(bed) = &self.builder.spec else {
            return Vec::new();
        };
        bed.repeated_names_warning()
            .into_iter()
            .chain(self.absent_contigs_warning(bed))
            .collect()
    }

    fn absent_contigs_warning(&self, bed: &BedRegions) -> Option<String> {
        let absent = self.builder.absent_bed_contigs();
        let dropped = self.builder.stats.regions_dropped_contig_absent;
        if absent.is_empty() || dropped == bed.len() as u64 {
            return None;
        }
        let (is, was) = if dropped == 1 {
            ("is", "was")
        } else {
            ("are", "were")
        };
        Some(format!(
            "{}: {dropped} of its {} regions {is} on contigs the samples do not have and {was} \
             dropped: {}",
            bed.path().display(),
            bed.len(),
            counted_list(&absent)
        ))
    }

    /// Once the stream has ended without a region: why. The first step of the data flow that
    /// left nothing is named, with the option or file to change.
    pub fn why_no_regions(&self) -> String {
        let st = &self.builder.stats;
        let filters = &self.builder.filters;
        let bed = match &self.builder.spec {
            RegionSpec::Bed(b) => Some(b),
            _ => None,
        };
        if let Some(b) = bed
            && st.regions_dropped_contig_absent == b.len() as u64
        {
            let data: Vec<&str> = self.merger.contigs_visited().collect();
            return format!(
                "{}: none of its {} regions is on a contig of the samples (regions on {}; \
                 samples on {}): use a BED made for the samples' reference",
                b.path().display(),
                b.len(),
                counted_list(&self.builder.absent_bed_contigs()),
                if data.is_empty() {
                    "none".to_string()
                } else {
                    data.iter().take(6).copied().collect::<Vec<_>>().join(", ")
                }
            );
        }
        if st.sites_read == 0 {
            return format!(
                "all {} merged positions have coverage 0 in every sample",
                self.merger.stats().rows_dropped_all_zero
            );
        }
        if st.sites_dropped_min_cov == st.sites_read {
            return format!(
                "all {} sites dropped: no sample reaches --min-cov {} at any of them; lower \
                 --min-cov",
                st.sites_read, filters.min_cov
            );
        }
        if st.sites_dropped_min_cov + st.sites_dropped_min_samples_per_group == st.sites_read {
            let per_group = match filters.min_samples_per_group {
                0 | 1 => "coverage in every group".to_string(),
                k => format!("coverage in {k} samples of every group"),
            };
            let mut lower: Vec<&str> = Vec::new();
            let masked = if st.cells_masked_min_cov > 0 {
                lower.push("--min-cov");
                format!(
                    " once the {} cells below --min-cov {} count as missing",
                    st.cells_masked_min_cov, filters.min_cov
                )
            } else {
                String::new()
            };
            if filters.min_samples_per_group > 1 {
                lower.push("--min-samples-per-group");
            }
            let lower = if lower.is_empty() {
                String::new()
            } else {
                format!(", or lower {}", lower.join(" or "))
            };
            return format!(
                "all {} sites dropped: no site has {per_group}{masked} — the groups' samples \
                 cover different positions; check that they come from the same reference and \
                 the same regions (capture, RRBS digest){lower}",
                st.sites_read
            );
        }
        if let Some(b) = bed
            && st.sites_in_regions == 0
        {
            return format!(
                "{}: none of the {} sites that pass the filters falls in one of its {} \
                 regions: check that the BED is for the samples' reference and uses BED \
                 coordinates (0-based start, end exclusive)",
                b.path().display(),
                st.sites_read - st.sites_dropped_min_cov - st.sites_dropped_min_samples_per_group,
                b.len()
            );
        }
        let (min, option) = match self.builder.spec {
            RegionSpec::Cluster { min_sites, .. } if min_sites > filters.min_sites => {
                (min_sites, "--cluster-min-sites")
            }
            _ => (filters.min_sites, "--min-sites"),
        };
        format!(
            "every region has fewer than {option} {min} sites ({} regions dropped with too few \
             sites, {} without sites); lower {option} if smaller regions are wanted",
            st.regions_dropped_too_few_sites, st.regions_dropped_no_sites
        )
    }
}

impl Iterator for RegionStream {
    type Item = Result<Region, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(r) = self.builder.pop_region() {
                return Some(Ok(r));
            }
            if self.done {
                return None;
            }
            match self.merger.next_batch(self.batch_rows) {
                Ok(Some(b)) => {
                    if let Err(e) = self.builder.push_batch(&b) {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
                Ok(None) => {
                    self.builder.finish();
                    self.done = true;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::site_schema;
    use arrow_array::types::Int32Type;
    use arrow_array::{
        ArrayRef, DictionaryArray, Int32Array, StringArray, UInt32Array, UInt64Array,
    };
    use std::path::Path;
    use std::sync::Arc;

    /// A site batch of 2 samples (groups g0, g1) from rows `(chrom, pos, [(m, n); 2])`.
    type Row2<'a> = (&'a str, u64, [(u32, u32); 2]);

    fn batch2(rows: &[Row2]) -> RecordBatch {
        let schema = site_schema(&["a".into(), "b".into()], &["g0".into(), "g1".into()]);
        let mut names: Vec<&str> = Vec::new();
        let mut keys = Vec::new();
        for r in rows {
            if names.last() != Some(&r.0) {
                names.push(r.0);
            }
            keys.push(names.len() as i32 - 1);
        }
        let chrom = DictionaryArray::<Int32Type>::try_new(
            Int32Array::from(keys),
            Arc::new(StringArray::from(names)),
        )
        .unwrap();
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(chrom),
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.1))),
        ];
        for s in 0..2 {
            cols.push(Arc::new(UInt32Array::from_iter_values(
                rows.iter().map(|r| r.2[s].0),
            )));
            cols.push(Arc::new(UInt32Array::from_iter_values(
                rows.iter().map(|r| r.2[s].1),
            )));
        }
        RecordBatch::try_new(schema, cols).unwrap()
    }

    fn run(b: &mut RegionBuilder, batches: &[RecordBatch]) -> Vec<Region> {
        let mut out = Vec::new();
        for bt in batches {
            b.push_batch(bt).unwrap();
            while let Some(r) = b.pop_region() {
                out.push(r);
            }
        }
        b.finish();
        while let Some(r) = b.pop_region() {
            out.push(r);
        }
        let st = b.stats();
        assert_eq!(
            st.sites_read,
            st.sites_dropped_min_cov
                + st.sites_dropped_min_samples_per_group
                + st.sites_outside_regions
                + st.sites_in_regions,
            "site accounting: {st:?}"
        );
        out
    }

    const C: [(u32, u32); 2] = [(1, 2), (3, 4)];

    fn bed(text: &str) -> BedRegions {
        BedRegions::from_reader(Path::new("r.bed"), text.as_bytes()).unwrap()
    }

    /// The error message of reading `text` as `r.bed`.
    fn bed_error(text: &str) -> String {
        BedRegions::from_reader(Path::new("r.bed"), text.as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn bed_parsing_tabs_spaces_and_errors() {
        let b =
            bed("track name=x\n# c\nchr1\t10\t20\tgeneA\textra\n\nchr1 5 8 CpG: 47\nchr2\t0\t3\n");
        assert_eq!(b.len(), 3);
        let c1 = b.regions_of("chr1");
        assert_eq!(c1[0].id, "CpG: 47");
        assert_eq!((c1[0].start, c1[0].end), (5, 8));
        assert_eq!(c1[1].id, "geneA");
        assert_eq!(b.regions_of("chr2")[0].id, "chr2:0-3");
        for (text, want) in [
            (
                "chr1\t10\n",
                "r.bed:1: regions: a BED line needs at least 3 fields",
            ),
            (
                "#h\nchr1 x 5\n",
                "r.bed:2: regions: start is not a non-negative integer",
            ),
            (
                "chr1\t10\t5\n",
                "r.bed:1: regions: end 5 is before start 10",
            ),
        ] {
            let e = bed_error(text);
            assert!(e.starts_with(want), "{e}");
        }
    }

    /// Regression (#18): an empty BED ran into "no region passed the filters ... check
    /// --min-sites, --min-cov and --min-samples-per-group"; the cause is the file.
    #[test]
    fn bed_without_regions_is_an_error() {
        for text in ["", "# only a comment\n\ntrack name=x\n"] {
            assert_eq!(
                bed_error(text),
                "r.bed: regions: the BED has no regions (every line is blank, a comment, or a \
                 track or browser line)"
            );
        }
    }

    /// Regression (#18): two regions named `CpG: 35` kept one id, so the audit (and every
    /// per-id seed) saw 5 regions where the run had 6. Shared names now carry their
    /// coordinates; regions that still share an id are an error naming both lines.
    #[test]
    fn shared_names_get_coordinates_and_repeated_lines_are_errors() {
        let b = bed("c\t50\t60\tCpG: 35\nc\t0\t10\tA\nd\t5\t9\tCpG: 35\nc\t20\t30\n");
        let ids: Vec<String> = ["c", "d"]
            .iter()
            .flat_map(|c| b.regions_of(c))
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["A", "c:20-30", "CpG: 35@c:50-60", "CpG: 35@d:5-9"]);
        assert_eq!(
            b.repeated_names_warning().as_deref(),
            Some(
                "r.bed: 1 name is shared by 2 regions (e.g. \"CpG: 35\" on lines 1, 3); region \
                 ids must be unique, so each of those regions is named name@chrom:start-end"
            )
        );
        assert_eq!(bed("c\t0\t10\tA\n").repeated_names_warning(), None);
        for (text, want) in [
            (
                "c\t0\t10\tA\nc\t5\t9\tB\nc\t0\t10\tA\n",
                "r.bed:3: regions: region id \"A@c:0-10\" is already used by line 1",
            ),
            (
                "c\t0\t10\nc\t0\t10\n",
                "r.bed:2: regions: region id \"c:0-10\" is already used by line 1",
            ),
            (
                "c\t0\t10\tc:5-9\nc\t5\t9\n",
                "r.bed:2: regions: region id \"c:5-9\" is already used by line 1",
            ),
        ] {
            let e = bed_error(text);
            assert!(e.starts_with(want), "got {e}\nwant {want}");
        }
    }

    /// Regression (#18): a BED line on `18` next to data on `chr18` was dropped without a
    /// word (Theta "learned from 1 of 1 regions"). It is an error naming the BED line and the
    /// data's name, as between samples.
    #[test]
    fn bed_contig_named_as_an_alias_of_a_data_contig_is_an_error() {
        for text in ["chr1\t0\t100\tA\n1\t0\t100\tB\n", "1\t0\t100\tB\n"] {
            let b = bed(text);
            let mut rb =
                RegionBuilder::new(RegionSpec::Bed(b), RegionFilters::default(), vec![0, 1])
                    .unwrap();
            let e = rb.push_batch(&batch2(&[("chr1", 5, C)])).unwrap_err();
            let line = if text.starts_with("chr1") { 2 } else { 1 };
            assert_eq!(
                e.to_string(),
                format!(
                    "r.bed:{line}: regions: contig 1 is not in the samples, which have chr1: the \
                     contig naming differs; rename 1 to chr1 in the BED (add or strip the `chr` \
                     prefix)"
                )
            );
        }
    }

    fn stream(
        rows: [&[(&str, u64, u32, u32)]; 2],
        spec: RegionSpec,
        filters: RegionFilters,
    ) -> RegionStream {
        let sources: Vec<Box<dyn crate::SiteSource + Send>> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                Box::new(crate::merge::VecSource::new(format!("s{i}.txt"), r))
                    as Box<dyn crate::SiteSource + Send>
            })
            .collect();
        let merger = SiteMerger::new(sources, crate::contigs::ContigOrder::Learned).unwrap();
        let builder = RegionBuilder::new(spec, filters, vec![0, 1]).unwrap();
        let mut s = RegionStream::new(merger, builder, 3);
        assert!(s.by_ref().next().is_none(), "a region came out");
        s
    }

    /// Regression (#18): every way of ending without a region said "no region passed the
    /// filters ... check --min-sites, --min-cov and --min-samples-per-group". Each now names
    /// its own cause.
    #[test]
    fn why_no_regions_names_the_true_cause() {
        let a: &[(&str, u64, u32, u32)] = &[
            ("chr18", 10, 1, 5),
            ("chr18", 20, 2, 5),
            ("chr18", 30, 2, 5),
        ];
        let b_same: &[(&str, u64, u32, u32)] = &[
            ("chr18", 10, 1, 4),
            ("chr18", 20, 2, 4),
            ("chr18", 30, 2, 4),
        ];
        let b_apart: &[(&str, u64, u32, u32)] = &[
            ("chr18", 11, 1, 4),
            ("chr18", 21, 2, 4),
            ("chr18", 31, 2, 4),
        ];
        let f = RegionFilters::default();
        let why = |rows, spec, filters| stream(rows, spec, filters).why_no_regions();
        let s = stream(
            [a, b_same],
            RegionSpec::Bed(bed("chr1\t0\t100\tA\nchrX\t0\t9\n")),
            f,
        );
        assert_eq!(
            s.why_no_regions(),
            "r.bed: none of its 2 regions is on a contig of the samples (regions on chr1 (1), \
             chrX (1); samples on chr18): use a BED made for the samples' reference"
        );
        assert_eq!(
            s.warnings(),
            Vec::<String>::new(),
            "explained by why_no_regions"
        );
        assert_eq!(
            why([a, b_apart], RegionSpec::default(), f),
            "all 6 sites dropped: no site has coverage in every group — the groups' samples \
             cover different positions; check that they come from the same reference and the \
             same regions (capture, RRBS digest)"
        );
        let min_cov = RegionFilters { min_cov: 9, ..f };
        assert_eq!(
            why([a, b_same], RegionSpec::default(), min_cov),
            "all 3 sites dropped: no sample reaches --min-cov 9 at any of them; lower --min-cov"
        );
        let c5 = RegionFilters { min_cov: 5, ..f };
        assert_eq!(
            why([a, b_same], RegionSpec::default(), c5),
            "all 3 sites dropped: no site has coverage in every group once the 3 cells below \
             --min-cov 5 count as missing — the groups' samples cover different positions; check \
             that they come from the same reference and the same regions (capture, RRBS \
             digest), or lower --min-cov"
        );
        assert_eq!(
            why([a, b_same], RegionSpec::Bed(bed("chr18\t100\t200\tA\n")), f),
            "r.bed: none of the 3 sites that pass the filters falls in one of its 1 regions: \
             check that the BED is for the samples' reference and uses BED coordinates (0-based \
             start, end exclusive)"
        );
        let four = RegionFilters { min_sites: 4, ..f };
        assert_eq!(
            why([a, b_same], RegionSpec::default(), four),
            "every region has fewer than --min-sites 4 sites (1 regions dropped with too few \
             sites, 0 without sites); lower --min-sites if smaller regions are wanted"
        );
        let clusters = RegionSpec::Cluster {
            max_gap: 5,
            min_sites: 2,
        };
        assert!(
            why([a, b_same], clusters, f).starts_with("every region has fewer than --min-sites 3")
        );
        let clusters = RegionSpec::Cluster {
            max_gap: 100,
            min_sites: 4,
        };
        assert!(
            why([a, b_same], clusters, f)
                .starts_with("every region has fewer than --cluster-min-sites 4")
        );
        // Some regions on absent contigs next to good ones: a warning.
        let mut s = {
            let sources: Vec<Box<dyn crate::SiteSource + Send>> = vec![
                Box::new(crate::merge::VecSource::new("s0.txt", a)),
                Box::new(crate::merge::VecSource::new("s1.txt", b_same)),
            ];
            let merger = SiteMerger::new(sources, crate::contigs::ContigOrder::Learned).unwrap();
            let spec = RegionSpec::Bed(bed("chr18\t0\t100\tA\nchrY\t0\t9\tY\n"));
            RegionStream::new(merger, RegionBuilder::new(spec, f, vec![0, 1]).unwrap(), 3)
        };
        assert_eq!(s.by_ref().filter_map(Result::ok).count(), 1);
        assert_eq!(
            s.warnings(),
            [
                "r.bed: 1 of its 2 regions is on contigs the samples do not have and was dropped: chrY (1)"
            ]
        );
    }

    /// A contig whose lines are one sorted block streams from the file; any other is read and
    /// sorted when the data reach it. Both give the same regions in the same order.
    #[test]
    fn sorted_blocks_stream_and_other_contigs_are_sorted_in_memory() {
        let sorted = "a\t0\t10\tr1\na\t0\t12\tr2\na\t5\t9\tr3\n# c\nb\t3\t4\nb\t7\t9\tr5\n";
        // a out of order, b split by a line of a.
        let shuffled = "a\t5\t9\tr3\nb\t7\t9\tr5\na\t0\t12\tr2\na\t0\t10\tr1\nb\t3\t4\n";
        let (s, u) = (bed(sorted), bed(shuffled));
        assert!(s.streams("a") && s.streams("b"));
        assert!(!u.streams("a") && !u.streams("b"));
        for contig in ["a", "b"] {
            let ids = |b: &BedRegions| -> Vec<(u64, u64, String)> {
                b.regions_of(contig)
                    .into_iter()
                    .map(|r| (r.start, r.end, r.id))
                    .collect()
            };
            assert_eq!(ids(&s), ids(&u), "contig {contig}");
        }
        assert_eq!(
            s.regions_of("a")
                .iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>(),
            ["r1", "r2", "r3"]
        );
        assert_eq!(s.regions_of("b")[0].id, "b:3-4");
        // Equal start and end: the id orders them.
        assert!(!bed("a\t0\t10\tz\na\t0\t10\ty\n").streams("a"));
    }

    #[test]
    fn real_space_separated_bed() {
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/modkit/cpg_chr20_with_orig_names_selection.bed"
        );
        assert!(
            Path::new(p).exists(),
            "test data missing: {p} (see /work/shared/data/README.md)"
        );
        let b = BedRegions::from_path(Path::new(p)).unwrap();
        assert_eq!(b.len(), 6);
        let v = b.regions_of("chr20");
        assert_eq!(
            (v[0].start, v[0].end, v[0].id.as_str()),
            (9838623, 9839213, "CpG: 47")
        );
    }

    #[test]
    fn bed_overlap_order_and_drops() {
        // A [0,10), B [5,30), C [6,8) (no sites), D [40,50) (1 site), E on chrZ (absent).
        let b = bed("c\t5\t30\tB\nc\t0\t10\tA\nc\t6\t8\tC\nc\t40\t50\tD\nchrZ\t0\t100\tE\n");
        let mut rb = RegionBuilder::new(
            RegionSpec::Bed(b),
            RegionFilters {
                min_sites: 2,
                ..Default::default()
            },
            vec![0, 1],
        )
        .unwrap();
        let rows = [
            ("c", 1, C),
            ("c", 5, C),
            ("c", 9, C),
            ("c", 20, C),
            ("c", 35, C),
            ("c", 45, C),
        ];
        // Two batches, split inside region B.
        let out = run(&mut rb, &[batch2(&rows[..3]), batch2(&rows[3..])]);
        let ids: Vec<_> = out.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["A", "B"]);
        assert_eq!(out[0].positions, [1, 5, 9]);
        assert_eq!(out[1].positions, [5, 9, 20]);
        assert_eq!(out[1].methylated, [1, 3, 1, 3, 1, 3]);
        assert_eq!(out[1].coverage, [2, 4, 2, 4, 2, 4]);
        let st = rb.stats();
        assert_eq!(st.regions_emitted, 2);
        assert_eq!(st.regions_dropped_too_few_sites, 1); // D
        assert_eq!(st.regions_dropped_no_sites, 1); // C
        assert_eq!(st.regions_dropped_contig_absent, 1); // E
        assert_eq!(st.sites_outside_regions, 1); // 35
        assert_eq!(st.sites_in_regions, 5);
        assert_eq!(st.sites_in_emitted_regions, 6);
    }

    #[test]
    fn tiles() {
        let rows = [
            ("c", 3, C),
            ("c", 12, C),
            ("c", 14, C),
            ("c", 95, C),
            ("d", 0, C),
        ];
        let mut rb = RegionBuilder::new(
            RegionSpec::Tile { size: 10, step: 5 },
            RegionFilters {
                min_sites: 1,
                ..Default::default()
            },
            vec![0, 1],
        )
        .unwrap();
        let out = run(&mut rb, &[batch2(&rows)]);
        let got: Vec<_> = out
            .iter()
            .map(|r| (r.id.as_str(), r.positions.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("c:0-10", vec![3]),
                ("c:5-15", vec![12, 14]),
                ("c:10-20", vec![12, 14]),
                ("c:90-100", vec![95]),
                ("c:95-105", vec![95]),
                ("d:0-10", vec![0]),
            ]
        );
        // step > size: sites in the gaps fall outside.
        let mut rb = RegionBuilder::new(
            RegionSpec::Tile { size: 5, step: 10 },
            RegionFilters {
                min_sites: 1,
                ..Default::default()
            },
            vec![0, 1],
        )
        .unwrap();
        let out = run(&mut rb, &[batch2(&rows)]);
        let ids: Vec<_> = out.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["c:0-5", "c:10-15", "d:0-5"]);
        assert_eq!(rb.stats().sites_outside_regions, 1); // 95
    }

    #[test]
    fn clusters_and_filters_counted() {
        let low = [(1, 1), (3, 4)]; // sample a below min_cov 2
        let none_b = [(1, 2), (0, 0)]; // group g1 uncovered
        let rows = [
            ("c", 10, C),
            ("c", 60, low),
            ("c", 110, C), // gap 50 from 60
            ("c", 300, C), // gap 190: new cluster
            ("c", 301, none_b),
            ("c", 350, C),
            ("d", 5, C),                // new contig: new cluster
            ("d", 6, [(0, 1), (1, 1)]), // both cells masked by min_cov 2
            ("d", 7, C),
            ("d", 8, C),
        ];
        let spec = RegionSpec::Cluster {
            max_gap: 100,
            min_sites: 3,
        };
        // Without the per-group filter: masked cells stay in their regions as 0/0.
        let filters = RegionFilters {
            min_cov: 2,
            min_samples_per_group: 0,
            min_sites: 2,
        };
        let mut rb = RegionBuilder::new(spec.clone(), filters, vec![0, 1]).unwrap();
        let out = run(&mut rb, &[batch2(&rows[..5]), batch2(&rows[5..])]);
        let got: Vec<_> = out
            .iter()
            .map(|r| (r.id.as_str(), r.positions.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("c:10-111", vec![10, 60, 110]),
                ("c:300-351", vec![300, 301, 350]),
                ("d:5-9", vec![5, 7, 8])
            ]
        );
        assert_eq!(out[0].methylated, [1, 3, 0, 3, 1, 3]);
        assert_eq!(out[0].coverage, [2, 4, 0, 4, 2, 4]);
        assert_eq!(out[1].coverage, [2, 4, 2, 0, 2, 4]);
        let st = rb.stats();
        assert_eq!(st.sites_read, 10);
        assert_eq!(st.cells_masked_min_cov, 3);
        assert_eq!(st.sites_dropped_min_cov, 1);
        assert_eq!(st.sites_dropped_min_samples_per_group, 0);
        assert_eq!(st.regions_emitted, 3);
        assert_eq!(st.sites_in_emitted_regions, 9);

        // With one covered sample per group required, 60 and 301 go; the c clusters shrink
        // to {10, 110} and {300, 350}, below the cluster minimum of 3.
        let filters = RegionFilters {
            min_samples_per_group: 1,
            ..filters
        };
        let mut rb = RegionBuilder::new(spec, filters, vec![0, 1]).unwrap();
        let out = run(&mut rb, &[batch2(&rows[..5]), batch2(&rows[5..])]);
        let ids: Vec<_> = out.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["d:5-9"]);
        let st = rb.stats();
        assert_eq!(st.sites_dropped_min_cov, 1);
        assert_eq!(st.sites_dropped_min_samples_per_group, 2);
        assert_eq!(st.regions_dropped_too_few_sites, 2);
        assert_eq!(st.regions_emitted, 1);
    }

    #[test]
    fn groups_from_schema_metadata() {
        let schema = site_schema(
            &["a".into(), "b".into(), "c".into()],
            &["t".into(), "n".into(), "t".into()],
        );
        let filters = RegionFilters {
            min_samples_per_group: 1,
            ..Default::default()
        };
        let rb = RegionBuilder::for_schema(RegionSpec::default(), filters, &schema).unwrap();
        assert_eq!(rb.group_of_sample, [0, 1, 0]);
        assert_eq!(rb.n_groups(), 2);
        let bare = Schema::empty();
        assert!(RegionBuilder::for_schema(RegionSpec::default(), filters, &bare).is_err());
    }

    #[test]
    fn min_samples_per_group_needs_enough_samples() {
        let e = RegionBuilder::new(
            RegionSpec::default(),
            RegionFilters {
                min_samples_per_group: 2,
                ..Default::default()
            },
            vec![0, 0, 1],
        )
        .unwrap_err();
        assert!(
            e.to_string().contains(
                "group 1 (groups numbered from 0, the reference group first) has 1 sample, \
                 fewer than --min-samples-per-group 2"
            ),
            "{e}"
        );
    }

    #[test]
    fn unsorted_or_regrouped_stream_is_error() {
        let mut rb =
            RegionBuilder::new(RegionSpec::default(), RegionFilters::default(), vec![0, 1])
                .unwrap();
        let e = rb
            .push_batch(&batch2(&[("c", 5, C), ("c", 4, C)]))
            .unwrap_err();
        assert!(e.to_string().contains("not sorted"), "{e}");
        let mut rb =
            RegionBuilder::new(RegionSpec::default(), RegionFilters::default(), vec![0, 1])
                .unwrap();
        rb.push_batch(&batch2(&[("c", 5, C), ("d", 4, C)])).unwrap();
        let e = rb.push_batch(&batch2(&[("c", 9, C)])).unwrap_err();
        assert!(e.to_string().contains("appears again"), "{e}");
    }

    /// Naive reference: every region is checked against every (filter-passing) site.
    fn naive(regions: &[(u64, u64)], sites: &[u64], min_sites: usize) -> Vec<(u64, u64, Vec<u64>)> {
        let mut v: Vec<(u64, u64, Vec<u64>)> = regions
            .iter()
            .map(|&(a, b)| {
                (
                    a,
                    b,
                    sites.iter().copied().filter(|&p| a <= p && p < b).collect(),
                )
            })
            .filter(|r: &(u64, u64, Vec<u64>)| r.2.len() >= min_sites)
            .collect();
        v.sort();
        v
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        #[test]
        fn bed_and_tiles_equal_naive(
            regions in proptest::collection::btree_set((0u64..200, 0u64..60), 1..25),
            sites in proptest::collection::btree_set(0u64..260, 0..60),
            split in 0usize..60,
            size in 1u64..40,
            step in 1u64..40,
            min_sites in 1usize..4,
        ) {
            let regions: Vec<(u64, u64)> = regions.iter().map(|&(a, l)| (a, a + l)).collect();
            let sites: Vec<u64> = sites.into_iter().collect();
            let rows: Vec<Row2> = sites.iter().map(|&p| ("c", p, C)).collect();
            let split = split.min(rows.len());
            let batches: Vec<RecordBatch> = [&rows[..split], &rows[split..]]
                .iter()
                .filter(|r| !r.is_empty())
                .map(|r| batch2(r))
                .collect();
            let filters = RegionFilters { min_sites, ..Default::default() };

            let text: String = regions.iter().map(|(a, b)| format!("c\t{a}\t{b}\n")).collect();
            let mut rb = RegionBuilder::new(RegionSpec::Bed(bed(&text)), filters, vec![0, 1]).unwrap();
            let got: Vec<_> = run(&mut rb, &batches)
                .into_iter()
                .map(|r| (r.start, r.end, r.positions))
                .collect();
            proptest::prop_assert_eq!(&got, &naive(&regions, &sites, min_sites));
            let st = rb.stats();
            proptest::prop_assert_eq!(
                st.regions_emitted
                    + st.regions_dropped_too_few_sites
                    + st.regions_dropped_no_sites
                    + st.regions_dropped_contig_absent,
                regions.len() as u64
            );

            // Tiles: the windows that hold a site, as a naive enumeration.
            let max_k = 260 / step + 1;
            let windows: Vec<(u64, u64)> = (0..=max_k)
                .map(|k| (k * step, k * step + size))
                .filter(|&(a, b)| sites.iter().any(|&p| a <= p && p < b))
                .collect();
            let mut rb = RegionBuilder::new(RegionSpec::Tile { size, step }, filters, vec![0, 1]).unwrap();
            let got: Vec<_> = run(&mut rb, &batches)
                .into_iter()
                .map(|r| (r.start, r.end, r.positions))
                .collect();
            proptest::prop_assert_eq!(&got, &naive(&windows, &sites, min_sites));

            // Clusters: split the sites wherever the gap exceeds max_gap.
            let max_gap = step;
            let mut want: Vec<(u64, u64, Vec<u64>)> = Vec::new();
            let mut run_: Vec<u64> = Vec::new();
            for &p in sites.iter().chain(std::iter::once(&u64::MAX)) {
                if run_.last().is_some_and(|&q| p == u64::MAX || p - q > max_gap) {
                    if run_.len() >= min_sites.max(2) {
                        want.push((run_[0], run_[run_.len() - 1] + 1, run_.clone()));
                    }
                    run_.clear();
                }
                run_.push(p);
            }
            let spec = RegionSpec::Cluster { max_gap, min_sites: 2 };
            let mut rb = RegionBuilder::new(spec, filters, vec![0, 1]).unwrap();
            let got: Vec<_> = run(&mut rb, &batches)
                .into_iter()
                .map(|r| (r.start, r.end, r.positions))
                .collect();
            proptest::prop_assert_eq!(&got, &want);
        }
    }
}
