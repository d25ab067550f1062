//! The sample sheet: which file holds which sample, and which group each sample belongs to.
//!
//! A TSV or CSV file (the delimiter is a tab if the header line holds one, else a comma) with a
//! header line naming the columns `sample`, `group`, `path` and optionally `format`, in any order
//! (other columns are ignored). Blank lines and lines starting with `#` are skipped, before and
//! after the header. Fields are trimmed of surrounding spaces and of one pair of surrounding
//! double quotes (no other CSV quoting is understood, so a field cannot hold the delimiter).
//! Relative paths are relative to the sheet's directory.
//!
//! ```text
//! sample  group   path                format
//! C1      control counts/cond1_1.txt  dss
//! N1      tumour  counts/cond2_1.txt
//! ```
//!
//! Sample and group names must match `[A-Za-z0-9_.-]+` (they become column names such as
//! `C1_m` and comma-separated metadata, see [`crate::batch`]). Every problem is an
//! [`ErrorKind::Sheet`] error naming the sheet and line: a space-separated header, a sample
//! file that does not exist (with the path as resolved), and so on. Designs that run but are
//! likely not what was meant (one group, groups of one sample, two groups whose names differ
//! only in case or punctuation) are [`SheetWarning`]s.

use std::path::{Path, PathBuf};

use crate::SiteSource;
use crate::contigs::ContigOrder;
use crate::error::{ErrorKind, ReadError};
use crate::format::Format;
use crate::merge::SiteMerger;
use crate::sample::{ContigFilter, ReaderOptions, SampleReader};

/// One row of the sample sheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleEntry {
    /// Sample name (unique, `[A-Za-z0-9_.-]+`).
    pub name: String,
    /// Group name (`[A-Za-z0-9_.-]+`).
    pub group: String,
    /// Path of the sample's file (resolved against the sheet's directory).
    pub path: PathBuf,
    /// Format named in the sheet, `None` to detect it.
    pub format: Option<Format>,
    /// The sheet line the sample is listed on (1-based, as in the file).
    pub line: u64,
    /// Every field of the line as written (trimmed), in the header's column order: the
    /// columns besides `sample`, `group`, `path` and `format` may be covariates
    /// ([`SampleSheet::column`]).
    pub fields: Vec<String>,
}

/// A design the sheet describes that runs but is likely not what was meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetWarning {
    /// Stable short code: `single-group`, `group-of-one`, `similar-groups`.
    pub code: &'static str,
    /// What is wrong and what to do, naming the sheet (and line).
    pub message: String,
}

/// A parsed sample sheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSheet {
    /// Samples in sheet order (the column order of site batches).
    pub samples: Vec<SampleEntry>,
    /// Group names: the reference group first, then in order of first appearance.
    groups: Vec<String>,
    /// The header's column names, lower-cased.
    columns: Vec<String>,
    /// The header's line.
    header_line: u64,
    /// Where the sheet was read from.
    path: PathBuf,
}

/// Whether a sample's file is an alignment file (BAM or SAM, piled up by `methvb-bam`) rather
/// than a count table, by its extension.
pub fn is_alignment_file(path: &Path) -> bool {
    has_extension(path, &["bam", "sam"])
}

