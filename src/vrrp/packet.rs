//! VRRP advertisement codec: VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798) over IPv4,
//! and VRRPv3 over IPv6 (payload only: the kernel owns the IPv6 header).
//!
//! We build the IPv4 header ourselves (the socket uses `IP_HDRINCL`, as keepalived
//! does) so that the source address in the v3 pseudo-header is exactly the one on
//! the wire. Decoding takes the whole IPv4 datagram as a raw socket delivers it and
//! never panics: every malformed input is an `Err(DecodeError)`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: u8 = 112;
/// The VRRP IPv4 multicast group (RFC 5798 5.1.1.2).
pub const MCAST_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The VRRP IPv6 multicast group (RFC 5798 5.1.2.2).
pub const MCAST_GROUP6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// TTL every advertisement is sent with and (in multicast mode) must arrive with.
pub const VRRP_TTL: u8 = 255;
/// Length of the VRRPv2 simple-password authentication data.
pub const AUTH_LEN: usize = 8;
/// Fixed VRRP header length (both versions).
const HDR_LEN: usize = 8;
/// IPv4 header length we emit (no options).
const IP_HDR_LEN: usize = 20;

/// VRRPv2 authentication as carried in adverts. AH (type 2) is not supported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    /// Simple text password: up to 8 bytes, zero padded on the wire.
    Pass([u8; AUTH_LEN]),
}

impl Auth {
    /// Builds a PASS authentication the way keepalived does: the password is
    /// truncated to 8 bytes and zero padded.
    pub fn pass(pw: &str) -> Auth {
        let mut b = [0u8; AUTH_LEN];
        for (d, s) in b.iter_mut().zip(pw.as_bytes()) {
            *d = *s;
        }
        Auth::Pass(b)
    }

    fn type_code(&self) -> u8 {
        match self {
            Auth::None => 0,
            Auth::Pass(_) => 1,
        }
    }
}

/// One advertisement, independent of the wire version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    /// 2 or 3.
    pub version: u8,
    pub vrid: u8,
    pub priority: u8,
    /// Advertisement interval in centiseconds (v2 carries whole seconds: the
    /// codec multiplies/divides by 100).
    pub adver_int_cs: u16,
    /// All of one family: IPv4 over IPv4, IPv6 over IPv6 (v3 only).
    pub addrs: Vec<IpAddr>,
    /// Authentication type code as received (v2 only; 0 for v3).
    pub auth_type: u8,
    /// Authentication data as received (v2 only).
    pub auth_data: [u8; AUTH_LEN],
}

/// A decoded datagram: the advert plus the IP fields the state machine checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    pub advert: Advert,
}

/// Why a datagram is not a valid VRRP advertisement. Each maps to a counter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("packet too short, length {0}")]
    TooShort(usize),
    #[error("not an IPv4 packet")]
    NotIpv4,
    #[error("not a VRRP packet (protocol {0})")]
    NotVrrp(u8),
    #[error("ip_tot_len mismatch against received length. {0} and received {1}")]
    IpLength(usize, usize),
    #[error("vrrp packet too {which}, length {got} and expect {want}")]
    VrrpLength { which: &'static str, got: usize, want: usize },
    #[error("wrong version. Received {0}")]
    Version(u8),
    #[error("Invalid packet type. {0} and expect 1")]
    Type(u8),
    #[error("Invalid VRRPv{0} checksum")]
    Checksum(u8),
}

/// RFC 1071 one's complement sum over `data`, continuing from `acc`.
fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// VRRPv3/IPv4 checksum: pseudo-header (src, dst, 0, 112, VRRP length) then the
/// VRRP message, exactly as keepalived 2.2 computes it in vrrp_build_vrrp_v3 and
/// checks it in vrrp_check_packet (the unicast destination is used as is).
pub fn checksum_v3(src: Ipv4Addr, dst: Ipv4Addr, vrrp: &[u8]) -> u16 {
    let mut ph = [0u8; 12];
    ph[0..4].copy_from_slice(&src.octets());
    ph[4..8].copy_from_slice(&dst.octets());
    ph[9] = IPPROTO_VRRP;
    ph[10..12].copy_from_slice(&(vrrp.len() as u16).to_be_bytes());
    fold(sum16(vrrp, sum16(&ph, 0)))
}

/// VRRPv2 checksum: the VRRP message only (RFC 3768 5.3.8).
pub fn checksum_v2(vrrp: &[u8]) -> u16 {
    fold(sum16(vrrp, 0))
}

