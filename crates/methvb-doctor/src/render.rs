//! [`CheckReport::render`]: the report as text for a terminal, one function per section.

use std::fmt::Write;

use crate::CheckReport;

/// Contigs listed in the contig section; the rest are counted.
const SHOWN: usize = 40;

impl CheckReport {
    /// The report as text for a terminal.
    pub fn render(&self) -> String {
        // Writing to a String cannot fail: the `fmt::Result`s are dropped.
        let mut o = String::new();
        let _ = writeln!(
            o,
            "methvb check: {} ({} samples, {} groups){}",
            self.sheet,
            self.samples.len(),
            self.groups.len(),
            if self.complete {
                ""
            } else {
                "; only the head of some files was read"
            }
        );
        self.render_samples(&mut o);
        self.render_cpg(&mut o);
        self.render_groups(&mut o);
        self.render_contigs(&mut o);
        self.render_files(&mut o);
        self.render_issues(&mut o);
        o
    }

    /// One line per sample: format, sites, coverage summary, file.
    fn render_samples(&self, o: &mut String) {
        if self.samples.is_empty() {
            return;
        }
        let _ = writeln!(o, "\nSamples");
        let _ = writeln!(
            o,
            "  {:<16} {:<12} {:<12} {:<8} {:>12} {:>9} {:>7} {:>7} {:>6} {:>7}  file",
            "sample",
            "group",
            "format",
            "layout",
            "sites",
            "mean n",
            "median",
            "n>=10",
            "meth",
            "contigs"
        );
        for s in &self.samples {
            let _ = writeln!(
                o,
                "  {:<16} {:<12} {:<12} {:<8} {:>12} {:>9.2} {:>7} {:>6.1}% {:>6.3} {:>7}  {}{}",
                s.name,
                s.group,
                s.format.as_deref().unwrap_or("?"),
                s.layout.as_deref().unwrap_or("-"),
                s.sites,
                s.mean_coverage,
                s.median_coverage,
                100.0 * s.frac_coverage_ge_10,
                s.mean_methylation,
                s.contigs.len(),
                s.path,
                if s.complete { "" } else { " (head only)" }
            );
        }
    }

    /// With a reference FASTA: the share of each sample's sites on a CpG, as read and shifted.
    fn render_cpg(&self, o: &mut String) {
        if !self.samples.iter().any(|s| s.cpg_fraction.is_some()) {
            return;
        }
        let _ = writeln!(
            o,
            "\nPositions on a CpG of the reference (as read; shifted by -1 / +1)"
        );
        for s in &self.samples {
            if let Some(([lo, mid, hi], n)) = s.cpg_fraction {
                let _ = writeln!(
                    o,
                    "  {:<16} {:>6.1}%  ({:.1}% / {:.1}%) of {n} sites",
                    s.name,
                    100.0 * mid,
                    100.0 * lo,
                    100.0 * hi
                );
            }
        }
    }

    /// One line per group, the reference marked.
    fn render_groups(&self, o: &mut String) {
        if self.groups.is_empty() {
            return;
        }
        let _ = writeln!(o, "\nGroups");
        for g in &self.groups {
            let _ = writeln!(
                o,
                "  {:<16} {} sample{}{}",
                g.name,
                g.samples,
                if g.samples == 1 { "" } else { "s" },
                if g.reference { " (reference)" } else { "" }
            );
        }
    }

    /// The first [`SHOWN`] contigs: samples having each, sites, regions, reference.
    fn render_contigs(&self, o: &mut String) {
        if self.contigs.is_empty() {
            return;
        }
        let n = self.samples.len();
        let _ = writeln!(o, "\nContigs (samples having it of {n})");
        for c in self.contigs.iter().take(SHOWN) {
            let mut line = format!(
                "  {:<24} {:>3}/{n} samples {:>12} sites",
                c.name,
                c.samples.len(),
                c.sites
            );
            if let Some(r) = c.regions {
                let _ = write!(line, " {r:>8} regions");
            }
            match c.in_reference {
                Some(true) => line.push_str("  in reference"),
                Some(false) => line.push_str("  NOT in reference"),
                None => {}
            }
            let _ = writeln!(o, "{line}");
        }
        if self.contigs.len() > SHOWN {
            let _ = writeln!(o, "  ... {} more", self.contigs.len() - SHOWN);
        }
    }

    /// The regions file, the reference index and the excluded contigs.
    fn render_files(&self, o: &mut String) {
        if let Some((p, n)) = &self.regions {
            let _ = writeln!(o, "\nRegions: {n} in {p}");
        }
        if let Some((p, n)) = &self.reference {
            let _ = writeln!(o, "Reference: {n} contigs in {p}");
        }
        if !self.excluded_contigs.is_empty() {
            let _ = writeln!(o, "Excluded contigs: {}", self.excluded_contigs.join(","));
        }
    }

    /// The findings, errors first, and the verdict.
    fn render_issues(&self, o: &mut String) {
        let _ = writeln!(o);
        for i in &self.issues {
            let _ = writeln!(o, "{}: {}", i.severity.name(), i.message);
        }
        let _ = writeln!(
            o,
            "{}: {} error{}, {} warning{}",
            if self.n_errors() > 0 { "FAILED" } else { "OK" },
            self.n_errors(),
            if self.n_errors() == 1 { "" } else { "s" },
            self.n_warnings(),
            if self.n_warnings() == 1 { "" } else { "s" },
        );
    }
}
