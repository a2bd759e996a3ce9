//! Just enough DER to read the common names of a certificate subject:
//! HAProxy selects certificates by subject CN as well as by SAN DNS names.
//! Bounds are checked everywhere; malformed input yields no names.

/// OID 2.5.4.3 (id-at-commonName), DER-encoded content.
const CN_OID: [u8; 3] = [0x55, 0x04, 0x03];

const SET: u8 = 0x31;
const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;
/// String types a CN may use that map to UTF-8 directly (UTF8String,
/// PrintableString, T61String, IA5String).
const TEXT_TAGS: [u8; 4] = [0x0c, 0x13, 0x14, 0x16];

/// Splits one TLV off `input`: (tag, content, rest). Definite lengths only,
/// as DER requires.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = rest.get(..n)?;
        let len = bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, rest.get(n..)?)
    };
    let content = rest.get(..len)?;
    Some((tag, content, rest.get(len..)?))
}

/// Every CN in a subject Name given without its outer SEQUENCE header (as
/// webpki's `Cert::subject` returns it).
pub(super) fn common_names(mut subject: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    while let Some((tag, rdn, rest)) = tlv(subject) {
        subject = rest;
        if tag != SET {
            continue;
        }
        let mut attrs = rdn;
        while let Some((tag, attr, rest)) = tlv(attrs) {
            attrs = rest;
            if tag != SEQUENCE {
                continue;
            }
            let Some((OID, oid, value)) = tlv(attr) else { continue };
            if oid != CN_OID {
                continue;
            }
            if let Some((vtag, v, _)) = tlv(value) {
                if TEXT_TAGS.contains(&vtag) {
                    if let Ok(s) = std::str::from_utf8(v) {
                        names.push(s.to_string());
                    }
                }
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cns_and_survives_garbage() {
        // SET { SEQ { OID 2.5.4.6, PrintableString "FR" } },
        // SET { SEQ { OID 2.5.4.3, UTF8String "www.example.com" } }
        let mut subject = vec![0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x06, 0x13, 0x02, b'F', b'R'];
        subject.extend_from_slice(&[0x31, 0x18, 0x30, 0x16, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x0f]);
        subject.extend_from_slice(b"www.example.com");
        assert_eq!(common_names(&subject), vec!["www.example.com".to_string()]);
        for cut in 0..subject.len() {
            let _ = common_names(&subject[..cut]);
        }
        assert!(common_names(&[0x31, 0x84, 0xff, 0xff, 0xff, 0xff]).is_empty());
        assert!(common_names(&[0x31, 0x80]).is_empty());
    }
}
