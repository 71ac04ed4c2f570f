//! The status codes the Python package (bindings/python/innfer/sampler.py) and the Fortran
//! module (bindings/fortran/innfer.f90) spell out by hand are exactly the header's
//! `INNFER_STATUS_*` defines: same names, same values, none missing.

use std::collections::BTreeMap;
use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `NAME -> value` of every line holding `prefix NAME <sep> value`, NAME without the prefix.
fn constants(text: &str, prefix: &str, sep: &str) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(at) = line.find(prefix) else {
            continue;
        };
        let rest = &line[at + prefix.len()..];
        let Some((name, value)) = rest.split_once(sep) else {
            continue;
        };
        let name = name.trim().trim_matches('"');
        let value = value.trim().trim_end_matches(',');
        if let (false, Ok(v)) = (name.is_empty(), value.parse()) {
            out.insert(name.to_string(), v);
        }
    }
    out
}

#[test]
fn python_and_fortran_status_codes_are_the_headers() {
    let header = constants(&read("include/innfer.h"), "#define INNFER_STATUS_", " ");
    assert!(header.len() >= 16, "the header's statuses: {header:?}");
    let python_text = read("bindings/python/innfer/sampler.py");
    let start = python_text
        .find("STATUS = {")
        .expect("sampler.py: STATUS = {");
    let block = &python_text[start..start + python_text[start..].find('}').unwrap()];
    let python = constants(block, "    \"", ":");
    assert_eq!(python, header, "bindings/python/innfer/sampler.py STATUS");
    let fortran = constants(
        &read("bindings/fortran/innfer.f90"),
        "parameter :: INNFER_STATUS_",
        "=",
    );
    assert_eq!(
        fortran, header,
        "bindings/fortran/innfer.f90 INNFER_STATUS_*"
    );
}
