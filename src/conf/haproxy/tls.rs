//! TLS settings mapped onto what rustls offers: OpenSSL cipher strings to
//! rustls suite names, protocol versions limited to TLS 1.2 and 1.3.

use super::model::TlsVersion;

/// TLS 1.2 suites rustls implements, with their OpenSSL names.
const RUSTLS_TLS12: [(&str, &str); 6] = [
    ("ECDHE-ECDSA-AES256-GCM-SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    ("ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    ("ECDHE-ECDSA-CHACHA20-POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
    ("ECDHE-RSA-AES256-GCM-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
    ("ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    ("ECDHE-RSA-CHACHA20-POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
];

/// TLS 1.3 suites rustls implements: (IANA/OpenSSL name, rustls name).
const RUSTLS_TLS13: [(&str, &str); 3] = [
    ("TLS_AES_256_GCM_SHA384", "TLS13_AES_256_GCM_SHA384"),
    ("TLS_AES_128_GCM_SHA256", "TLS13_AES_128_GCM_SHA256"),
    ("TLS_CHACHA20_POLY1305_SHA256", "TLS13_CHACHA20_POLY1305_SHA256"),
];

/// A TLS ≤ 1.2 cipher as OpenSSL's cipher-string aliases see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cipher {
    kx: &'static str,
    auth: &'static str,
    enc: &'static str,
    bits: u16,
}

impl Cipher {
    fn openssl_name(&self) -> String {
        let kx = match (self.kx, self.auth) {
            ("ECDHE", "ECDSA") => "ECDHE-ECDSA-",
            ("ECDHE", _) => "ECDHE-RSA-",
            ("DHE", "DSS") => "DHE-DSS-",
            ("DHE", _) => "DHE-RSA-",
            _ => "",
        };
        let enc = match self.enc {
            "AESGCM" => format!("AES{}-GCM-SHA{}", self.bits, if self.bits == 256 { 384 } else { 256 }),
            "AES" => format!("AES{}-SHA", self.bits),
            "CHACHA20" => "CHACHA20-POLY1305".to_string(),
            "3DES" => "DES-CBC3-SHA".to_string(),
            other => other.to_string(),
        };
        format!("{kx}{enc}")
    }

    /// Does the OpenSSL alias (one part of an `A+B` element) select this cipher?
    fn has(&self, alias: &str) -> bool {
        match alias {
            "ALL" | "DEFAULT" | "HIGH" => self.enc != "3DES",
            "MEDIUM" => self.enc == "3DES",
            "ECDH" | "EECDH" | "ECDHE" | "kECDHE" | "kEECDH" => self.kx == "ECDHE",
            "DH" | "EDH" | "DHE" | "kEDH" | "kDHE" => self.kx == "DHE",
            "RSA" | "kRSA" => self.kx == "RSA",
            "aRSA" => self.auth == "RSA",
            "ECDSA" | "aECDSA" => self.auth == "ECDSA",
            "DSS" | "aDSS" => self.auth == "DSS",
            "AESGCM" => self.enc == "AESGCM",
            "AES" => self.enc == "AESGCM" || self.enc == "AES",
            "AES128" => (self.enc == "AESGCM" || self.enc == "AES") && self.bits == 128,
            "AES256" => (self.enc == "AESGCM" || self.enc == "AES") && self.bits == 256,
            "CHACHA20" => self.enc == "CHACHA20",
            "3DES" => self.enc == "3DES",
            "SHA256" => self.enc == "AESGCM" && self.bits == 128 || self.enc == "CHACHA20",
            "SHA384" => self.enc == "AESGCM" && self.bits == 256,
            "SHA" | "SHA1" => self.enc == "AES" || self.enc == "3DES",
            "TLSv1.2" => self.enc == "AESGCM" || self.enc == "CHACHA20",
            name => self.openssl_name() == name,
        }
    }

    fn rustls_name(&self) -> Option<&'static str> {
        let name = self.openssl_name();
        RUSTLS_TLS12.iter().find(|(openssl, _)| *openssl == name).map(|(_, rustls)| *rustls)
    }
}

/// The ciphers OpenSSL would know that a cipher string can select from.
fn universe() -> Vec<Cipher> {
    let mut all = Vec::new();
    for (kx, auths) in [("ECDHE", &["ECDSA", "RSA"][..]), ("DHE", &["RSA", "DSS"][..]), ("RSA", &["RSA"][..])]
    {
        for auth in auths {
            for (enc, bits) in [
                ("AESGCM", 256),
                ("AESGCM", 128),
                ("CHACHA20", 256),
                ("AES", 256),
                ("AES", 128),
                ("3DES", 168),
            ] {
                if enc == "CHACHA20" && kx == "RSA" {
                    continue;
                }
                all.push(Cipher { kx, auth, enc, bits });
            }
        }
    }
    all
}

/// Result of mapping an OpenSSL cipher list.
#[derive(Debug, PartialEq)]
pub(super) struct CipherMapping {
    /// rustls suite names, in the list's preference order.
    pub suites: Vec<String>,
    /// Set when the list also selects ciphers rustls does not implement.
    pub warning: Option<String>,
}

/// Maps an OpenSSL TLS ≤ 1.2 cipher list (`ciphers`, `ssl-default-bind-ciphers`).
pub(super) fn map_cipher_list(list: &str) -> Result<CipherMapping, String> {
    let all = universe();
    let mut selected: Vec<Cipher> = Vec::new();
    let mut banned: Vec<Cipher> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    for element in list.split([':', ',', ' ']).filter(|e| !e.is_empty()) {
        if element.starts_with('@') || element.starts_with("COMPLEMENTOF") {
            continue;
        }
        let (op, body) = match element.chars().next() {
            Some(c @ ('!' | '-' | '+')) => (c, &element[1..]),
            _ => (' ', element),
        };
        // Aliases rustls never offers select nothing from our universe: fine.
        let never = [
            "aNULL", "eNULL", "NULL", "MD5", "EXPORT", "EXP", "LOW", "RC4", "DES", "PSK", "SRP", "CAMELLIA",
            "SEED", "IDEA", "ADH", "AECDH", "aECDH", "kECDH", "CCM", "ARIA",
        ];
        let matching: Vec<Cipher> = if body.split('+').any(|a| never.contains(&a)) {
            Vec::new()
        } else {
            all.iter().copied().filter(|c| body.split('+').all(|alias| c.has(alias))).collect()
        };
        if matching.is_empty() && op == ' ' && !body.split('+').any(|a| never.contains(&a)) {
            unknown.push(body.to_string());
        }
        match op {
            '!' => {
                selected.retain(|c| !matching.contains(c));
                banned.extend(matching);
            }
            '-' => selected.retain(|c| !matching.contains(c)),
            '+' => {
                let (moved, kept): (Vec<Cipher>, Vec<Cipher>) =
                    selected.iter().partition(|c| matching.contains(c));
                selected = kept;
                selected.extend(moved);
            }
            _ => {
                for c in matching {
                    if !selected.contains(&c) && !banned.contains(&c) {
                        selected.push(c);
                    }
                }
            }
        }
    }
    let suites: Vec<String> = selected.iter().filter_map(Cipher::rustls_name).map(String::from).collect();
    let dropped: Vec<String> = selected
        .iter()
        .filter(|c| c.rustls_name().is_none())
        .map(Cipher::openssl_name)
        .chain(unknown)
        .collect();
    if suites.is_empty() {
        return Err(format!(
            "cipher list '{list}' selects no cipher suite rustls supports (TLS 1.2: ECDHE with AES-GCM or CHACHA20-POLY1305 only)"
        ));
    }
    let warning = (!dropped.is_empty()).then(|| {
        format!(
            "cipher list '{list}': {} not supported by rustls (no DH, RSA key exchange, CBC or 3DES); keeping {}",
            dropped.join(", "),
            suites.join(", ")
        )
    });
    Ok(CipherMapping { suites, warning })
}

/// Maps a TLS 1.3 `ciphersuites` list (`TLS_AES_128_GCM_SHA256:…`).
pub(super) fn map_tls13_suites(list: &str) -> Result<CipherMapping, String> {
    let mut suites = Vec::new();
    let mut dropped = Vec::new();
    for name in list.split(':').filter(|n| !n.is_empty()) {
        match RUSTLS_TLS13.iter().find(|(iana, _)| *iana == name) {
            Some((_, rustls)) => suites.push(rustls.to_string()),
            None => dropped.push(name.to_string()),
        }
    }
    if suites.is_empty() {
        return Err(format!("ciphersuites '{list}' names no TLS 1.3 suite rustls supports"));
    }
    let warning = (!dropped.is_empty())
        .then(|| format!("ciphersuites {} not supported by rustls, ignored", dropped.join(", ")));
    Ok(CipherMapping { suites, warning })
}

/// Merges a TLS 1.2 list and a TLS 1.3 list into the one suite list the model
/// keeps: a side not configured keeps every suite rustls has for it.
pub(super) fn merge_suites(tls12: Option<&[String]>, tls13: Option<&[String]>) -> Vec<String> {
    if tls12.is_none() && tls13.is_none() {
        return Vec::new();
    }
    let default13: Vec<String> = RUSTLS_TLS13.iter().map(|(_, r)| r.to_string()).collect();
    let default12: Vec<String> = RUSTLS_TLS12.iter().map(|(_, r)| r.to_string()).collect();
    let mut all = tls13.map(<[String]>::to_vec).unwrap_or(default13);
    all.extend(tls12.map(<[String]>::to_vec).unwrap_or(default12));
    all
}

/// `SSLv3`, `TLSv1.0`…`TLSv1.3` as a `ssl-min-ver`/`ssl-max-ver` argument.
pub(super) fn parse_version(keyword: &str, text: &str) -> Result<TlsVersion, String> {
    match text {
        "TLSv1.2" => Ok(TlsVersion::Tls12),
        "TLSv1.3" => Ok(TlsVersion::Tls13),
        "SSLv3" | "TLSv1.0" | "TLSv1.1" => {
            Err(format!("'{keyword} {text}' is not supported: rustls speaks TLS 1.2 and TLS 1.3 only"))
        }
        other => {
            Err(format!("'{keyword}' expects SSLv3, TLSv1.0, TLSv1.1, TLSv1.2 or TLSv1.3, got '{other}'"))
        }
    }
}

/// Version options shared by `bind` lines and `ssl-default-*-options`.
/// Returns false when `word` is not one of them.
pub(super) fn apply_version_flag(
    word: &str,
    min: &mut Option<TlsVersion>,
    max: &mut Option<TlsVersion>,
) -> bool {
    match word {
        // rustls never speaks these, so refusing them is already the case.
        "no-sslv3" | "no-tlsv10" | "no-tlsv11" => {}
        "no-tlsv12" | "force-tlsv13" => *min = Some(TlsVersion::Tls13),
        "no-tlsv13" | "force-tlsv12" => *max = Some(TlsVersion::Tls12),
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rustls_names() -> Vec<String> {
        rustls::crypto::ring::ALL_CIPHER_SUITES
            .iter()
            .filter_map(|s| s.suite().as_str().map(String::from))
            .collect()
    }

    #[test]
    fn names_we_produce_are_rustls_names() {
        let known = rustls_names();
        for (_, name) in RUSTLS_TLS12.iter().chain(RUSTLS_TLS13.iter()) {
            assert!(known.contains(&name.to_string()), "{name} not in {known:?}");
        }
    }

    #[test]
    fn seed_cipher_string_keeps_ecdhe_gcm_and_warns() {
        let list = "ECDH+AESGCM:DH+AESGCM:ECDH+AES256:DH+AES256:ECDH+AES128:DH+AES:RSA+AESGCM:RSA+AES:!aNULL:!MD5:!DSS";
        let mapped = map_cipher_list(list).expect("accepted");
        assert_eq!(
            mapped.suites,
            [
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            ]
        );
        let warning = mapped.warning.expect("DH and RSA ciphers are dropped");
        assert!(warning.contains("DHE-RSA-AES256-GCM-SHA384"), "{warning}");
        assert!(!warning.contains("DHE-DSS"), "!DSS removes DSS ciphers: {warning}");
    }

    #[test]
    fn mozilla_intermediate_maps_without_warning() {
        let list = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305";
        let mapped = map_cipher_list(list).expect("accepted");
        assert_eq!(mapped.suites.len(), 3);
        assert_eq!(mapped.warning, None);
    }

    #[test]
    fn lists_without_rustls_suites_are_errors() {
        let err = map_cipher_list("DHE-RSA-AES128-SHA:AES256-SHA").unwrap_err();
        assert!(err.contains("'DHE-RSA-AES128-SHA:AES256-SHA'"), "{err}");
        assert!(map_cipher_list("RSA+AES:!aNULL").is_err());
        assert!(map_cipher_list("HIGH:!ECDHE").is_err());
    }

    #[test]
    fn tls13_suites_and_versions() {
        let mapped =
            map_tls13_suites("TLS_AES_128_GCM_SHA256:TLS_AES_128_CCM_SHA256").expect("one is supported");
        assert_eq!(mapped.suites, ["TLS13_AES_128_GCM_SHA256"]);
        assert!(mapped.warning.is_some());
        assert!(map_tls13_suites("TLS_AES_128_CCM_SHA256").is_err());
        assert_eq!(parse_version("ssl-min-ver", "TLSv1.2"), Ok(TlsVersion::Tls12));
        assert!(parse_version("ssl-min-ver", "TLSv1.0").unwrap_err().contains("rustls"));
        assert_eq!(merge_suites(None, None), Vec::<String>::new());
        assert_eq!(merge_suites(Some(&["A".to_string()]), None).len(), 4);
    }
}