/// Encodes the VRRP message (no IP header). `src`/`dst` feed the v3 pseudo-header.
pub fn encode_vrrp(adv: &Advert, auth: &Auth, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut b = Vec::with_capacity(HDR_LEN + 4 * adv.addrs.len() + AUTH_LEN);
    b.push((adv.version << 4) | 1);
    b.push(adv.vrid);
    b.push(adv.priority);
    // keepalived caps the list at 255 addresses; so does the count byte.
    let addrs = &adv.addrs[..adv.addrs.len().min(255)];
    b.push(addrs.len() as u8);
    if adv.version == 2 {
        b.push(auth.type_code());
        // v2 carries whole seconds; keepalived refuses fractional v2 intervals.
        b.push((adv.adver_int_cs / 100).clamp(1, 255) as u8);
    } else {
        b.extend_from_slice(&(adv.adver_int_cs & 0x0fff).to_be_bytes());
    }
    b.extend_from_slice(&[0, 0]);
    for a in addrs {
        match a {
            IpAddr::V4(a) => b.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => b.extend_from_slice(&a.octets()),
        }
    }
    if adv.version == 2 {
        // RFC 3768 5.3.10: the 8 authentication bytes are always present (zero
        // without authentication); keepalived rejects shorter v2 adverts.
        match auth {
            Auth::None => b.extend_from_slice(&[0; AUTH_LEN]),
            Auth::Pass(pw) => b.extend_from_slice(pw),
        }
    }
    let ck = if adv.version == 2 { checksum_v2(&b) } else { checksum_v3(src, dst, &b) };
    b[6..8].copy_from_slice(&ck.to_be_bytes());
    b
}

/// Encodes the whole IPv4 datagram as keepalived sends it: TOS 0xc0 (internet
/// control), TTL 255, protocol 112. Under IP_HDRINCL the kernel always rewrites
/// the header checksum and fills the id when it is 0; we compute the checksum
/// anyway so that the bytes are a complete, valid datagram on their own.
pub fn encode_ipv4(adv: &Advert, auth: &Auth, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let vrrp = encode_vrrp(adv, auth, src, dst);
    let total = IP_HDR_LEN + vrrp.len();
    let mut p = Vec::with_capacity(total);
    p.push(0x45);
    p.push(0xc0);
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0]); // id, flags/fragment
    p.push(VRRP_TTL);
    p.push(IPPROTO_VRRP);
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let ck = fold(sum16(&p, 0));
    p[10..12].copy_from_slice(&ck.to_be_bytes());
    p.extend_from_slice(&vrrp);
    p
}

/// Decodes an IPv4 datagram carrying a VRRP advertisement (v2 or v3), checking
/// lengths and the checksum. Semantic checks (vrid, auth, interval, VIPs, TTL)
/// belong to the state machine, which knows the configuration.
pub fn decode_ipv4(pkt: &[u8]) -> Result<Received, DecodeError> {
    if pkt.len() < IP_HDR_LEN {
        return Err(DecodeError::TooShort(pkt.len()));
    }
    if pkt[0] >> 4 != 4 {
        return Err(DecodeError::NotIpv4);
    }
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    if ihl < IP_HDR_LEN || pkt.len() < ihl + HDR_LEN {
        return Err(DecodeError::TooShort(pkt.len()));
    }
    if pkt[9] != IPPROTO_VRRP {
        return Err(DecodeError::NotVrrp(pkt[9]));
    }
    let tot = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    if tot != pkt.len() {
        return Err(DecodeError::IpLength(tot, pkt.len()));
    }
    let ttl = pkt[8];
    let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
    let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
    let v = &pkt[ihl..];
    let version = v[0] >> 4;
    if version != 2 && version != 3 {
        return Err(DecodeError::Version(version));
    }
    let naddr = usize::from(v[3]);
    let want = HDR_LEN + 4 * naddr + if version == 2 { AUTH_LEN } else { 0 };
    if v.len() != want {
        let which = if v.len() > want { "long" } else { "short" };
        return Err(DecodeError::VrrpLength { which, got: v.len(), want });
    }
    if v[0] & 0x0f != 1 {
        return Err(DecodeError::Type(v[0] & 0x0f));
    }
    let ok = if version == 2 {
        // keepalived sums the whole v2 message including the 8 auth bytes.
        checksum_v2(v) == 0
    } else {
        checksum_v3(src, dst, v) == 0
    };
    if !ok {
        return Err(DecodeError::Checksum(version));
    }
    let (adver_int_cs, auth_type) = if version == 2 {
        (u16::from(v[5]) * 100, v[4])
    } else {
        (u16::from_be_bytes([v[4], v[5]]) & 0x0fff, 0)
    };
    let addrs = v[HDR_LEN..HDR_LEN + 4 * naddr]
        .chunks_exact(4)
        .map(|c| IpAddr::V4(Ipv4Addr::new(c[0], c[1], c[2], c[3])))
        .collect();
    let mut auth_data = [0u8; AUTH_LEN];
    if version == 2 {
        auth_data.copy_from_slice(&v[HDR_LEN + 4 * naddr..]);
    }
    Ok(Received {
        src: src.into(),
        dst: dst.into(),
        ttl,
        advert: Advert { version, vrid: v[1], priority: v[2], adver_int_cs, addrs, auth_type, auth_data },
    })
}

