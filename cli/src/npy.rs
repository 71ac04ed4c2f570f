//! `.npy` reading and writing for the CLI: the implementation is the library's
//! (`innfer::train::npy`, which `Dataset::from_npy` uses too); the tests below pin the
//! behaviour the CLI relies on.

pub use innfer::train::npy::*;

#[cfg(test)]
mod tests {
    use super::*;

    /// The six bytes every `.npy` file starts with.
    const MAGIC: &[u8; 6] = b"\x93NUMPY";

    /// An `.npy` file with a hand-written header (padded as numpy pads), for any dtype.
    fn with_header(version: (u8, u8), dict: &str, body: &[u8]) -> Vec<u8> {
        let len_bytes = if version.0 == 1 { 2 } else { 4 };
        let unpadded = 8 + len_bytes + dict.len() + 1;
        let padding = (64 - unpadded % 64) % 64;
        let header = format!("{dict}{}\n", " ".repeat(padding));
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[version.0, version.1]);
        if len_bytes == 2 {
            out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn round_trip_2d_and_1d() {
        let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 3.0).collect();
        let a = parse(&to_bytes(&[3, 4], &data)).unwrap();
        assert_eq!(a.shape, vec![3, 4]);
        assert_eq!(a.data, data);
        assert_eq!(a.as_matrix(), (3, 4));

        let b = parse(&to_bytes(&[12], &data)).unwrap();
        assert_eq!(b.shape, vec![12]);
        assert_eq!(b.data, data);
        assert_eq!(b.as_matrix(), (1, 12));

        let empty = parse(&to_bytes(&[0, 5], &[])).unwrap();
        assert_eq!(empty.shape, vec![0, 5]);
        assert!(empty.data.is_empty());
    }

    #[test]
    fn round_trip_keeps_special_values() {
        let data = [f32::NAN, f32::INFINITY, -0.0, f32::MIN_POSITIVE, 1e-45];
        let a = parse(&to_bytes(&[5], &data)).unwrap();
        for (x, y) in a.data.iter().zip(&data) {
            assert_eq!(x.to_bits(), y.to_bits());
        }
    }

    #[test]
    fn header_is_padded_to_64_bytes_like_numpy() {
        for shape in [&[1usize][..], &[7, 3], &[123456789, 2], &[0]] {
            let h = header_v1_f4(shape);
            assert_eq!(h.len() % 64, 0, "{shape:?}");
            assert_eq!(h[h.len() - 1], b'\n');
            assert_eq!(&h[..8], b"\x93NUMPY\x01\x00");
            assert_eq!(u16::from_le_bytes([h[8], h[9]]) as usize, h.len() - 10);
        }
        // Exactly what numpy 1.x/2.x writes for np.zeros((2, 3), np.float32).
        let expected = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        let h = header_v1_f4(&[2, 3]);
        assert!(std::str::from_utf8(&h[10..]).unwrap().starts_with(expected));
        let h1 = header_v1_f4(&[4]);
        assert!(
            std::str::from_utf8(&h1[10..])
                .unwrap()
                .contains("'shape': (4,), }")
        );
    }

