//! Pass 2: stream the regions again, fit them in rayon-parallel minibatches with Theta fixed,
//! and write the results in genomic order through a [`Sink`]: one file (`methvb fit`,
//! [`fit_to_file`]) or one shard per contig (`methvb run`, [`fit_to_shards`]). One loop does
//! both ([`stream_fits`]); memory is one minibatch and one row group per open output, whatever
//! the genome size (the FDR calls read the PEPs back from disk, see [`methvb_model::PepCut`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Instant;

use methvb_io::parquet_out::AtomicParquetWriter;
use methvb_io::regions::{Region, RegionStream};
use methvb_model::{FitOptions, RegionFit, StartModel, Theta};
use rayon::prelude::*;
use serde::Serialize;

use crate::audit::AuditPicker;
use crate::config::{FitConfig, InputConfig, ModelConfig, RegionConfig};
use crate::error::{Context, Result, bail};
use crate::gather::{f64_column, for_each_f64, open};
use crate::progress::Progress;
use crate::samples::{PassSummary, Samples, region_stream};
use crate::schema::columns::PEP;
use crate::schema::{RESULTS_ROW_GROUP_ROWS, ResultsLayout};
use crate::shards::{self, ShardCursor};

/// What pass 2 needs: the inputs and settings, the samples and Theta.
#[derive(Debug, Clone, Copy)]
pub struct Pass2<'a> {
    /// The inputs.
    pub input: &'a InputConfig,
    /// How sites are grouped into regions.
    pub regions: &'a RegionConfig,
    /// Seed and family.
    pub model: &'a ModelConfig,
    /// Per-region fit settings.
    pub fit: &'a FitConfig,
    /// Target Bayesian FDR of the `called` column.
    pub fdr: f64,
    /// Regions fitted in parallel per minibatch (does not change any result).
    pub minibatch: usize,
    /// The sheet as the model numbers it.
    pub samples: &'a Samples,
    /// The hyperparameters.
    pub theta: &'a Theta,
    /// The amortised start of the fits ([`FitConfig::start`]; `None`: the data-driven start).
    pub start: Option<&'a StartModel>,
}

impl Pass2<'_> {
    /// The model's per-region options.
    pub fn fit_options(&self) -> FitOptions {
        FitOptions {
            start: self.start.cloned(),
            ..self
                .fit
                .fit_options(self.model, self.samples.model_reference())
        }
    }

    /// Fits one region. Its random stream derives from (seed, region id), so neither the
    /// thread count nor the minibatch changes a fit.
    pub fn fit_one(&self, r: &Region, opts: &FitOptions) -> Result<RegionFit> {
        methvb_model::fit_region(
            &self.samples.data(r),
            self.theta,
            opts,
            self.model.seed,
            &r.id,
        )
        .with_context(|| format!("fitting region {}", r.id))
    }

    /// Fits a minibatch in parallel (rayon); the fits in the order of `chunk`.
    fn fit_chunk(&self, chunk: &[Region], opts: &FitOptions) -> Result<Vec<RegionFit>> {
        chunk.par_iter().map(|r| self.fit_one(r, opts)).collect()
    }
}

/// What pass 2 wrote.
#[derive(Debug, Clone, Serialize)]
pub struct FitSummary {
    /// Streaming counts.
    pub pass: PassSummary,
    /// Regions called at the FDR target.
    pub regions_called: u64,
    /// Regions the verdict flags (reliable = false) after refits.
    pub regions_unreliable: u64,
    /// Regions whose optimiser did not meet the convergence rule.
    pub regions_not_converged: u64,
}

/// Where pass 2's rows go.
pub trait Sink {
    /// The stream enters `contig` (`pending`: the fitted rows not yet written): `Some(path)`
    /// if its rows are to be taken from the shard at `path` rather than fitted.
    fn enter_contig(&mut self, contig: &str, pending: &[Region]) -> Result<Option<PathBuf>>;
    /// Writes the rows of a fitted minibatch (stream order; it may span contigs).
    fn write(&mut self, regions: &[Region], fits: &[RegionFit]) -> Result<()>;
    /// A minibatch was written; `streaming` is the contig the stream is in (`None` at the end).
    fn written(&mut self, pending: &[Region], streaming: Option<&str>) -> Result<()>;
    /// A reused shard's contig is over: it had `rows` rows.
    fn reused(&mut self, rows: u64);
}

