//! Any bytes given to the `.npy` reader parse or give an error: no panic, no abort, and no
//! allocation past libFuzzer's malloc limit (the shape is checked against the bytes that back
//! it before anything is sized by it). An array that parses holds exactly the elements its
//! shape names, and writing it back and reading that again gives the same array.
#![no_main]

use innfer::npy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(array) = npy::parse(data) else {
        return;
    };
    let elements: usize = array.shape.iter().product();
    assert_eq!(array.data.len(), elements, "shape {:?}", array.shape);
    let (rows, cols) = array.as_matrix();
    assert_eq!(rows * cols, elements);
    let again = npy::parse(&npy::to_bytes(&array.shape, &array.data)).expect("a written array");
    assert_eq!(again.shape, array.shape);
    assert!(
        again
            .data
            .iter()
            .zip(&array.data)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "the written array's values"
    );
});
