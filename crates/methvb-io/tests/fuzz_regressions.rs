//! Inputs found by the fuzz targets (`fuzz/fuzz_targets/`), replayed through the same harness
//! code so that they stay fixed. Each test is named after its finding; each input is the exact
//! byte string the fuzzer reported (first byte: the target's selector byte).

use std::io::Cursor;
use std::path::Path;

use methvb_io::SiteSource;
use methvb_io::format::{Format, LineParser, Parsed, trim_eol};
use methvb_io::regions::BedRegions;
use methvb_io::sample::{ReaderOptions, SampleReader};
use methvb_io::sheet::SampleSheet;

/// The `line_parsers` target.
fn line_parsers(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let format = Format::ALL[usize::from(sel) % Format::ALL.len()];
    let mod_code = if sel & 0x10 != 0 { "h" } else { "m" };
    let mut p = LineParser::new(format, mod_code, sel & 0x20 != 0);
    for line in rest.split(|&b| b == b'\n') {
        if let Ok(Parsed::Site(r)) = p.parse(trim_eol(line)) {
            assert!(r.methylated <= r.coverage, "m > n from {line:?}");
            assert!(!r.chrom.is_empty(), "empty chrom from {line:?}");
        }
    }
    let lines: Vec<&[u8]> = rest.split(|&b| b == b'\n').take(4).collect();
    let _ = Format::detect(&lines);
}

/// The `sample_reader` target; returns the number of sites read before the end or an error.
fn sample_reader(data: &[u8]) -> usize {
    let Some((&sel, rest)) = data.split_first() else {
        return 0;
    };
    let format = match sel % 5 {
        0 => None,
        k => Some(Format::ALL[usize::from(k) - 1]),
    };
    let merge = sel & 0x08 == 0;
    let opts = ReaderOptions {
        format,
        merge_strands: merge,
        any_mod: sel & 0x10 != 0,
        ..ReaderOptions::default()
    };
    let Ok(mut r) = SampleReader::from_reader(
        Path::new("fuzz.txt"),
        Box::new(Cursor::new(rest.to_vec())),
        &opts,
    ) else {
        return 0;
    };
    let mut n = 0;
    let mut last: Option<(usize, u64)> = None;
    while let Ok(Some(s)) = r.next_site() {
        assert!(s.methylated <= s.coverage);
        if let Some((c, p)) = last
            && c == s.contig
        {
            assert!(if merge { s.pos > p } else { s.pos >= p });
        }
        last = Some((s.contig, s.pos));
        n += 1;
    }
    n
}

/// The `sample_sheet` target.
fn sample_sheet(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(sheet) = SampleSheet::parse(Path::new("fuzz.tsv"), Path::new("base"), &text) {
        for i in 0..sheet.samples.len() {
            assert_eq!(sheet.groups()[sheet.group_index(i)], sheet.samples[i].group);
        }
    }
}

/// The `bed_regions` target.
fn bed_regions(data: &[u8]) {
    if let Ok(r) = BedRegions::from_reader(Path::new("fuzz.bed"), Cursor::new(data)) {
        assert_eq!(r.contigs().map(|(_, n)| n).sum::<usize>(), r.len());
    }
}

/// The harnesses themselves run on the corpus seeds without tripping.
#[test]
fn harnesses_accept_good_inputs() {
    let dss = b"\x04chr\tpos\tN\tX\nchr1\t5\t10\t3\nchr1\t9\t4\t4\n";
    assert_eq!(sample_reader(dss), 2);
    line_parsers(dss);
    sample_sheet(b"sample\tgroup\tpath\nA\tg\ta.txt\n");
    bed_regions(b"chr1\t0\t10\tr1\n");
}

/// Found by `line_parsers` (and `sample_reader`) within seconds once the dictionary held
/// `18446744073709551615`: format detection computed `start + 1` on a start of `u64::MAX`, an
/// overflow panic in debug builds and a wrong answer (wrap to 0) in release builds.
#[test]
fn detect_start_u64_max_overflow() {
    // crash-ab1e209927fd7f621fad785be7d787ac378c2c54 (line_parsers)
    line_parsers(b"hc\x0918446744073709551615\x090\x09\x090\x09101\x092[55[55A,10rask tck\x096\x090\x090\x09100\x09101\x09");
    // crash-16d3e73336901983e004548abfb1e68b35cd73e9 (sample_reader)
    assert_eq!(sample_reader(b"_)s\x02\x00r0R\x09018446744073709551615\x091\x09\x14\x14\x14\x14\x14\x14\x1c\x14\x14\x14\x14\x14\x14\x14\x7f\x7f\x7f\x7f\x7fc\x092\x096oc\x091\x096o\xfer2\x0952otZ{2chr1\xdf\xff]]\x00\x00\x00\x09\xfer7772\x0952ot{\x0a2\x0952otZ{\x8e\x8e\x8e77777777777772\x0952ot{\x0ah"), 0);
    // The three detection rules, one each: 11+ columns (bedMethyl), 4 (DSS), 6 (.cov).
    let max = "18446744073709551615";
    let bed = format!("c\t{max}\t0\tm\t1\t+\t0\t1\t0\t1\t100");
    assert_eq!(Format::detect(&[bed.as_bytes()]), None);
    let dss = format!("c\t{max}\t0\t0");
    assert_eq!(Format::detect(&[dss.as_bytes()]), Some(Format::Dss));
    let cov = format!("c\t{max}\t0\t50\t1\t1");
    assert_eq!(Format::detect(&[cov.as_bytes()]), None);
}