/// The counts of [`stream_fits`].
#[derive(Debug, Clone, Default)]
struct Counts {
    regions: u64,
    unreliable: u64,
    not_converged: u64,
}

/// The one pass-2 loop: fits the regions of `stream` that `keep` accepts (by contig) in
/// minibatches and writes them to `sink`; rows of contigs the sink reuses stream past, checked
/// against the reused shard, and are offered to the audit without a fit unless the audit picks
/// them.
fn stream_fits<E: Into<crate::Error>>(
    pass: &Pass2,
    stream: &mut impl Iterator<Item = std::result::Result<Region, E>>,
    keep: impl Fn(&str) -> bool,
    sink: &mut dyn Sink,
    audit: &mut AuditPicker,
    progress: &dyn Progress,
) -> Result<Counts> {
    let opts = pass.fit_options();
    let minibatch = pass.minibatch.max(1);
    let mut counts = Counts::default();
    let mut chunk: Vec<Region> = Vec::with_capacity(minibatch);
    let mut chunk_index: Vec<u64> = Vec::with_capacity(minibatch);
    let mut contig: Option<String> = None;
    let mut reusing: Option<ShardCursor> = None;
    let mut contigs_seen: HashSet<String> = HashSet::new();
    let flush = |chunk: &mut Vec<Region>,
                 index: &mut Vec<u64>,
                 audit: &mut AuditPicker,
                 counts: &mut Counts,
                 sink: &mut dyn Sink|
     -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let fits = pass.fit_chunk(chunk, &opts)?;
        for ((&i, region), fit) in index.iter().zip(chunk.iter()).zip(&fits) {
            audit.offer(i, region, fit);
            counts.unreliable += u64::from(!fit.reliable);
            counts.not_converged += u64::from(!fit.converged);
        }
        sink.write(chunk, &fits)?;
        progress.advance(chunk.len() as u64);
        chunk.clear();
        index.clear();
        Ok(())
    };
    for region in stream.by_ref() {
        let region = region.map_err(Into::into)?;
        if !keep(&region.chrom) {
            continue;
        }
        if contig.as_deref() != Some(region.chrom.as_str()) {
            if let Some(cursor) = reusing.take() {
                sink.reused(cursor.finish()?);
            }
            if !contigs_seen.insert(region.chrom.clone()) {
                bail!(
                    "regions of contig {} come again after other contigs",
                    region.chrom
                );
            }
            reusing = sink
                .enter_contig(&region.chrom, &chunk)?
                .map(|path| ShardCursor::open(&path))
                .transpose()?;
            contig = Some(region.chrom.clone());
        }
        let index = counts.regions;
        counts.regions += 1;
        if let Some(cursor) = reusing.as_mut() {
            let (reliable, converged) = cursor.next(&region.id)?;
            counts.unreliable += u64::from(!reliable);
            counts.not_converged += u64::from(!converged);
            audit.offer_lazy(index, &region, reliable, || pass.fit_one(&region, &opts))?;
            progress.advance(1);
            continue;
        }
        chunk.push(region);
        chunk_index.push(index);
        if chunk.len() >= minibatch {
            flush(&mut chunk, &mut chunk_index, audit, &mut counts, sink)?;
            sink.written(&chunk, contig.as_deref())?;
        }
    }
    if let Some(cursor) = reusing.take() {
        sink.reused(cursor.finish()?);
    }
    flush(&mut chunk, &mut chunk_index, audit, &mut counts, sink)?;
    sink.written(&chunk, None)?;
    Ok(counts)
}

/// The directory of `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// For a hidden temporary of an output `X` (`.X.tmp-<pid>`, `.X.fitted`,
/// `.X.fitted.tmp-<pid>`): `X` and the pid of the writer, if the name has one.
fn temporary_of(file: &str) -> Option<(&str, Option<u32>)> {
    let rest = file.strip_prefix('.')?;
    let (rest, pid) = match rest.rsplit_once(".tmp-") {
        Some((rest, pid)) => (rest, Some(pid.parse::<u32>().ok()?)),
        None => (rest, None),
    };
    match rest.strip_suffix(".fitted") {
        Some(owner) => Some((owner, pid)),
        None if pid.is_some() => Some((rest, pid)),
        None => None,
    }
}