fn has_extension(path: &Path, any_of: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| any_of.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// Whether `s` is a usable sample or group name.
pub fn is_valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn clean(field: &str) -> &str {
    let f = field.trim();
    f.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(f)
        .trim()
}

impl SampleSheet {
    /// Reads a sample sheet.
    ///
    /// Besides the checks of [`parse`](Self::parse), every sample file must exist: a missing
    /// one is an error at its sheet line that names the sample and the path as resolved (and
    /// the other missing samples), not a bare "No such file" from deep inside a run.
    pub fn from_path(path: &Path) -> Result<Self, ReadError> {
        let text = std::fs::read_to_string(path).map_err(|e| ReadError::new(path, 0, e.into()))?;
        let base = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let sheet = Self::parse(path, &base, &text)?;
        sheet.check_files_exist()?;
        sheet.check_no_cram()?;
        Ok(sheet)
    }

    /// Errors at the line of the first CRAM sample: no reader here decodes CRAM, and read as a
    /// count table it failed with "fits no format".
    fn check_no_cram(&self) -> Result<(), ReadError> {
        let Some(cram) = self
            .samples
            .iter()
            .find(|s| has_extension(&s.path, &["cram"]))
        else {
            return Ok(());
        };
        Err(ReadError::new(
            &self.path,
            cram.line,
            ErrorKind::Sheet(format!(
                "sample {}: {} is CRAM, which methvb does not read; convert it to BAM \
                 (samtools view -b -T genome.fa -o {}.bam {}) and name the BAM here",
                cram.name,
                cram.path.display(),
                cram.name,
                cram.path.display()
            )),
        ))
    }

    /// Errors at the line of the first sample whose file cannot be found.
    fn check_files_exist(&self) -> Result<(), ReadError> {
        let missing: Vec<(&SampleEntry, std::io::Error)> = self
            .samples
            .iter()
            .filter_map(|s| std::fs::metadata(&s.path).err().map(|e| (s, e)))
            .collect();
        let Some((first, e)) = missing.first() else {
            return Ok(());
        };
        let shown = std::path::absolute(&first.path).unwrap_or_else(|_| first.path.clone());
        let mut msg = format!(
            "sample {}: cannot open {}: {e}; fix its path (a relative path is relative to the \
             sheet's folder)",
            first.name,
            shown.display()
        );
        if missing.len() > 1 {
            let others: Vec<String> = missing[1..]
                .iter()
                .map(|(s, _)| format!("{} (line {})", s.name, s.line))
                .collect();
            msg.push_str(&format!("; also missing: {}", others.join(", ")));
        }
        Err(ReadError::new(
            &self.path,
            first.line,
            ErrorKind::Sheet(msg),
        ))
    }

    /// Parses sheet `text`; `path` names it in errors, relative sample paths are joined to
    /// `base`.
    pub fn parse(path: &Path, base: &Path, text: &str) -> Result<Self, ReadError> {
        let err = |line: u64, msg: String| ReadError::new(path, line, ErrorKind::Sheet(msg));
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i as u64 + 1, l.trim_end_matches('\r')))
            .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        let Some((hline, header)) = lines.next() else {
            return Err(err(
                0,
                "empty sample sheet (a header line is required)".into(),
            ));
        };
        let delim = if header.contains('\t') { '\t' } else { ',' };
        if delim == ',' && !header.contains(',') && header.split_whitespace().count() > 1 {
            return Err(err(
                hline,
                format!(
                    "the header looks space-separated ({:?}); separate the columns with tabs \
                     or commas",
                    header.trim()
                ),
            ));
        }
        let cols: Vec<String> = header
            .split(delim)
            .map(|c| clean(c).to_ascii_lowercase())
            .collect();
        let find = |name: &str| -> Result<Option<usize>, ReadError> {
            let mut it = cols.iter().enumerate().filter(|(_, c)| *c == name);
            let first = it.next().map(|(i, _)| i);
            if it.next().is_some() {
                return Err(err(
                    hline,
                    format!("column {name:?} appears twice in the header"),
                ));
            }
            Ok(first)
        };
        let need = |name: &str| -> Result<usize, ReadError> {
            find(name)?.ok_or_else(|| {
                err(
                    hline,
                    format!(
                        "missing column {name:?} (the header must name sample, group and path; \
                         found {}; delimiter {})",
                        cols.join(", "),
                        if delim == '\t' { "tab" } else { "comma" }
                    ),
                )
            })
        };
        let (c_sample, c_group, c_path) = (need("sample")?, need("group")?, need("path")?);
        let c_format = find("format")?;
        let mut samples: Vec<SampleEntry> = Vec::new();
        let mut groups: Vec<String> = Vec::new();
        for (lineno, line) in lines {
            let fields: Vec<&str> = line.split(delim).map(clean).collect();
            if fields.len() != cols.len() {
                let hint = if fields.len() < cols.len() && line.trim().contains(' ') {
                    format!(
                        " (the line looks space-separated; separate its fields with {}, as the \
                         header does)",
                        if delim == '\t' { "tabs" } else { "commas" }
                    )
                } else {
                    String::new()
                };
                return Err(err(
                    lineno,
                    format!(
                        "{} fields, the header has {}{hint}",
                        fields.len(),
                        cols.len()
                    ),
                ));
            }
            for (k, name) in [(c_sample, "sample"), (c_group, "group"), (c_path, "path")] {
                if fields[k].is_empty() {
                    return Err(err(lineno, format!("empty {name} field")));
                }
            }
            let name = fields[c_sample];
            let group = fields[c_group];
            for (what, v) in [("sample", name), ("group", group)] {
                if !is_valid_name(v) {
                    return Err(err(
                        lineno,
                        format!(
                            "{what} name {v:?} may only use letters, digits, '_', '.' and '-' \
                             (it becomes a column name)"
                        ),
                    ));
                }
            }
            if samples.iter().any(|s| s.name == name) {
                return Err(err(lineno, format!("duplicate sample name {name:?}")));
            }
            let format = match c_format.map(|k| fields[k]) {
                None | Some("") => None,
                Some(f) => Some(Format::from_name(f).ok_or_else(|| {
                    let known: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
                    err(
                        lineno,
                        format!("unknown format {f:?} (known: {})", known.join(", ")),
                    )
                })?),
            };
            let p = Path::new(fields[c_path]);
            let path = if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            };
            if !groups.iter().any(|g| g == group) {
                groups.push(group.to_string());
            }
            samples.push(SampleEntry {
                name: name.to_string(),
                group: group.to_string(),
                path,
                format,
                line: lineno,
                fields: fields.iter().map(|f| f.to_string()).collect(),
            });
        }
        if samples.is_empty() {
            return Err(err(0, "no sample listed".into()));
        }
        Ok(Self {
            samples,
            groups,
            columns: cols,
            header_line: hline,
            path: path.to_path_buf(),
        })
    }

    /// The value of column `name` (case-insensitive) for every sample, in sheet order. A
    /// column the header does not name is an error at the header line listing the columns;
    /// `sample`, `group` and `path` are not covariates and are refused the same way.
    pub fn column(&self, name: &str) -> Result<Vec<&str>, ReadError> {
        let wanted = name.to_ascii_lowercase();
        let reserved = ["sample", "group", "path", "format"];
        let k = self
            .columns
            .iter()
            .position(|c| *c == wanted)
            .filter(|_| !reserved.contains(&wanted.as_str()));
        let Some(k) = k else {
            let usable: Vec<&str> = self
                .columns
                .iter()
                .map(String::as_str)
                .filter(|c| !reserved.contains(c))
                .collect();
            return Err(self.error(
                self.header_line,
                format!(
                    "no column {name:?} for the design (the sheet's other columns: {}); add it \
                     to the header or name another column",
                    if usable.is_empty() {
                        "none".to_string()
                    } else {
                        usable.join(", ")
                    }
                ),
            ));
        };
        Ok(self.samples.iter().map(|s| s.fields[k].as_str()).collect())
    }

    /// An error about this sheet at `line` (as in the file; 0 for the sheet as a whole).
    pub fn error(&self, line: u64, message: String) -> ReadError {
        ReadError::new(&self.path, line, ErrorKind::Sheet(message))
    }

    /// Sets the reference group (moved first in [`groups`](Self::groups)); `None` keeps the
    /// default, the group of the first sample. An unknown group is an error.
    pub fn with_reference(mut self, group: Option<&str>) -> Result<Self, ReadError> {
        if let Some(g) = group {
            let Some(k) = self.groups.iter().position(|x| x == g) else {
                return Err(ReadError::new(
                    &self.path,
                    0,
                    ErrorKind::Sheet(format!(
                        "reference group {g:?} is not in the sheet (groups: {})",
                        self.groups.join(", ")
                    )),
                ));
            };
            let name = self.groups.remove(k);
            self.groups.insert(0, name);
        }
        Ok(self)
    }

    /// Group names, the reference group first.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// Number of groups.
    pub fn n_groups(&self) -> usize {
        self.groups.len()
    }

    /// Samples per group, in [`groups`](Self::groups) order.
    pub fn group_sizes(&self) -> Vec<(&str, usize)> {
        self.groups
            .iter()
            .map(|g| {
                (
                    g.as_str(),
                    self.samples.iter().filter(|s| &s.group == g).count(),
                )
            })
            .collect()
    }

    /// Errors when a group has fewer than `min` samples: with `--min-samples-per-group min`
    /// every site would then be dropped.
    pub fn check_samples_per_group(&self, min: usize) -> Result<(), ReadError> {
        let Some((group, n)) = self.group_sizes().into_iter().find(|&(_, n)| n < min) else {
            return Ok(());
        };
        Err(ReadError::new(
            &self.path,
            0,
            ErrorKind::Sheet(format!(
                "group {group} has {n} sample{}, fewer than --min-samples-per-group {min}: every \
                 site would be dropped; lower --min-samples-per-group or add samples to {group}",
                if n == 1 { "" } else { "s" }
            )),
        ))
    }

    /// Designs that run but are likely not what was meant, each with what to do.
    pub fn design_warnings(&self) -> Vec<SheetWarning> {
        let sheet = self.path.display();
        let mut out = Vec::new();
        let sizes = self.group_sizes();
        if let [(group, _)] = sizes.as_slice() {
            out.push(SheetWarning {
                code: "single-group",
                message: format!(
                    "{sheet}: a single group ({group}): run estimates its methylation but tests \
                     no difference, so no region is called; to compare groups, add the samples \
                     of another group to the sheet"
                ),
            });
        }
        let singles: Vec<&str> = sizes.iter().filter(|g| g.1 == 1).map(|g| g.0).collect();
        if !singles.is_empty() {
            let which = if singles.len() == sizes.len() && sizes.len() > 1 {
                "every group has a single sample".to_string()
            } else {
                format!(
                    "group{} {} {} a single sample",
                    if singles.len() == 1 { "" } else { "s" },
                    singles.join(", "),
                    if singles.len() == 1 { "has" } else { "have" }
                )
            };
            out.push(SheetWarning {
                code: "group-of-one",
                message: format!(
                    "{sheet}: {which}: the between-sample dispersion cannot be learned from the \
                     data and rests on the prior alone, so intervals are wide and calls few; add \
                     biological replicates"
                ),
            });
        }
        // Case and punctuation differences are typos far more often than distinct groups.
        let key = |g: &str| -> String {
            g.chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .map(|c| c.to_ascii_lowercase())
                .collect()
        };
        let first_line = |g: &str| {
            self.samples
                .iter()
                .find(|s| s.group == g)
                .map_or(0, |s| s.line)
        };
        for (i, b) in self.groups.iter().enumerate() {
            if let Some(a) = self.groups[..i].iter().find(|a| key(a) == key(b)) {
                let (la, lb) = (first_line(a), first_line(b));
                let (first, second, l2) = if la <= lb { (a, b, lb) } else { (b, a, la) };
                out.push(SheetWarning {
                    code: "similar-groups",
                    message: format!(
                        "{sheet}:{l2}: group {second} differs from group {first} (line {}) only \
                         in case or punctuation, so they are two groups; if it is a typo, spell \
                         both the same",
                        la.min(lb)
                    ),
                });
            }
        }
        out
    }

    /// Index in [`groups`](Self::groups) of sample `sample_idx`'s group.
    ///
    /// # Panics
    /// If `sample_idx` is out of range.
    pub fn group_index(&self, sample_idx: usize) -> usize {
        let g = &self.samples[sample_idx].group;
        // Every sample's group was registered while parsing.
        self.groups.iter().position(|x| x == g).unwrap_or(0)
    }

    /// Group index of every sample, in sample order (for [`crate::regions::RegionBuilder`]).
    pub fn group_of_samples(&self) -> Vec<usize> {
        (0..self.samples.len())
            .map(|i| self.group_index(i))
            .collect()
    }

    /// Sample names in sheet order.
    pub fn sample_names(&self) -> Vec<String> {
        self.samples.iter().map(|s| s.name.clone()).collect()
    }

    /// The sheet's own path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens every sample's file with `opts` (a format named in the sheet overrides
    /// `opts.format`). A sample whose file yields no site at all is an [`ErrorKind::NoSites`]
    /// error when its stream ends ([`SampleReader`]).
    pub fn open_sources(
        &self,
        opts: &ReaderOptions,
    ) -> Result<Vec<Box<dyn SiteSource + Send>>, ReadError> {
        self.open_sources_excluding(opts, &[])
    }

    /// Like [`open_sources`](Self::open_sources), dropping the sites of the contigs named in
    /// `exclude` ([`ContigFilter`], `--exclude-contigs`).
    pub fn open_sources_excluding(
        &self,
        opts: &ReaderOptions,
        exclude: &[String],
    ) -> Result<Vec<Box<dyn SiteSource + Send>>, ReadError> {
        self.samples
            .iter()
            .map(|s| {
                let mut o = opts.clone();
                if s.format.is_some() {
                    o.format = s.format;
                }
                let reader = SampleReader::open(&s.path, &o)?;
                let source: Box<dyn SiteSource + Send> = if exclude.is_empty() {
                    Box::new(reader)
                } else {
                    Box::new(ContigFilter::new(reader, exclude))
                };
                Ok(source)
            })
            .collect()
    }

    /// Opens every sample and starts the merge, with the sheet's sample names and groups.
    pub fn merger(
        &self,
        opts: &ReaderOptions,
        order: ContigOrder,
    ) -> Result<SiteMerger, ReadError> {
        self.merger_excluding(opts, order, &[])
    }

    /// Like [`merger`](Self::merger), dropping the sites of the contigs named in `exclude`
    /// (`--exclude-contigs`) before they reach the merge.
    pub fn merger_excluding(
        &self,
        opts: &ReaderOptions,
        order: ContigOrder,
        exclude: &[String],
    ) -> Result<SiteMerger, ReadError> {
        let sources = self.open_sources_excluding(opts, exclude)?;
        let groups = self.samples.iter().map(|s| s.group.clone()).collect();
        Ok(SiteMerger::new(sources, order)?.with_samples(self.sample_names(), groups))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SampleSheet, ReadError> {
        SampleSheet::parse(Path::new("dir/sheet.tsv"), Path::new("dir"), text)
    }

    #[test]
    fn tsv_any_column_order_relative_paths() {
        let s = parse(
            "# comment\n\npath\tsample\tformat\tgroup\nc1.txt\tC1\tdss\tctrl\n/abs/n1.txt\tN1\t\ttum\n\n# x\nc2.txt\tC2\tDSS\tctrl\n",
        )
        .unwrap();
        assert_eq!(s.samples.len(), 3);
        assert_eq!(s.samples[0].name, "C1");
        assert_eq!(s.samples[0].path, Path::new("dir/c1.txt"));
        assert_eq!(s.samples[0].format, Some(Format::Dss));
        assert_eq!(s.samples[1].path, Path::new("/abs/n1.txt"));
        assert_eq!(s.samples[1].format, None);
        assert_eq!(s.groups(), ["ctrl", "tum"]);
        assert_eq!(s.group_of_samples(), [0, 1, 0]);
        let s = s.with_reference(Some("tum")).unwrap();
        assert_eq!(s.groups(), ["tum", "ctrl"]);
        assert_eq!(s.group_of_samples(), [1, 0, 1]);
        assert_eq!(s.n_groups(), 2);
        let e = s.with_reference(Some("nope")).unwrap_err();
        assert!(
            e.to_string()
                .contains("reference group \"nope\" is not in the sheet"),
            "{e}"
        );
    }

    #[test]
    fn csv_with_quotes() {
        let s = parse("sample,group,path\n\"A.1\", g ,a.bed\nB-2,h,sub/b.bed\n").unwrap();
        assert_eq!(s.sample_names(), ["A.1", "B-2"]);
        assert_eq!(s.samples[0].group, "g");
        assert_eq!(s.samples[1].path, Path::new("dir/sub/b.bed"));
        assert_eq!(s.samples[1].format, None);
    }

    #[test]
    fn from_path_resolves_against_sheet_dir() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.csv");
        std::fs::write(&p, "sample,group,path\nA,g,x.txt\n").unwrap();
        std::fs::write(dir.path().join("x.txt"), "").unwrap();
        let s = SampleSheet::from_path(&p).unwrap();
        assert_eq!(s.samples[0].path, dir.path().join("x.txt"));
    }

    #[test]
    fn errors_name_line_and_reason() {
        for (text, want) in [
            (
                "sample\tpath\nA\tx\n",
                "dir/sheet.tsv:1: sample sheet: missing column \"group\"",
            ),
            (
                "sample,group,path\nA,g,x\nA,h,y\n",
                "dir/sheet.tsv:3: sample sheet: duplicate sample name \"A\"",
            ),
            (
                "sample,group,path\nA,,x\n",
                "dir/sheet.tsv:2: sample sheet: empty group field",
            ),
            (
                "sample,group,path,format\nA,g,x,vcf\n",
                "dir/sheet.tsv:2: sample sheet: unknown format \"vcf\"",
            ),
            (
                "sample,group,path\nA B,g,x\n",
                "dir/sheet.tsv:2: sample sheet: sample name \"A B\" may only use",
            ),
            (
                "sample,group,path\nA,g/1,x\n",
                "dir/sheet.tsv:2: sample sheet: group name \"g/1\"",
            ),
            (
                "sample,group,path\nA,g\n",
                "dir/sheet.tsv:2: sample sheet: 2 fields, the header has 3",
            ),
            (
                "sample,group,path,group\nA,g,x,y\n",
                "dir/sheet.tsv:1: sample sheet: column \"group\" appears twice",
            ),
            (
                "# only\n",
                "dir/sheet.tsv: sample sheet: empty sample sheet",
            ),
            (
                "sample,group,path\n",
                "dir/sheet.tsv: sample sheet: no sample listed",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(matches!(e.kind, ErrorKind::Sheet(_)));
            assert!(e.to_string().starts_with(want), "got {e}\nwant {want}");
        }
    }

    /// Regression (#18): a space-separated sheet said 'missing column "sample" (... delimiter
    /// comma)', which sent users looking for a column they had written.
    #[test]
    fn space_separated_sheet_is_named_as_such() {
        let e = parse("# made by hand\nsample group path\nA g a.txt\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "dir/sheet.tsv:2: sample sheet: the header looks space-separated (\"sample group \
             path\"); separate the columns with tabs or commas"
        );
        let e = parse("sample\tgroup\tpath\nA g a.txt\n").unwrap_err();
        assert!(
            e.to_string().starts_with(
                "dir/sheet.tsv:2: sample sheet: 1 fields, the header has 3 (the line looks \
                 space-separated; separate its fields with tabs"
            ),
            "{e}"
        );
        // A one-column line without spaces gets no such hint.
        let e = parse("sample\tgroup\tpath\nA\n").unwrap_err();
        assert!(!e.to_string().contains("space"), "{e}");
    }

    /// Regression (#18): a path typo gave "opening .../cond2_22.txt: No such file" with neither
    /// the sheet, its line nor the sample.
    #[test]
    fn missing_sample_file_names_sheet_line_sample_and_resolved_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "chr\tpos\tN\tX\nchr1\t5\t3\t1\n").unwrap();
        let p = dir.path().join("s.tsv");
        std::fs::write(
            &p,
            "sample\tgroup\tpath\nA\tx\ta.txt\nB\ty\tsub/b_2.txt\nC\ty\tc.txt\n",
        )
        .unwrap();
        let e = SampleSheet::from_path(&p).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Sheet(_)));
        assert_eq!((e.path.as_path(), e.line), (p.as_path(), 3));
        let msg = e.to_string();
        let resolved = dir.path().join("sub/b_2.txt");
        for part in [
            format!(
                "{}:3: sample sheet: sample B: cannot open {}: ",
                p.display(),
                resolved.display()
            ),
            "fix its path (a relative path is relative to the sheet's folder)".to_string(),
            "also missing: C (line 4)".to_string(),
        ] {
            assert!(msg.contains(&part), "{msg}\nlacks {part}");
        }
    }

    /// A CRAM sample was skipped by `check` and read as a count table by `run` ("fits no
    /// format"); both now stop at its sheet line with the conversion to BAM.
    #[test]
    fn cram_sample_is_an_error_at_its_line_with_the_conversion() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "chr\tpos\tN\tX\nchr1\t5\t3\t1\n").unwrap();
        std::fs::write(dir.path().join("b.CRAM"), b"CRAM\x03\x00").unwrap();
        let p = dir.path().join("s.tsv");
        std::fs::write(&p, "sample\tgroup\tpath\nA\tx\ta.txt\nB\ty\tb.CRAM\n").unwrap();
        let e = SampleSheet::from_path(&p).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Sheet(_)));
        assert_eq!((e.path.as_path(), e.line), (p.as_path(), 3));
        let msg = e.to_string();
        assert!(msg.contains("sample B: "), "{msg}");
        assert!(msg.contains("is CRAM, which methvb does not read; convert it to BAM (samtools view -b -T genome.fa -o B.bam "), "{msg}");
        assert!(is_alignment_file(Path::new("x.BAM")) && is_alignment_file(Path::new("x.sam")));
        assert!(!is_alignment_file(Path::new("x.cram")) && !is_alignment_file(Path::new("x.bed")));
    }

    /// Regression (#18): 1 vs 1 samples, a single group, or a typo `Cond2` next to `cond2` ran
    /// without a word (no call possible; a third group). Each now has a warning saying what is
    /// wrong and what to do.
    #[test]
    fn design_warnings_say_what_is_wrong_and_what_to_do() {
        let warnings = |text: &str| -> Vec<(&'static str, String)> {
            parse(text)
                .unwrap()
                .design_warnings()
                .into_iter()
                .map(|w| (w.code, w.message))
                .collect()
        };
        assert_eq!(
            warnings("sample,group,path\nA,g,a\nB,g,b\nC,h,c\nD,h,d\n"),
            []
        );
        let w = warnings("sample,group,path\nA,g,a\nB,h,b\n");
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].0, "group-of-one");
        assert!(w[0].1.contains("every group has a single sample"), "{w:?}");
        assert!(w[0].1.contains("add biological replicates"), "{w:?}");
        let w = warnings("sample,group,path\nA,ctrl,a\nB,ctrl,b\n");
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].0, "single-group");
        assert!(w[0].1.contains("a single group (ctrl)"), "{w:?}");
        assert!(w[0].1.contains("add the samples of another group"), "{w:?}");
        let w =
            warnings("sample,group,path\nA,cond1,a\nB,cond1,b\nC,cond2,c\nD,Cond2,d\nE,cond2,e\n");
        assert_eq!(w.len(), 2, "{w:?}");
        assert_eq!(w[0].0, "group-of-one");
        assert!(w[0].1.contains("group Cond2 has a single sample"), "{w:?}");
        assert_eq!(w[1].0, "similar-groups");
        assert_eq!(
            w[1].1,
            "dir/sheet.tsv:5: group Cond2 differs from group cond2 (line 4) only in case or \
             punctuation, so they are two groups; if it is a typo, spell both the same"
        );
        let sheet = parse("sample,group,path\nA,g,a\nB,h,b\nC,h,c\n").unwrap();
        assert!(sheet.check_samples_per_group(1).is_ok());
        let e = sheet.check_samples_per_group(2).unwrap_err();
        assert_eq!(
            e.to_string(),
            "dir/sheet.tsv: sample sheet: group g has 1 sample, fewer than \
             --min-samples-per-group 2: every site would be dropped; lower \
             --min-samples-per-group or add samples to g"
        );
    }

    fn merged_rows(mut mg: SiteMerger) -> Result<Vec<(String, u64)>, ReadError> {
        let mut out = Vec::new();
        while let Some(b) = mg.next_batch(7)? {
            let v = crate::batch::SiteBatchView::new(&b).unwrap();
            for r in 0..b.num_rows() {
                out.push((v.chrom(r).to_string(), v.pos[r]));
            }
        }
        Ok(out)
    }

    #[test]
    fn merger_excluding_drops_contigs_before_the_merge() {
        let dir = tempfile::tempdir().unwrap();
        let h = "chr\tpos\tN\tX\n";
        std::fs::write(
            dir.path().join("a.txt"),
            format!("{h}chr1\t5\t3\t1\nlambda\t2\t9\t0\nchr2\t1\t1\t1\n"),
        )
        .unwrap();
        // b names lambda differently and has it first: without exclusion the merge would have
        // to place it; with it, b only contributes chr1.
        std::fs::write(
            dir.path().join("b.txt"),
            format!("{h}pUC19\t1\t4\t4\nchr1\t5\t2\t2\n"),
        )
        .unwrap();
        let p = dir.path().join("s.tsv");
        std::fs::write(&p, "sample\tgroup\tpath\nA\tx\ta.txt\nB\ty\tb.txt\n").unwrap();
        let sheet = SampleSheet::from_path(&p).unwrap();
        let order = || ContigOrder::Learned;
        // Without exclusion, b's pUC19 comes before its chr1 while a has chr1 first: the
        // learned contig order breaks.
        let e = sheet
            .merger(&ReaderOptions::default(), order())
            .and_then(merged_rows)
            .unwrap_err();
        assert!(e.to_string().contains("contig order differs"), "{e}");
        let ex = ["lambda".to_string(), "pUC19".to_string()];
        let mg = sheet
            .merger_excluding(&ReaderOptions::default(), order(), &ex)
            .unwrap();
        assert_eq!(
            merged_rows(mg).unwrap(),
            [("chr1".to_string(), 4), ("chr2".to_string(), 0)]
        );
        // A fixed order without the spike-ins is fine once they are excluded.
        let fai = dir.path().join("g.fai");
        std::fs::write(&fai, "chr1\t10\nchr2\t10\n").unwrap();
        let fixed = || ContigOrder::from_path(&fai).unwrap();
        let e = sheet
            .merger(&ReaderOptions::default(), fixed())
            .and_then(merged_rows)
            .unwrap_err();
        assert!(e.to_string().contains("is not in"), "{e}");
        let mg = sheet
            .merger_excluding(&ReaderOptions::default(), fixed(), &ex)
            .unwrap();
        assert_eq!(merged_rows(mg).unwrap().len(), 2);
    }

    /// Regression (bad-input corpus `empty.bed`, `header_only.dss.txt`): an empty sample file
    /// used to become an all-missing sample without a word.
    #[test]
    fn empty_sample_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "chr\tpos\tN\tX\nchr1\t5\t3\t1\n").unwrap();
        std::fs::write(dir.path().join("b.txt"), "chr\tpos\tN\tX\n").unwrap();
        std::fs::write(
            dir.path().join("c.txt"),
            "chr\tpos\tN\tX\nlambda\t5\t3\t1\n",
        )
        .unwrap();
        let p = dir.path().join("s.tsv");
        std::fs::write(&p, "sample\tgroup\tpath\nA\tx\ta.txt\nB\ty\tb.txt\n").unwrap();
        let sheet = SampleSheet::from_path(&p).unwrap();
        let e = sheet
            .merger(&ReaderOptions::default(), ContigOrder::Learned)
            .and_then(merged_rows)
            .unwrap_err();
        assert!(matches!(e.kind, ErrorKind::NoSites(_)), "{e}");
        assert_eq!(e.path, dir.path().join("b.txt"));
        // Every site excluded: said so.
        std::fs::write(&p, "sample\tgroup\tpath\nA\tx\ta.txt\nC\ty\tc.txt\n").unwrap();
        let sheet = SampleSheet::from_path(&p).unwrap();
        let e = sheet
            .merger_excluding(
                &ReaderOptions::default(),
                ContigOrder::Learned,
                &["lambda".into()],
            )
            .and_then(merged_rows)
            .unwrap_err();
        assert!(e.to_string().contains("--exclude-contigs"), "{e}");
    }
}