/// VRRPv3/IPv6 checksum (RFC 2460 8.1 pseudo-header). The kernel computes and
/// verifies it (IPV6_CHECKSUM); we compute it too so encoded bytes are complete.
pub fn checksum_v6(src: Ipv6Addr, dst: Ipv6Addr, vrrp: &[u8]) -> u16 {
    let mut ph = [0u8; 40];
    ph[0..16].copy_from_slice(&src.octets());
    ph[16..32].copy_from_slice(&dst.octets());
    ph[32..36].copy_from_slice(&(vrrp.len() as u32).to_be_bytes());
    ph[39] = IPPROTO_VRRP;
    fold(sum16(vrrp, sum16(&ph, 0)))
}

/// Encodes a VRRPv3 message for IPv6 (the kernel adds the IPv6 header).
pub fn encode_vrrp6(adv: &Advert, src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    let mut b =
        encode_vrrp(&Advert { version: 3, ..adv.clone() }, &Auth::None, Ipv4Addr::UNSPECIFIED, MCAST_GROUP);
    b[6] = 0;
    b[7] = 0;
    let ck = checksum_v6(src, dst, &b);
    b[6..8].copy_from_slice(&ck.to_be_bytes());
    b
}

/// Decodes a VRRPv3 message received over IPv6 (raw IPv6 sockets deliver the
/// payload only; addresses and hop limit come from recvmsg).
pub fn decode_vrrp6(v: &[u8], src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8) -> Result<Received, DecodeError> {
    if v.len() < HDR_LEN {
        return Err(DecodeError::TooShort(v.len()));
    }
    let version = v[0] >> 4;
    if version != 3 {
        return Err(DecodeError::Version(version));
    }
    let naddr = usize::from(v[3]);
    let want = HDR_LEN + 16 * naddr;
    if v.len() != want {
        let which = if v.len() > want { "long" } else { "short" };
        return Err(DecodeError::VrrpLength { which, got: v.len(), want });
    }
    if v[0] & 0x0f != 1 {
        return Err(DecodeError::Type(v[0] & 0x0f));
    }
    if checksum_v6(src, dst, v) != 0 {
        return Err(DecodeError::Checksum(3));
    }
    let addrs = v[HDR_LEN..]
        .chunks_exact(16)
        .map(|c| {
            let mut o = [0u8; 16];
            o.copy_from_slice(c);
            IpAddr::V6(Ipv6Addr::from(o))
        })
        .collect();
    Ok(Received {
        src: src.into(),
        dst: dst.into(),
        ttl: hop_limit,
        advert: Advert {
            version,
            vrid: v[1],
            priority: v[2],
            adver_int_cs: u16::from_be_bytes([v[4], v[5]]) & 0x0fff,
            addrs,
            auth_type: 0,
            auth_data: [0; AUTH_LEN],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adv(version: u8) -> Advert {
        Advert {
            version,
            vrid: 51,
            priority: 100,
            adver_int_cs: 100,
            addrs: vec![IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10))],
            auth_type: 0,
            auth_data: [0; 8],
        }
    }

    #[test]
    fn v3_roundtrip_and_checksum() {
        let src = Ipv4Addr::new(10, 0, 0, 1);
        let p = encode_ipv4(&adv(3), &Auth::None, src, MCAST_GROUP);
        assert_eq!(p.len(), 20 + 12);
        let r = decode_ipv4(&p).expect("valid");
        assert_eq!(r.advert, adv(3));
        assert_eq!(r.ttl, 255);
        assert_eq!(r.src, IpAddr::V4(src));
        // Changing the source must break the v3 checksum (pseudo-header).
        let mut q = p.clone();
        q[15] = 2;
        let ipck = fold(sum16(
            &{
                let mut h = q[..20].to_vec();
                h[10] = 0;
                h[11] = 0;
                h
            },
            0,
        ));
        q[10..12].copy_from_slice(&ipck.to_be_bytes());
        assert_eq!(decode_ipv4(&q), Err(DecodeError::Checksum(3)));
    }

    /// The v3 checksum against a sum written out by hand from RFC 5798 5.2.8
    /// (pseudo-header words, then the message with a zero checksum). That
    /// keepalived agrees is proven on the wire by tests/vrrp_interop.rs.
    #[test]
    fn v3_known_checksum() {
        let v = encode_vrrp(&adv(3), &Auth::None, Ipv4Addr::new(10, 0, 0, 1), MCAST_GROUP);
        // Recompute by hand: pseudo-header words + message words.
        let words: [u32; 12] = [
            0x0a00, 0x0001, 0xe000, 0x0012, 0x0070, 0x000c, // pseudo-header
            0x3133, 0x6401, 0x0064, 0x0000, 0xc0a8, 0x010a, // message, checksum 0
        ];
        let s: u32 = words.iter().sum();
        let expect = fold(s);
        assert_eq!(u16::from_be_bytes([v[6], v[7]]), expect);
    }

    #[test]
    fn v2_pass_roundtrip() {
        let mut a = adv(2);
        a.auth_type = 1;
        a.auth_data = *b"s3cret\0\0";
        let p = encode_ipv4(&a, &Auth::pass("s3cret"), Ipv4Addr::new(10, 0, 0, 2), MCAST_GROUP);
        assert_eq!(p.len(), 20 + 8 + 4 + 8);
        let r = decode_ipv4(&p).expect("valid");
        assert_eq!(r.advert, a);
    }

    #[test]
    fn v2_without_auth_still_carries_auth_bytes() {
        let p = encode_ipv4(&adv(2), &Auth::None, Ipv4Addr::new(10, 0, 0, 2), MCAST_GROUP);
        assert_eq!(p.len(), 20 + 8 + 4 + 8);
        assert_eq!(&p[p.len() - 8..], &[0; 8]);
        assert_eq!(decode_ipv4(&p).expect("valid").advert, adv(2));
    }

    #[test]
    fn pass_truncated_to_8() {
        assert_eq!(Auth::pass("some_secure_password"), Auth::Pass(*b"some_sec"));
    }

    #[test]
    fn v6_roundtrip_and_checksum() {
        let src: Ipv6Addr = "fe80::1".parse().expect("ip");
        let mut a = adv(3);
        a.addrs = vec![IpAddr::V6("fd00::100".parse().expect("ip"))];
        let v = encode_vrrp6(&a, src, MCAST_GROUP6);
        assert_eq!(v.len(), 8 + 16);
        let r = decode_vrrp6(&v, src, MCAST_GROUP6, 255).expect("valid");
        assert_eq!(r.advert, a);
        assert_eq!(
            decode_vrrp6(&v, "fe80::2".parse().expect("ip"), MCAST_GROUP6, 255),
            Err(DecodeError::Checksum(3))
        );
        for n in 0..v.len() {
            assert!(decode_vrrp6(&v[..n], src, MCAST_GROUP6, 255).is_err());
        }
    }

    #[test]
    fn decoder_survives_garbage() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let good = encode_ipv4(&adv(3), &Auth::None, Ipv4Addr::new(10, 0, 0, 1), MCAST_GROUP);
        // Every truncation of a valid packet is rejected.
        for n in 0..good.len() {
            assert!(decode_ipv4(&good[..n]).is_err(), "truncated to {n}");
        }
        // Random bytes and random mutations never panic.
        for _ in 0..20_000 {
            let n = rng.random_range(0..80);
            let mut buf: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            if rng.random_bool(0.5) && n >= 20 {
                buf[0] = 0x45;
                buf[9] = IPPROTO_VRRP;
                buf[2..4].copy_from_slice(&(n as u16).to_be_bytes());
            }
            let _ = decode_ipv4(&buf);
            let mut m = good.clone();
            let i = rng.random_range(0..m.len());
            m[i] = rng.random();
            let _ = decode_ipv4(&m);
        }
    }
}