/// Removes from `dir` the hidden temporaries that killed earlier runs left for the outputs that
/// `owned` accepts (by file name), sparing those of a process that is still running.
pub fn remove_stale_temporaries(dir: &Path, owned: impl Fn(&str) -> bool) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some((owner, pid)) = file.to_str().and_then(temporary_of) else {
            continue;
        };
        let alive = pid.is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if owned(owner) && !alive {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// `dir/.name.<tag>` for a file `dir/name`.
fn hidden_sibling(out: &Path, tag: &str) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!(".{name}.{tag}"))
}

/// A results file being written: its fitted rows go to a hidden intermediate file; the file
/// itself is published with the `called` column, which needs every region's PEP (read back from
/// the intermediate file, so that memory does not grow with its rows).
struct Unpublished {
    out: PathBuf,
    fitted_path: PathBuf,
    writer: AtomicParquetWriter,
}

/// The PEP of the row with this index as published, from the fitted one.
type PepAdjust<'a> = &'a dyn Fn(usize, f64) -> f64;

impl Unpublished {
    fn create(out: &Path, layout: &ResultsLayout) -> Result<Self> {
        let fitted_path = hidden_sibling(out, "fitted");
        let writer = AtomicParquetWriter::create(
            &fitted_path,
            layout.fitted_schema(),
            Vec::new(),
            RESULTS_ROW_GROUP_ROWS,
        )?;
        Ok(Self {
            out: out.to_path_buf(),
            fitted_path,
            writer,
        })
    }

    fn write(
        &mut self,
        layout: &ResultsLayout,
        samples: &Samples,
        regions: &[Region],
        fits: &[RegionFit],
    ) -> Result<()> {
        let batch = layout.batch(regions, fits, &samples.sample_group, &samples.model_index)?;
        self.writer.write(&batch)?;
        Ok(())
    }

    /// Publishes the file with the FDR calls over its rows and `metadata` (with `adjust`, the
    /// `pep` column and the calls are of the adjusted PEPs); returns its rows and the regions
    /// called.
    fn publish(
        self,
        layout: &ResultsLayout,
        fdr: f64,
        metadata: Vec<(String, String)>,
        adjust: Option<PepAdjust>,
    ) -> Result<(u64, u64)> {
        let rows = self.writer.finish()?;
        let called =
            publish_with_calls(&self.fitted_path, &self.out, layout, adjust, fdr, metadata);
        // The intermediate file is complete but private: remove it whatever happened.
        let _ = std::fs::remove_file(&self.fitted_path);
        Ok((rows, called?))
    }
}

/// Copies the fitted rows of `fitted` to `out`, adding the FDR calls over all rows (of the PEPs
/// `adjust` makes, which also replace the `pep` column); returns the number of regions called.
fn publish_with_calls(
    fitted: &Path,
    out: &Path,
    layout: &ResultsLayout,
    adjust: Option<PepAdjust>,
    fdr: f64,
    metadata: Vec<(String, String)>,
) -> Result<u64> {
    let pep_index = layout.fitted_schema().index_of(PEP).ok();
    let adjusted = |row: usize, pep: f64| adjust.map_or(pep, |f| f(row, pep));
    let cut = match pep_index.filter(|_| layout.has_contrast()) {
        Some(index) => Some(methvb_model::PepCut::find(fdr, |add| {
            let mut row = 0;
            for_each_f64(fitted, index, &mut |pep| {
                add(adjusted(row, pep));
                row += 1;
            })
        })?),
        None => None,
    };
    let reader = open(fitted)?
        .with_batch_size(RESULTS_ROW_GROUP_ROWS)
        .build()?;
    let mut writer = AtomicParquetWriter::create(
        out,
        layout.called_schema(),
        metadata,
        RESULTS_ROW_GROUP_ROWS,
    )?;
    let mut offset = 0usize;
    let mut called = 0u64;
    for batch in reader {
        let mut batch = batch?;
        let rows = batch.num_rows();
        if let (Some(index), Some(cut)) = (pep_index, cut) {
            let peps: Vec<f64> = f64_column(&batch, index, fitted)?
                .iter()
                .enumerate()
                .map(|(i, pep)| adjusted(offset + i, pep.unwrap_or(f64::NAN)))
                .collect();
            if adjust.is_some() {
                batch = layout.with_pep(&batch, &peps)?;
            }
            let calls: Vec<bool> = peps.iter().map(|&pep| cut.called(pep)).collect();
            called += calls.iter().filter(|&&c| c).count() as u64;
            batch = layout.with_calls(&batch, &calls)?;
        }
        writer.write(&batch)?;
        offset += rows;
    }
    writer.finish()?;
    Ok(called)
}

