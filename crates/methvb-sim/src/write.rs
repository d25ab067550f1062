//! Writing a [`SimData`] to a directory: per-sample modkit bedMethyl files, a sample sheet,
//! the regions, the truth and the config.
//!
//! Layout of `dir` after [`write_dataset`]:
//! - `<sample>.bed` (or `<sample>.bed.gz`, BGZF, with [`WriteOptions::bgzip`]): modkit `pileup` bedMethyl, 18 tab-separated columns: `chrom start end m
//!   score strand start end 255,0,0 N_valid_cov percent_modified N_mod N_canonical N_other_mod
//!   N_delete N_fail N_diff N_nocall`, with `score = N_valid_cov = n`, `N_mod = m`,
//!   `N_canonical = n - m`, percent with 2 decimals, the last five counts 0. Sites with
//!   `n = 0` in that sample are omitted. Merged strands are written once at the `+` C with
//!   strand `.` (as `modkit pileup --combine-strands` does); with
//!   [`WriteOptions::split_strands`] each site becomes a `+` record at `p` and a `-` record at
//!   `p + 1` (an empty strand is omitted).
//! - `samples.tsv`: header `sample group path`, one row per sample, path relative to the sheet;
//!   with a batch design a `batch` column (the sample's label) follows, with paired donors a
//!   `donor` column (`donor_<k>`), in that order (readers of the sheet ignore unknown columns).
//! - `regions.bed`: BED4 `chrom start end id`, no header.
//! - `truth.tsv`: header `region_id chrom start end n_sites is_dmr true_delta_<g>...
//!   true_theta_<g>...` (`true_delta` for each non-reference group, `true_theta` for every
//!   group; `is_dmr` is `true`/`false`; floats in shortest round-trip form). With a batch
//!   design `has_batch_effect batch_effect_<batch>...` follow (one effect per non-reference
//!   batch, on the probability scale, 0 where the region has none), with paired donors
//!   `donor_effect_<donor>...` (logit scale). `true_delta` and `true_theta` stay the group
//!   levels of the reference batch without the batch effect, at donor effect 0. The last three
//!   columns are always `effect_start effect_end effect_sites`: the DMR's effect window
//!   ([`crate::SimRegion::effect_sites`]) as 0-based half-open coordinates like `start end`
//!   (its first CpG, its last CpG + 2) and its number of CpGs; `NA NA 0` for a non-DMR.
//! - `sim.json`: the [`crate::SimConfig`] (pretty JSON).
//!
//! Rows follow the region order of the data (contig order of the config, then position).
//! Every file is written through [`methvb_io::atomic::AtomicFile`]: to the hidden
//! `.<name>.tmp-<pid>` in `dir`, fsynced and renamed into place, so an interrupted run leaves
//! no half-written file under a final name.

use std::io::Write;
use std::path::{Path, PathBuf};

use methvb_io::atomic::AtomicFile;
use rand_distr::{Binomial, Distribution, Hypergeometric};
use serde::{Deserialize, Serialize};

use crate::bgzf::BgzfWriter;
use crate::simulate::{SPLIT, stream};
use crate::{SimData, SimError};

/// Options of [`write_dataset`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WriteOptions {
    /// Write each CpG as two strand records (`+` at `p`, `-` at `p + 1`) instead of one merged
    /// record. The split is random but exact: `n+ ~ Binomial(n, 1/2)`, and `m+` is
    /// hypergeometric (the `n+` reads of the `+` strand are a random subset of the `n` reads, of
    /// which `m` are methylated), so `n+ + n- = n` and `m+ + m- = m`.
    pub split_strands: bool,
    /// Seed of the strand split (each (region, sample) draws from its own stream).
    pub split_seed: u64,
    /// Compress the bedMethyl files with BGZF (`<sample>.bed.gz`, what `bgzip` writes:
    /// readable by any gzip reader and indexable by `tabix -p bed`) instead of plain text
    /// (`<sample>.bed`). About 5x smaller.
    pub bgzip: bool,
}