    #[test]
    fn reads_f8_as_f32() {
        let vals = [1.5f64, -2.25, 1e-3, 123456.789];
        let body: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let bytes = with_header(
            (1, 0),
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }",
            &body,
        );
        let a = parse(&bytes).unwrap();
        assert_eq!(a.shape, vec![2, 2]);
        let want: Vec<f32> = vals.iter().map(|&v| v as f32).collect();
        assert_eq!(a.data, want);
    }

    #[test]
    fn reads_versions_2_and_3_and_odd_spacing() {
        let body: Vec<u8> = [1.0f32, 2.0, 3.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        for version in [(2, 0), (3, 0)] {
            let bytes = with_header(
                version,
                "{\"shape\":(3,),\"fortran_order\":False,\"descr\":\"<f4\"}",
                &body,
            );
            let a = parse(&bytes).unwrap();
            assert_eq!(a.shape, vec![3]);
            assert_eq!(a.data, vec![1.0, 2.0, 3.0]);
        }
        let bytes = with_header(
            (1, 0),
            "{ 'descr' : '<f4' , 'fortran_order' : False , 'shape' : ( 1 , 3 ) , }",
            &body,
        );
        assert_eq!(parse(&bytes).unwrap().shape, vec![1, 3]);
    }

    #[test]
    fn rejects_bad_magic() {
        assert_eq!(parse(b"PK\x03\x04 not npy"), Err(NpyError::BadMagic));
        assert_eq!(parse(b""), Err(NpyError::BadMagic));
        assert_eq!(parse(b"\x93NUM"), Err(NpyError::BadMagic));
    }

    #[test]
    fn rejects_unknown_version() {
        let mut bytes = to_bytes(&[1], &[1.0]);
        bytes[6] = 4;
        assert_eq!(parse(&bytes), Err(NpyError::Version(4, 0)));
    }

    #[test]
    fn rejects_truncated_data_and_header() {
        let bytes = to_bytes(&[4, 3], &[0.0; 12]);
        let short = &bytes[..bytes.len() - 1];
        match parse(short) {
            Err(NpyError::Truncated { needed, found }) => {
                assert_eq!(needed, bytes.len());
                assert_eq!(found, bytes.len() - 1);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&bytes[..30]),
            Err(NpyError::Truncated { .. })
        ));
        assert!(matches!(
            parse(&bytes[..9]),
            Err(NpyError::Truncated { .. })
        ));
        let msg = parse(short).unwrap_err().to_string();
        assert!(msg.contains("truncated"), "{msg}");
    }

    #[test]
    fn rejects_other_dtypes() {
        for descr in ["<i4", ">f4", "<f2", "|u1", "<c8"] {
            let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (2,), }}");
            let bytes = with_header((1, 0), &dict, &[0u8; 16]);
            assert_eq!(parse(&bytes), Err(NpyError::Dtype(descr.into())), "{descr}");
            let msg = parse(&bytes).unwrap_err().to_string();
            assert!(msg.contains(descr), "{msg}");
        }
        let structured =
            "{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (2,), }";
        let bytes = with_header((1, 0), structured, &[0u8; 16]);
        assert!(matches!(parse(&bytes), Err(NpyError::Dtype(_))));
    }

    #[test]
    fn rejects_fortran_order() {
        let dict = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }";
        let bytes = with_header((1, 0), dict, &[0u8; 16]);
        assert_eq!(parse(&bytes), Err(NpyError::FortranOrder));
        assert!(parse(&bytes).unwrap_err().to_string().contains("Fortran"));
    }

    #[test]
    fn rejects_0d_and_3d_shapes() {
        for shape in ["()", "(2, 2, 2)"] {
            let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
            let bytes = with_header((1, 0), &dict, &[0u8; 32]);
            assert!(matches!(parse(&bytes), Err(NpyError::Shape(_))), "{shape}");
        }
    }

    #[test]
    fn rejects_overflowing_shape() {
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551615, 3), }";
        let bytes = with_header((1, 0), dict, &[]);
        assert!(matches!(parse(&bytes), Err(NpyError::Shape(_))));
    }

    #[test]
    fn rejects_malformed_headers() {
        for dict in [
            "not a dict",
            "{'descr': '<f4', 'fortran_order': False}",
            "{'descr': '<f4', 'shape': (2,)}",
            "{'fortran_order': False, 'shape': (2,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} trailing",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}",
            "{'descr': '<f4', 'fortran_order': maybe, 'shape': (2,)}",
            "{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,",
        ] {
            let bytes = with_header((1, 0), dict, &[0u8; 8]);
            assert!(matches!(parse(&bytes), Err(NpyError::Header(_))), "{dict}");
        }
    }

    #[test]
    fn ignores_trailing_bytes_after_the_data() {
        let mut bytes = to_bytes(&[2], &[1.0, 2.0]);
        bytes.extend_from_slice(&[0xAB; 3]);
        assert_eq!(parse(&bytes).unwrap().data, vec![1.0, 2.0]);
    }
}