/// The sink of [`fit_to_file`]: every row into one file.
struct FileSink<'a> {
    layout: ResultsLayout,
    samples: &'a Samples,
    file: Unpublished,
}

impl Sink for FileSink<'_> {
    fn enter_contig(&mut self, _contig: &str, _pending: &[Region]) -> Result<Option<PathBuf>> {
        Ok(None)
    }

    fn write(&mut self, regions: &[Region], fits: &[RegionFit]) -> Result<()> {
        self.file.write(&self.layout, self.samples, regions, fits)
    }

    fn written(&mut self, _pending: &[Region], _streaming: Option<&str>) -> Result<()> {
        Ok(())
    }

    fn reused(&mut self, _rows: u64) {}
}

/// Pass 2 of `methvb fit`: fits every region (only those on `chroms`, unless empty) with Theta
/// fixed and writes `out` (Parquet, atomically) with `metadata` as key-value metadata.
pub fn fit_to_file(
    pass: &Pass2,
    chroms: &[String],
    out: &Path,
    metadata: Vec<(String, String)>,
    progress: &dyn Progress,
) -> Result<FitSummary> {
    let started = Instant::now();
    let mut stream = region_stream(pass.input, pass.regions, pass.samples)?;
    let keep = |chrom: &str| chroms.is_empty() || chroms.iter().any(|c| c == chrom);
    let fitted = fit_stream_to_file(pass, &mut stream, keep, out, metadata, progress)?;
    if chroms.is_empty() && fitted.regions == 0 {
        bail!("no region to fit: {}", stream.why_no_regions());
    }
    warn_missing_contigs(&stream, chroms, progress);
    let summary = PassSummary::of(&stream, pass.samples, fitted.regions, started);
    summary.report_warnings(progress);
    Ok(FitSummary {
        pass: summary,
        regions_called: fitted.called,
        regions_unreliable: fitted.unreliable,
        regions_not_converged: fitted.not_converged,
    })
}

/// Warns of each contig of `chroms` that `stream` never reached.
pub(crate) fn warn_missing_contigs(
    stream: &RegionStream,
    chroms: &[String],
    progress: &dyn Progress,
) {
    for chrom in chroms {
        if !stream.merger().contigs_visited().any(|c| c == chrom) {
            progress.warn(&format!(
                "contig {chrom} is not in the inputs; no regions fitted there"
            ));
        }
    }
}

/// What [`fit_stream_to_file`] fitted and called.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FittedFile {
    pub regions: u64,
    pub called: u64,
    pub unreliable: u64,
    pub not_converged: u64,
}

/// Fitted rows not yet published (see [`fit_stream_unpublished`]).
pub(crate) struct FittedRows {
    layout: ResultsLayout,
    file: Unpublished,
    counts: FittedFile,
}

impl FittedRows {
    /// Publishes the rows with the FDR calls over all of them, of the PEPs `adjust(row, pep)`
    /// makes of the fitted ones (row: its index in stream order), which also go into the `pep`
    /// column.
    pub(crate) fn publish(
        self,
        fdr: f64,
        metadata: Vec<(String, String)>,
        adjust: &dyn Fn(usize, f64) -> f64,
    ) -> Result<FittedFile> {
        let (_, called) = self
            .file
            .publish(&self.layout, fdr, metadata, Some(adjust))?;
        Ok(FittedFile {
            called,
            ..self.counts
        })
    }
}

