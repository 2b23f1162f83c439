//! ipvsadm's readers for addresses and numbers, with the C library
//! behaviour they inherit: `inet_aton` (so `10.1` is 10.0.0.1), `strtol`
//! (leading blanks and a sign allowed) and `atoi`. Host and port *names*,
//! which ipvsadm resolves, are refused with a message saying so.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An `address[:port]` argument of `-t`, `-u` or `-r`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct HostPort {
    pub ip: IpAddr,
    /// `None` when no port was written (ipvsadm's `SERVICE_ADDR` alone).
    pub port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum AddressError {
    /// ipvsadm's `SERVICE_NONE`: the caller words the message.
    Illegal,
    HostName(String),
    PortName(String),
}

/// ipvsadm's `parse_service`, quirks included: a bare IPv6 address has no
/// port; `[a]:p` is required to give an IPv6 address a port; a bracketed
/// text that is not IPv6 is read as IPv4 with its own last `:` as the port
/// separator.
pub(super) fn parse_host_port(text: &str) -> Result<HostPort, AddressError> {
    if is_all_digits(text) {
        return Err(AddressError::Illegal);
    }
    let (host, bracket_port) = match text.strip_prefix('[') {
        Some(inner) => {
            let (host, after) = inner.split_once(']').ok_or(AddressError::Illegal)?;
            let port = after.strip_prefix(':').ok_or(AddressError::Illegal)?;
            (host, Some(port))
        }
        None => (text, None),
    };
    if let Ok(ip) = host.parse::<Ipv6Addr>() {
        let port = bracket_port.map(parse_port).transpose()?;
        return Ok(HostPort {
            ip: IpAddr::V6(ip),
            port,
        });
    }
    let (host, port) = match host.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (host, None),
    };
    let ip = match inet_aton(host) {
        Some(ip) => ip,
        None if looks_like_name(host) => return Err(AddressError::HostName(host.to_string())),
        None => return Err(AddressError::Illegal),
    };
    let port = port.map(parse_port).transpose()?;
    Ok(HostPort {
        ip: IpAddr::V4(ip),
        port,
    })
}

fn parse_port(text: &str) -> Result<u16, AddressError> {
    match string_to_number(text, 0, 65535) {
        Some(port) => Ok(port as u16),
        None if looks_like_name(text) => Err(AddressError::PortName(text.to_string())),
        None => Err(AddressError::Illegal),
    }
}

/// ipvsadm's `str_is_digit`: true for the empty string too.
fn is_all_digits(text: &str) -> bool {
    text.bytes().all(|byte| byte.is_ascii_digit())
}

/// Something the resolver could have turned into an address or a port:
/// letters, digits, dots, dashes, underscores, at least one letter.
fn looks_like_name(text: &str) -> bool {
    text.bytes().any(|byte| byte.is_ascii_alphabetic())
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_'))
}

/// ipvsadm's `string_to_number`: the whole text must be a `strtol` number
/// within `min..=max`.
pub(super) fn string_to_number(text: &str, min: i64, max: i64) -> Option<i64> {
    strtol(text).filter(|number| (min..=max).contains(number))
}

/// `strtol(text, &end, 10)` requiring `*end == '\0'`; `None` also on
/// overflow (ERANGE).
fn strtol(text: &str) -> Option<i64> {
    let (negative, digits) = split_sign(skip_c_space(text));
    if digits.is_empty() || !is_all_digits(digits) {
        return None;
    }
    let magnitude: i64 = digits.parse().ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

/// C's `atoi`: leading digits after blanks and a sign, 0 when there are none.
pub(super) fn atoi(text: &str) -> i64 {
    let (negative, rest) = split_sign(skip_c_space(text));
    let magnitude = rest
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0i64, |value, digit| {
            value
                .saturating_mul(10)
                .saturating_add(i64::from(digit - b'0'))
        });
    if negative { -magnitude } else { magnitude }
}

fn skip_c_space(text: &str) -> &str {
    text.trim_start_matches(is_c_space)
}

fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

fn split_sign(text: &str) -> (bool, &str) {
    match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    }
}

/// glibc's `inet_aton`: one to four parts, each decimal, octal (leading
/// `0`) or hex (`0x`); the last part fills the remaining bytes; anything
/// after a blank is ignored.
pub(super) fn inet_aton(text: &str) -> Option<Ipv4Addr> {
    let mut parts: Vec<u32> = Vec::with_capacity(4);
    let mut rest = text;
    loop {
        if !rest.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        let (value, after) = c_unsigned(rest)?;
        match after.strip_prefix('.') {
            Some(next) => {
                if parts.len() > 2 || value > 0xff {
                    return None;
                }
                parts.push(value);
                rest = next;
            }
            None => {
                if !(after.is_empty() || after.starts_with(is_c_space)) {
                    return None;
                }
                return assemble_inet_aton(&parts, value);
            }
        }
    }
}

