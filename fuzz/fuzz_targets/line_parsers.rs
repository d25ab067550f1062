//! Every format's line parser on arbitrary lines: no panic, and every site it returns keeps
//! `m <= n`. The first byte picks the format and `any_mod`; the rest is split into lines that
//! go through one parser in turn (the parser keeps state between lines: bedMethyl layout,
//! Bismark `.cov` convention).
#![no_main]

use libfuzzer_sys::fuzz_target;
use methvb_io::format::{Format, LineParser, Parsed, trim_eol};

fuzz_target!(|data: &[u8]| {
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
});