/// The paths written by [`write_dataset`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenDataset {
    /// The output directory.
    pub dir: PathBuf,
    /// `samples.tsv`.
    pub sample_sheet: PathBuf,
    /// One bedMethyl file per sample, in sample order.
    pub sample_files: Vec<PathBuf>,
    /// Number of bedMethyl records written per sample.
    pub records_per_sample: Vec<u64>,
    /// `regions.bed`.
    pub regions_bed: PathBuf,
    /// `truth.tsv`.
    pub truth: PathBuf,
    /// `sim.json`.
    pub config_json: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SimError + '_ {
    move |source| SimError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `path` through an [`AtomicFile`] (a hidden temporary beside it, fsynced and renamed
/// on success, removed on error).
fn write_atomic<T>(
    path: &Path,
    body: impl FnOnce(&mut AtomicFile) -> Result<T, SimError>,
) -> Result<T, SimError> {
    let mut out = AtomicFile::create(path).map_err(io_err(path))?;
    let value = body(&mut out)?;
    out.commit().map_err(io_err(path))?;
    Ok(value)
}

fn valid_file_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && !s.starts_with('.')
        && !s
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\' || c == ' ')
}

/// `<sample>.bed`, or `<sample>.bed.gz` when compressing.
fn sample_file_name(sample: &str, opts: &WriteOptions) -> String {
    if opts.bgzip {
        format!("{sample}.bed.gz")
    } else {
        format!("{sample}.bed")
    }
}

/// Writes one modkit bedMethyl record.
fn record(
    out: &mut impl Write,
    chrom: &str,
    pos: u64,
    strand: char,
    n: u32,
    m: u32,
) -> std::io::Result<()> {
    let pct = 100.0 * f64::from(m) / f64::from(n);
    let end = pos + 1;
    writeln!(
        out,
        "{chrom}\t{pos}\t{end}\tm\t{n}\t{strand}\t{pos}\t{end}\t255,0,0\t{n}\t{pct:.2}\t{m}\t{}\t0\t0\t0\t0\t0",
        n - m
    )
}

fn write_sample(
    out: &mut impl Write,
    path: &Path,
    data: &SimData,
    s: usize,
    opts: &WriteOptions,
) -> Result<u64, SimError> {
    let s_count = data.samples.len();
    let mut records = 0u64;
    for (i, region) in data.regions.iter().enumerate() {
        let mut rng = opts
            .split_strands
            .then(|| stream(opts.split_seed, SPLIT, &[i as u64, s as u64]));
        for (j, &pos) in region.positions.iter().enumerate() {
            let n = region.coverage[j * s_count + s];
            let m = region.methylated[j * s_count + s];
            if n == 0 {
                continue;
            }
            match rng.as_mut() {
                None => {
                    record(out, &region.chrom, pos, '.', n, m).map_err(io_err(path))?;
                    records += 1;
                }
                Some(rng) => {
                    let err = |e: rand_distr::BinomialError| SimError::Distribution {
                        distribution: "Binomial",
                        message: e.to_string(),
                    };
                    let n_plus = Binomial::new(u64::from(n), 0.5).map_err(err)?.sample(rng);
                    let m_plus = Hypergeometric::new(u64::from(n), u64::from(m), n_plus)
                        .map_err(|e| SimError::Distribution {
                            distribution: "Hypergeometric",
                            message: e.to_string(),
                        })?
                        .sample(rng);
                    // Both are bounded by n (a u32).
                    let (n_plus, m_plus) = (n_plus as u32, m_plus as u32);
                    if n_plus > 0 {
                        record(out, &region.chrom, pos, '+', n_plus, m_plus)
                            .map_err(io_err(path))?;
                        records += 1;
                    }
                    if n_plus < n {
                        record(out, &region.chrom, pos + 1, '-', n - n_plus, m - m_plus)
                            .map_err(io_err(path))?;
                        records += 1;
                    }
                }
            }
        }
    }
    Ok(records)
}

