//! The whole `SampleReader` (preamble, detection, order checks, strand merging) on arbitrary
//! bytes. The first byte picks the format (or detection) and strand merging. Checked on every
//! site: `m <= n`, contig ids handed out in order, positions increasing within a contig (strictly
//! when strands are merged), line numbers never going back.
#![no_main]

use std::io::Cursor;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use methvb_io::SiteSource;
use methvb_io::format::Format;
use methvb_io::sample::{ReaderOptions, SampleReader};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
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
        return;
    };
    let mut last: Option<(usize, u64)> = None;
    let mut last_line = 0;
    let mut max_contig = None;
    loop {
        match r.next_site() {
            Ok(Some(s)) => {
                assert!(s.methylated <= s.coverage);
                assert!(s.line >= last_line || !merge, "line numbers go back");
                last_line = s.line;
                match max_contig {
                    None => assert_eq!(s.contig, 0),
                    Some(m) => assert!(s.contig == m || s.contig == m + 1, "contig ids skip"),
                }
                max_contig = Some(s.contig);
                if let Some((c, p)) = last
                    && c == s.contig
                {
                    if merge {
                        assert!(
                            s.pos > p,
                            "merged positions not increasing: {p} then {}",
                            s.pos
                        );
                    } else {
                        assert!(s.pos >= p, "positions go back: {p} then {}", s.pos);
                    }
                }
                last = Some((s.contig, s.pos));
                assert!(!r.contig_name(s.contig).is_empty());
            }
            Ok(None) => break,
            Err(e) => {
                // Every error names the file.
                assert!(e.to_string().starts_with("fuzz.txt"), "{e}");
                break;
            }
        }
    }
});