fn assemble_inet_aton(leading: &[u32], last: u32) -> Option<Ipv4Addr> {
    const LAST_PART_LIMIT: [u32; 4] = [0xffff_ffff, 0x00ff_ffff, 0xffff, 0xff];
    if last > LAST_PART_LIMIT[leading.len()] {
        return None;
    }
    let high = leading
        .iter()
        .enumerate()
        .fold(0u32, |word, (index, byte)| word | byte << (24 - 8 * index));
    Some(Ipv4Addr::from(high | last))
}

/// `strtoul(text, &end, 0)` over a text starting with a digit: the value
/// and what follows it; `None` beyond 32 bits.
fn c_unsigned(text: &str) -> Option<(u32, &str)> {
    let (radix, digits) = if let Some(hex) = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .filter(|hex| hex.starts_with(|c: char| c.is_ascii_hexdigit()))
    {
        (16, hex)
    } else if text.starts_with('0') {
        (8, text)
    } else {
        (10, text)
    };
    let length = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    let value = u32::from_str_radix(&digits[..length], radix).ok()?;
    Some((value, &digits[length..]))
}

/// A dotted IPv4 netmask as a prefix length, if its ones are contiguous.
pub(super) fn ipv4_mask_prefix(mask: Ipv4Addr) -> Option<u8> {
    let bits = u32::from(mask);
    (bits.leading_ones() + bits.trailing_zeros() == 32).then(|| bits.leading_ones() as u8)
}

/// The dotted form of an IPv4 prefix length (`-S` prints `-M` so).
pub(super) fn ipv4_mask(prefix: u8) -> Ipv4Addr {
    let bits = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    Ipv4Addr::from(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(text: &str) -> IpAddr {
        IpAddr::V4(text.parse().unwrap())
    }

    #[test]
    fn inet_aton_reads_the_classic_forms() {
        for (text, expected) in [
            ("192.0.2.1", Some("192.0.2.1")),
            ("10.1", Some("10.0.0.1")),
            ("10.1.2", Some("10.1.0.2")),
            ("3221225985", Some("192.0.2.1")),
            ("0x0a.010.0.1", Some("10.8.0.1")),
            ("255.255.255.0 trailing", Some("255.255.255.0")),
            ("192.0.2.256", None),
            ("1.2.3.4.5", None),
            ("08.0.0.1", None),
            ("", None),
            ("a.b.c.d", None),
            ("1.2.3.", None),
        ] {
            assert_eq!(
                inet_aton(text),
                expected.map(|e| e.parse::<Ipv4Addr>().unwrap()),
                "{text}"
            );
        }
    }

    #[test]
    fn service_addresses_follow_parse_service() {
        let cases = [
            ("192.0.2.1:80", Ok((v4("192.0.2.1"), Some(80)))),
            ("192.0.2.1", Ok((v4("192.0.2.1"), None))),
            (
                "[2001:db8::1]:443",
                Ok(("2001:db8::1".parse().unwrap(), Some(443))),
            ),
            ("2001:db8::1", Ok(("2001:db8::1".parse().unwrap(), None))),
            // The last group is part of the address, not a port.
            (
                "2001:db8::1:80",
                Ok(("2001:db8::1:80".parse().unwrap(), None)),
            ),
            ("[192.0.2.1]:80", Ok((v4("192.0.2.1"), None))),
            ("192.0.2.1:+80", Ok((v4("192.0.2.1"), Some(80)))),
            ("80", Err(AddressError::Illegal)),
            ("", Err(AddressError::Illegal)),
            ("192.0.2.1:", Err(AddressError::Illegal)),
            ("192.0.2.1:65536", Err(AddressError::Illegal)),
            ("[2001:db8::1]", Err(AddressError::Illegal)),
            ("[2001:db8::1:80", Err(AddressError::Illegal)),
            (
                "www.example.com:80",
                Err(AddressError::HostName("www.example.com".into())),
            ),
            (
                "192.0.2.1:https",
                Err(AddressError::PortName("https".into())),
            ),
        ];
        for (text, expected) in cases {
            let parsed = parse_host_port(text).map(|hp| (hp.ip, hp.port));
            assert_eq!(parsed, expected, "{text}");
        }
    }

    #[test]
    fn numbers_follow_strtol_and_atoi() {
        assert_eq!(string_to_number(" +42", 0, 100), Some(42));
        assert_eq!(string_to_number("42 ", 0, 100), None);
        assert_eq!(string_to_number("-1", 0, 100), None);
        assert_eq!(string_to_number("101", 0, 100), None);
        assert_eq!(string_to_number("", 0, 100), None);
        assert_eq!(string_to_number("99999999999999999999", 0, i64::MAX), None);
        assert_eq!(atoi("64"), 64);
        assert_eq!(atoi("64bits"), 64);
        assert_eq!(atoi("x"), 0);
        assert_eq!(atoi(" -3"), -3);
    }

    #[test]
    fn masks_and_prefixes_convert_both_ways() {
        for prefix in 0..=32u8 {
            assert_eq!(ipv4_mask_prefix(ipv4_mask(prefix)), Some(prefix));
        }
        assert_eq!(ipv4_mask(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(ipv4_mask_prefix(Ipv4Addr::new(255, 0, 255, 0)), None);
        assert_eq!(ipv4_mask_prefix(Ipv4Addr::new(0, 0, 0, 24)), None);
    }
}
