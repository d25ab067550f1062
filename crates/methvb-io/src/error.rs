//! Typed errors of the readers: every error names the file and (where there is one) the line.

use std::fmt;
use std::path::PathBuf;

/// An error while reading an input, with the file and the 1-based line it concerns
/// (`line == 0` when it concerns the whole file).
///
/// Its `Display` already holds the message of `kind`, so [`std::error::Error::source`] skips
/// `kind` and goes on with `kind`'s own source: printing the whole chain (`{:#}` in anyhow)
/// says everything once.
#[derive(Debug)]
pub struct ReadError {
    /// The file being read.
    pub path: PathBuf,
    /// 1-based line number, or 0 when the error is not tied to a line.
    pub line: u64,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}

impl ReadError {
    /// An error at `line` of `path` (use 0 for the whole file).
    pub fn new(path: impl Into<PathBuf>, line: u64, kind: ErrorKind) -> Self {
        Self {
            path: path.into(),
            line,
            kind,
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.path.display(), self.line, self.kind)
        } else {
            write!(f, "{}: {}", self.path.display(), self.kind)
        }
    }
}

/// What went wrong while reading an input. New kinds may be added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The operating system refused a read or open.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A gzip / BGZF stream ended before its end-of-stream marker.
    #[error("truncated or corrupt compressed stream ({0})")]
    Compression(String),
    /// The file's format could not be recognised, or the named format is unknown.
    #[error("unknown format: {0}")]
    UnknownFormat(String),
    /// A line has the wrong number of columns for its format.
    #[error("expected {expected} columns for {format}, found {found}")]
    ColumnCount {
        /// Format being parsed.
        format: &'static str,
        /// Columns the format needs (a minimum where the format allows extras).
        expected: usize,
        /// Columns found.
        found: usize,
    },
    /// A field could not be parsed.
    #[error("column {column} ({name}): {reason}: {value:?}")]
    Field {
        /// 1-based column number.
        column: usize,
        /// Column name in the format's vocabulary.
        name: &'static str,
        /// The offending text (truncated to a sensible length).
        value: String,
        /// Why it is rejected: "not a non-negative integer", "overflows u32", ...
        reason: &'static str,
    },
    /// Methylated count above coverage.
    #[error("methylated count {methylated} exceeds coverage {coverage}")]
    MethylatedExceedsCoverage {
        /// m
        methylated: u64,
        /// n
        coverage: u64,
    },
    /// Positions within a contig go backwards. Positions are as the file writes them (1-based
    /// in DSS, Bismark `.cov` and CpG reports), so the message matches the lines it names.
    #[error(
        "unsorted input: {contig}:{pos} comes after {contig}:{previous} (sort by contig, then position, e.g. `sort -k1,1 -k2,2n`)"
    )]
    Unsorted {
        /// Contig name.
        contig: String,
        /// Previous position, as written in the file.
        previous: u64,
        /// This position, as written in the file.
        pos: u64,
    },
    /// The same position (and strand) occurs twice.
    #[error("duplicate position {contig}:{pos}: remove the repeated line")]
    Duplicate {
        /// Contig name.
        contig: String,
        /// Position, as written in the file.
        pos: u64,
    },
    /// A contig reappears after another contig started: the file is not grouped by contig.
    #[error("contig {contig} appears again after other contigs: the file is not sorted by contig")]
    ContigReappears {
        /// Contig name.
        contig: String,
    },
    /// Strand merging met a call it cannot pair: a − strand call at `pos` whose + strand
    /// partner position `pos − 1` was already used, or a − strand call at the contig's first
    /// base. The data are not CpG-only (or not stranded CpG calls).
    #[error(
        "cannot merge strands at {contig}:{pos}: the − strand call there does not pair with a + strand CpG call one base before it (input not CpG-only?); read it with --no-strand-merge"
    )]
    StrandConflict {
        /// Contig name.
        contig: String,
        /// Position of the − strand call, as written in the file.
        pos: u64,
    },
    /// Contig order or naming disagrees between inputs.
    #[error("{0}")]
    Contigs(String),
    /// A bedMethyl file holds no record with the chosen modification code.
    #[error(
        "no record with modification code {wanted:?}; codes present: {present}; choose one with --mod-code"
    )]
    NoModCode {
        /// Code asked for.
        wanted: String,
        /// Codes seen, comma-separated.
        present: String,
    },
    /// The sample sheet is malformed.
    #[error("sample sheet: {0}")]
    Sheet(String),
    /// A regions BED file is malformed.
    #[error("regions: {0}")]
    Regions(String),
    /// Writing an output failed.
    #[error("writing output: {0}")]
    Output(String),
    /// A BAM/SAM input is malformed or cannot be used (methvb-bam).
    #[error("BAM: {0}")]
    Bam(String),
    /// A sample yielded no site at all (empty file, header only, or every contig excluded).
    #[error("no sites: {0}")]
    NoSites(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message anyhow's `{:#}` prints: every error of the source chain, joined by ": ".
    fn chain(e: &dyn std::error::Error) -> String {
        let mut parts = vec![e.to_string()];
        let mut cur = e.source();
        while let Some(s) = cur {
            parts.push(s.to_string());
            cur = s.source();
        }
        parts.join(": ")
    }

    /// Regression: the CLI printed `file:3: m exceeds n: m exceeds n`, and an I/O error three
    /// times, because the kind was both in the message and the error source.
    #[test]
    fn error_chain_does_not_repeat_the_message() {
        let e = ReadError::new(
            "a.bed",
            3,
            ErrorKind::MethylatedExceedsCoverage {
                methylated: 5,
                coverage: 4,
            },
        );
        assert_eq!(chain(&e), "a.bed:3: methylated count 5 exceeds coverage 4");
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = ReadError::new("b.bed", 0, ErrorKind::Io(io));
        assert_eq!(chain(&e), "b.bed: gone");
        let e = ReadError::new("c.gz", 7, ErrorKind::Compression("cut".into()));
        assert_eq!(
            chain(&e),
            "c.gz:7: truncated or corrupt compressed stream (cut)"
        );
    }
}
