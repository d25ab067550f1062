//! The sample-sheet parser on arbitrary text: no panic; a parsed sheet has unique, valid sample
//! names and every sample's group among the groups.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use methvb_io::sheet::{SampleSheet, is_valid_name};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(sheet) = SampleSheet::parse(Path::new("fuzz.tsv"), Path::new("base"), &text) else {
        return;
    };
    assert!(!sheet.samples.is_empty());
    for (i, s) in sheet.samples.iter().enumerate() {
        assert!(is_valid_name(&s.name) && is_valid_name(&s.group));
        assert!(sheet.samples[..i].iter().all(|t| t.name != s.name));
        assert_eq!(sheet.groups()[sheet.group_index(i)], s.group);
    }
    if let Some(g) = sheet.groups().last().cloned() {
        let r = sheet
            .with_reference(Some(&g))
            .expect("a group of the sheet");
        assert_eq!(r.groups()[0], g);
    }
});