/// Fits the regions of `stream` that `keep` accepts (by contig) and publishes them, with the
/// FDR calls over all of them, as `out`.
pub(crate) fn fit_stream_to_file<E: Into<crate::Error>>(
    pass: &Pass2,
    stream: &mut impl Iterator<Item = std::result::Result<Region, E>>,
    keep: impl Fn(&str) -> bool,
    out: &Path,
    metadata: Vec<(String, String)>,
    progress: &dyn Progress,
) -> Result<FittedFile> {
    let FittedRows {
        layout,
        file,
        counts,
    } = fit_stream_unpublished(pass, stream, keep, out, progress)?;
    let (_, called) = file.publish(&layout, pass.fdr, metadata, None)?;
    Ok(FittedFile { called, ..counts })
}

/// Fits the regions of `stream` that `keep` accepts into the hidden intermediate file of `out`.
pub(crate) fn fit_stream_unpublished<E: Into<crate::Error>>(
    pass: &Pass2,
    stream: &mut impl Iterator<Item = std::result::Result<Region, E>>,
    keep: impl Fn(&str) -> bool,
    out: &Path,
    progress: &dyn Progress,
) -> Result<FittedRows> {
    let layout = ResultsLayout::new(&pass.samples.groups, &pass.samples.names);
    if let Some(name) = out.file_name().and_then(|n| n.to_str()) {
        remove_stale_temporaries(parent_dir(out), |owner| owner == name);
    }
    let mut sink = FileSink {
        file: Unpublished::create(out, &layout)?,
        layout,
        samples: pass.samples,
    };
    progress.start("pass 2: fitting", None);
    let mut no_audit = AuditPicker::new(&crate::config::AuditConfig::OFF, pass.model.seed);
    let counts = stream_fits(pass, stream, keep, &mut sink, &mut no_audit, progress)?;
    progress.finish();
    let FileSink { layout, file, .. } = sink;
    Ok(FittedRows {
        layout,
        file,
        counts: FittedFile {
            regions: counts.regions,
            called: 0,
            unreliable: counts.unreliable,
            not_converged: counts.not_converged,
        },
    })
}

/// Where `run`'s pass 2 writes its per-contig shards, and which shards it reuses.
#[derive(Debug)]
pub struct ShardPlan<'a> {
    /// Folder of the shards (`OUT/shards`).
    pub dir: &'a Path,
    /// Key-value metadata of every shard (`methvb.contig` is added per shard).
    pub metadata: Vec<(String, String)>,
    /// Contigs whose shards are reused, with their files (checked by [`crate::shards`]).
    pub reuse: HashMap<String, PathBuf>,
}

/// One contig's shard, in stream order.
#[derive(Debug, Clone, Serialize)]
pub struct ShardFile {
    /// Contig.
    pub contig: String,
    /// The shard file.
    pub path: PathBuf,
    /// Regions (rows) in it.
    pub rows: u64,
    /// Reused from an earlier run (`--resume`) rather than fitted now.
    pub reused: bool,
}

/// What [`fit_to_shards`] did.
#[derive(Debug, Clone)]
pub struct ShardedPass {
    /// Streaming counts; `regions_used` counts reused regions too.
    pub pass: PassSummary,
    /// Every shard, in stream (genomic) order.
    pub shards: Vec<ShardFile>,
    /// Regions the verdict flags after refits (reused ones included).
    pub regions_unreliable: u64,
    /// Regions whose optimiser did not meet the convergence rule (reused ones included).
    pub regions_not_converged: u64,
}

/// The sink of [`fit_to_shards`]: one shard per contig, each published (with `called` within
/// the shard) once its contig is complete.
struct ShardSink<'a> {
    layout: ResultsLayout,
    samples: &'a Samples,
    fdr: f64,
    plan: &'a ShardPlan<'a>,
    /// Shards being written, with their index in `shards`.
    open: VecDeque<(usize, String, Unpublished)>,
    shards: Vec<ShardFile>,
}

impl ShardSink<'_> {
    /// Publishes the open shards whose contig is complete: not the one `streaming`, and none
    /// with rows still waiting in `pending`.
    fn publish_complete(&mut self, pending: &[Region], streaming: Option<&str>) -> Result<()> {
        while let Some((_, contig, _)) = self.open.front() {
            if streaming == Some(contig.as_str()) || pending.iter().any(|r| &r.chrom == contig) {
                break;
            }
            let Some((slot, contig, file)) = self.open.pop_front() else {
                break;
            };
            let mut metadata = self.plan.metadata.clone();
            metadata.push((shards::CONTIG_KEY.into(), contig));
            let (rows, _) = file.publish(&self.layout, self.fdr, metadata, None)?;
            self.shards[slot].rows = rows;
        }
        Ok(())
    }
}

