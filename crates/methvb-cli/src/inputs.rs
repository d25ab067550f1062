//! Options shared by every command that reads a sample sheet, and the code that opens the
//! samples as one merged site stream.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use methvb_io::contigs::ContigOrder;
use methvb_io::merge::SiteMerger;
use methvb_io::sample::ReaderOptions;
use methvb_io::sheet::SampleSheet;

/// How to find and read the samples.
#[derive(Debug, Clone, Args)]
pub struct InputArgs {
    /// Sample sheet (TSV or CSV with columns sample, group, path and optionally format;
    /// relative paths are relative to the sheet).
    #[arg(long, value_name = "SHEET")]
    pub samples: PathBuf,
    /// Reference group for the contrasts (default: the group of the first sample).
    #[arg(long, value_name = "GROUP")]
    pub reference: Option<String>,
    /// Contig order from a FASTA index (.fai) or sequence dictionary (.dict); without it the
    /// order is taken from the inputs, which must agree.
    #[arg(long, value_name = "FAI|DICT")]
    pub contigs: Option<PathBuf>,
    /// bedMethyl modification code to count as methylated (`m` 5mC, `h` 5hmC, `C` any C mod,
    /// a ChEBI number such as 21839); rows with other codes are skipped and counted.
    #[arg(long, default_value = "m", value_name = "CODE")]
    pub mod_code: String,
    /// Count any modification as methylated (what bisulfite sequencing sees: 5mC + 5hmC).
    #[arg(long)]
    pub any_mod: bool,
    /// Keep the two strands of a CpG as separate sites (default: + at p and − at p+1 merge).
    #[arg(long)]
    pub no_strand_merge: bool,
    /// Rows per Arrow batch of merged sites.
    #[arg(long, default_value_t = 65_536, value_name = "N")]
    pub batch_size: usize,
}

impl InputArgs {
    /// Reads the sample sheet (with the reference group first).
    pub fn sheet(&self) -> Result<SampleSheet> {
        let sheet = SampleSheet::from_path(&self.samples)?;
        Ok(sheet.with_reference(self.reference.as_deref())?)
    }

    /// Opens every sample of `sheet` and starts their k-way merge.
    pub fn open_merger(&self, sheet: &SampleSheet) -> Result<SiteMerger> {
        let order = match &self.contigs {
            Some(path) => ContigOrder::from_path(path)?,
            None => ContigOrder::default(),
        };
        let opts = ReaderOptions {
            format: None,
            mod_code: self.mod_code.clone(),
            any_mod: self.any_mod,
            merge_strands: !self.no_strand_merge,
        };
        Ok(sheet.merger(&opts, order)?)
    }
}
