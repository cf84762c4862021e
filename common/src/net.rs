//! Client networks: how an address is counted, limited and banned.

use std::net::IpAddr;

/// IPv4-mapped IPv6 addresses are the IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// IPv6 clients are limited and banned by this prefix unless `IPV6_PREFIX_LEN` says otherwise:
/// a subscriber usually gets a whole /64, so one address of it says little.
pub const DEFAULT_V6_PREFIX: u8 = 64;

/// The network a client is counted (and banned) by: an IPv4 address itself, an IPv6 address's
/// first `v6_prefix` bits (the rest zero). IPv4-mapped addresses are IPv4.
pub fn network(ip: IpAddr, v6_prefix: u8) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let bits = u32::from(v6_prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
        v4 => v4,
    }
}