impl Sink for ShardSink<'_> {
    fn enter_contig(&mut self, contig: &str, pending: &[Region]) -> Result<Option<PathBuf>> {
        let reused = self.plan.reuse.get(contig).cloned();
        let path = match &reused {
            Some(path) => path.clone(),
            None => {
                let path = self.plan.dir.join(shards::file_name(contig));
                let file = Unpublished::create(&path, &self.layout)?;
                self.open
                    .push_back((self.shards.len(), contig.to_string(), file));
                path
            }
        };
        self.shards.push(ShardFile {
            contig: contig.to_string(),
            path,
            rows: 0,
            reused: reused.is_some(),
        });
        self.publish_complete(pending, Some(contig))?;
        Ok(reused)
    }

    fn write(&mut self, regions: &[Region], fits: &[RegionFit]) -> Result<()> {
        let mut start = 0;
        while start < regions.len() {
            let contig = regions[start].chrom.as_str();
            let end = start
                + regions[start..]
                    .iter()
                    .take_while(|r| r.chrom == contig)
                    .count();
            let (_, _, file) = self
                .open
                .iter_mut()
                .find(|(_, c, _)| c == contig)
                .with_context(|| format!("no open shard for contig {contig}"))?;
            file.write(
                &self.layout,
                self.samples,
                &regions[start..end],
                &fits[start..end],
            )?;
            start = end;
        }
        Ok(())
    }

    fn written(&mut self, pending: &[Region], streaming: Option<&str>) -> Result<()> {
        self.publish_complete(pending, streaming)
    }

    fn reused(&mut self, rows: u64) {
        if let Some(last) = self.shards.last_mut() {
            last.rows = rows;
        }
    }
}

/// Pass 2 of `run`: fits every region with Theta fixed, in rayon-parallel minibatches (which may
/// span contigs), and writes one shard per contig into `plan.dir` as the stream leaves the
/// contig (see [`crate::shards`]). Contigs in `plan.reuse` are not fitted: their regions stream
/// past, checked against the reused shard's rows. `expected_regions` (pass 1's count) sizes the
/// progress bar.
pub fn fit_to_shards(
    pass: &Pass2,
    plan: &ShardPlan,
    expected_regions: Option<u64>,
    audit: &mut AuditPicker,
    progress: &dyn Progress,
) -> Result<ShardedPass> {
    let started = Instant::now();
    let mut stream = region_stream(pass.input, pass.regions, pass.samples)?;
    progress.start("pass 2: fitting", expected_regions);
    let mut sink = ShardSink {
        layout: ResultsLayout::new(&pass.samples.groups, &pass.samples.names),
        samples: pass.samples,
        fdr: pass.fdr,
        plan,
        open: VecDeque::new(),
        shards: Vec::new(),
    };
    let counts = stream_fits(pass, &mut stream, |_| true, &mut sink, audit, progress)?;
    progress.finish();
    if counts.regions == 0 {
        // Only possible with a given Theta: pass 1 stops on this before.
        bail!("no region to fit: {}", stream.why_no_regions());
    }
    Ok(ShardedPass {
        pass: PassSummary::of(&stream, pass.samples, counts.regions, started),
        shards: sink.shards,
        regions_unreliable: counts.unreliable,
        regions_not_converged: counts.not_converged,
    })
}

#[cfg(test)]
mod tests {
    use super::temporary_of;

    #[test]
    fn temporaries_name_their_output_and_writer() {
        assert_eq!(
            temporary_of(".regions.parquet.tmp-42"),
            Some(("regions.parquet", Some(42)))
        );
        assert_eq!(
            temporary_of(".chr1.parquet.fitted"),
            Some(("chr1.parquet", None))
        );
        assert_eq!(
            temporary_of(".chr1.parquet.fitted.tmp-7"),
            Some(("chr1.parquet", Some(7)))
        );
        assert_eq!(temporary_of("regions.parquet"), None);
        assert_eq!(temporary_of(".hidden"), None);
        assert_eq!(temporary_of(".x.tmp-notapid"), None);
    }
}
