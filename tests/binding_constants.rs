//! The constants the Python package (bindings/python/innfer/sampler.py) and the Fortran module
//! (bindings/fortran/innfer.f90) spell out by hand are exactly the header's integer `#define`s:
//! same names, same values, none missing. The Fortran module mirrors every one of them; the
//! Python package every status, every layout and the ABI version, and a constant the header
//! gains must be added to one of its lists below. (The C++ binding uses the header's macros
//! directly.)

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

/// The header's integer constants, `INNFER_` dropped: `STATUS_OK -> 0`, `ARENA_ALIGN -> 64`,
/// ...
/// `INNFER_HAS_STD` is left out: a switch the build sets (hosted or bare-metal), not a value.
fn header() -> BTreeMap<String, i64> {
    let mut header = constants(&read("include/innfer.h"), "#define INNFER_", " ");
    header.remove("HAS_STD");
    for name in [
        "STATUS_OK",
        "STATUS_OUT_OF_MEMORY",
        "LAYOUT_CINN",
        "ABI_VERSION",
        "ARENA_ALIGN",
    ] {
        assert!(
            header.contains_key(name),
            "the header's constants: {header:?}"
        );
    }
    header
}

fn only<'a>(
    all: &'a BTreeMap<String, i64>,
    keep: impl Fn(&str) -> bool + 'a,
) -> BTreeMap<String, i64> {
    all.iter()
        .filter(|(k, _)| keep(k))
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

#[test]
fn the_fortran_module_has_every_constant_of_the_header() {
    let mut fortran = constants(
        &read("bindings/fortran/innfer.f90"),
        "parameter :: INNFER_",
        "=",
    );
    // Fortran names are case-insensitive, so the macro INNFER_ABI_VERSION would clash with the
    // function innfer_abi_version(): the module calls it INNFER_HEADER_ABI_VERSION.
    let abi = fortran
        .remove("HEADER_ABI_VERSION")
        .expect("innfer.f90: INNFER_HEADER_ABI_VERSION");
    fortran.insert("ABI_VERSION".into(), abi);
    assert_eq!(fortran, header(), "bindings/fortran/innfer.f90 INNFER_*");
}

#[test]
fn the_python_package_has_every_status_layout_and_the_abi_version() {
    let header = header();
    let python_text = read("bindings/python/innfer/sampler.py");

    let start = python_text
        .find("STATUS = {")
        .expect("sampler.py: STATUS = {");
    let block = &python_text[start..start + python_text[start..].find('}').unwrap()];
    let statuses = constants(block, "    \"", ":");
    assert_eq!(
        statuses,
        only(&header, |k| k.starts_with("STATUS_"))
            .into_iter()
            .map(|(k, v)| (k["STATUS_".len()..].to_string(), v))
            .collect(),
        "bindings/python/innfer/sampler.py STATUS"
    );

    // `LAYOUT_NONE, LAYOUT_INN, LAYOUT_CINN = 0, 1, 2`
    let line = python_text
        .lines()
        .find(|l| l.starts_with("LAYOUT_NONE, "))
        .expect("sampler.py: LAYOUT_NONE, ... = ...");
    let (names, values) = line.split_once(" = ").unwrap();
    let layouts: BTreeMap<String, i64> = names
        .split(", ")
        .zip(values.split(", "))
        .map(|(n, v)| (n.to_string(), v.parse().unwrap()))
        .collect();
    assert_eq!(
        layouts,
        only(&header, |k| k.starts_with("LAYOUT_")),
        "bindings/python/innfer/sampler.py LAYOUT_*"
    );

    let python_abi = python_text
        .lines()
        .find_map(|l| l.strip_prefix("ABI_VERSION = "))
        .expect("sampler.py: ABI_VERSION = ...");
    assert_eq!(
        python_abi.trim().parse::<i64>().ok(),
        header.get("ABI_VERSION").copied(),
        "bindings/python/innfer/sampler.py ABI_VERSION"
    );

    // What the package does not mirror, by decision: the version is read from the library
    // (innfer_version_string()), and it allocates no session memory of its own.
    let not_mirrored = [
        "VERSION_MAJOR",
        "VERSION_MINOR",
        "VERSION_PATCH",
        "ARENA_ALIGN",
        // Load options (weight storage) and standardisation queries are not wrapped: the
        // package loads f32 weights and reports dims only.
        "WEIGHT_STORAGE_F32",
        "WEIGHT_STORAGE_BF16",
        "WEIGHT_STORAGE_F16",
        "VARIABLE_X",
        "VARIABLE_Y",
    ];
    let unaccounted: Vec<&String> = header
        .keys()
        .filter(|k| {
            !k.starts_with("STATUS_")
                && !k.starts_with("LAYOUT_")
                && *k != "ABI_VERSION"
                && !not_mirrored.contains(&k.as_str())
        })
        .collect();
    assert!(
        unaccounted.is_empty(),
        "header constants the Python package neither mirrors nor lists as not mirrored: \
         {unaccounted:?}"
    );
}