/// Writes `data` to `dir` (created if needed); see the module docs for the layout.
///
/// # Examples
/// ```
/// use methvb_sim::{SimConfig, WriteOptions, simulate, write_dataset};
///
/// let data = simulate(&SimConfig { n_regions: 10, ..SimConfig::default() });
/// let dir = tempfile::tempdir()?;
/// let opts = WriteOptions { bgzip: true, ..WriteOptions::default() };
/// let written = write_dataset(&data, dir.path(), &opts)?;
/// assert!(written.sample_files[0].ends_with("control_1.bed.gz"));
/// assert!(written.truth.is_file());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_dataset(
    data: &SimData,
    dir: &Path,
    opts: &WriteOptions,
) -> Result<WrittenDataset, SimError> {
    for (i, sample) in data.samples.iter().enumerate() {
        if !valid_file_name(&sample.name) || data.samples[..i].iter().any(|o| o.name == sample.name)
        {
            return Err(SimError::BadSampleName(sample.name.clone()));
        }
    }
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut sample_files = Vec::with_capacity(data.samples.len());
    let mut records_per_sample = Vec::with_capacity(data.samples.len());
    for (s, sample) in data.samples.iter().enumerate() {
        let path = dir.join(sample_file_name(&sample.name, opts));
        let n = write_atomic(&path, |out| {
            if opts.bgzip {
                let mut z = BgzfWriter::new(out);
                let n = write_sample(&mut z, &path, data, s, opts)?;
                z.finish().map_err(io_err(&path))?;
                Ok(n)
            } else {
                write_sample(out, &path, data, s, opts)
            }
        })?;
        sample_files.push(path);
        records_per_sample.push(n);
    }

    let sample_sheet = dir.join("samples.tsv");
    write_atomic(&sample_sheet, |out| {
        let e = io_err(&sample_sheet);
        (|| {
            write!(out, "sample\tgroup\tpath")?;
            let batch = !data.batch_levels.is_empty();
            let donor = !data.donors.is_empty();
            if batch {
                write!(out, "\tbatch")?;
            }
            if donor {
                write!(out, "\tdonor")?;
            }
            writeln!(out)?;
            for sample in &data.samples {
                let group = data
                    .group_names
                    .get(sample.group)
                    .map_or("", String::as_str);
                let file = sample_file_name(&sample.name, opts);
                write!(out, "{}\t{group}\t{file}", sample.name)?;
                if batch {
                    write!(out, "\t{}", sample.batch.as_deref().unwrap_or(""))?;
                }
                if donor {
                    write!(out, "\t{}", sample.donor.as_deref().unwrap_or(""))?;
                }
                writeln!(out)?;
            }
            Ok(())
        })()
        .map_err(e)
    })?;

    let regions_bed = dir.join("regions.bed");
    write_atomic(&regions_bed, |out| {
        let e = io_err(&regions_bed);
        (|| {
            for r in &data.regions {
                writeln!(out, "{}\t{}\t{}\t{}", r.chrom, r.start, r.end, r.id)?;
            }
            Ok(())
        })()
        .map_err(e)
    })?;

    let truth = dir.join("truth.tsv");
    write_atomic(&truth, |out| {
        let e = io_err(&truth);
        (|| {
            write!(out, "region_id\tchrom\tstart\tend\tn_sites\tis_dmr")?;
            for g in data.group_names.iter().skip(1) {
                write!(out, "\ttrue_delta_{g}")?;
            }
            for g in &data.group_names {
                write!(out, "\ttrue_theta_{g}")?;
            }
            if !data.batch_levels.is_empty() {
                write!(out, "\thas_batch_effect")?;
                for b in data.batch_levels.iter().skip(1) {
                    write!(out, "\tbatch_effect_{b}")?;
                }
            }
            for d in &data.donors {
                write!(out, "\tdonor_effect_{d}")?;
            }
            writeln!(out, "\teffect_start\teffect_end\teffect_sites")?;
            for r in &data.regions {
                write!(
                    out,
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    r.id,
                    r.chrom,
                    r.start,
                    r.end,
                    r.positions.len(),
                    r.is_dmr
                )?;
                for d in r.true_delta.iter().chain(&r.true_theta) {
                    write!(out, "\t{d}")?;
                }
                if !data.batch_levels.is_empty() {
                    write!(out, "\t{}", r.has_batch_effect)?;
                }
                for e in r.batch_effect.iter().chain(&r.donor_effect) {
                    write!(out, "\t{e}")?;
                }
                match (r.effect_span(), &r.effect_sites) {
                    (Some((start, end)), Some(w)) => {
                        writeln!(out, "\t{start}\t{end}\t{}", w.len())?;
                    }
                    _ => writeln!(out, "\tNA\tNA\t0")?,
                }
            }
            Ok(())
        })()
        .map_err(e)
    })?;

    let config_json = dir.join("sim.json");
    let json = serde_json::to_string_pretty(&data.config)?;
    write_atomic(&config_json, |out| {
        writeln!(out, "{json}").map_err(io_err(&config_json))
    })?;

    Ok(WrittenDataset {
        dir: dir.to_path_buf(),
        sample_sheet,
        sample_files,
        records_per_sample,
        regions_bed,
        truth,
        config_json,
    })
}
