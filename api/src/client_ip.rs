//! The client's IP: the socket peer, or, when the peer is a trusted proxy, the right-most
//! `X-Forwarded-For` hop that is not itself a trusted proxy.
//!
//! Right-most rather than left-most: a proxy appends the address it saw, so everything left of
//! the last trusted hop was written by the client and can be forged — a banned user could
//! otherwise evade an IP ban with one header. With a single proxy both readings agree.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use ipnet::IpNet;

use crate::error::ApiError;

#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    /// Resolves the client address from the peer and the `X-Forwarded-For` values.
    pub fn client_ip<'a>(&self, peer: IpAddr, forwarded: impl Iterator<Item = &'a str>) -> IpAddr {
        if !self.contains(&peer) {
            return peer;
        }
        let hops: Vec<IpAddr> = forwarded
            .flat_map(|v| v.split(','))
            .filter_map(|h| parse_hop(h.trim()))
            .collect();
        hops.iter()
            .rev()
            .find(|ip| !self.contains(ip))
            .or(hops.first())
            .copied()
            .unwrap_or(peer)
    }
}

impl FromStr for TrustedProxies {
    type Err = String;
    /// Comma-separated CIDRs or single addresses; empty means none.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<IpNet>()
                    .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("TRUSTED_PROXIES: {p:?} is not a CIDR or IP address"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }
}

fn parse_hop(h: &str) -> Option<IpAddr> {
    h.parse::<IpAddr>()
        .ok()
        .or_else(|| h.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(canonical)
}

pub use common::net::{canonical, network, DEFAULT_V6_PREFIX};

/// A key of the `ip-bans` bucket: the IP with `:` written as `_`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BannedIp(pub IpAddr);

impl FromStr for BannedIp {
    type Err = std::net::AddrParseError;
    fn from_str(key: &str) -> Result<Self, Self::Err> {
        events::platform_user::key_to_ip(key)
            .parse()
            .map(|ip| BannedIp(canonical(ip)))
    }
}

/// Resolves the client IP of a request from its peer address and headers.
pub fn resolve(
    parts_ext: &axum::http::Extensions,
    headers: &axum::http::HeaderMap,
    trusted: &TrustedProxies,
) -> IpAddr {
    let peer = parts_ext
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| canonical(c.0.ip()))
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok());
    trusted.client_ip(peer, forwarded)
}

/// Extractor for the client IP.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub IpAddr);

/// Taken from the request's extensions where the IP-ban check put it; else resolved with the
/// state's trusted proxies.
impl<S: Send + Sync> FromRequestParts<S> for ClientIp
where
    TrustedProxies: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ip) = parts.extensions.get::<ClientIp>() {
            return Ok(*ip);
        }
        let trusted = TrustedProxies::from_ref(state);
        let ip = ClientIp(resolve(&parts.extensions, &parts.headers, &trusted));
        parts.extensions.insert(ip);
        Ok(ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_they_claim() {
        let t: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        assert_eq!(
            t.client_ip(ip("203.0.113.9"), ["1.2.3.4"].into_iter()),
            ip("203.0.113.9")
        );
        let none: TrustedProxies = "".parse().unwrap();
        assert_eq!(
            none.client_ip(ip("127.0.0.1"), ["1.2.3.4"].into_iter()),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn a_trusted_proxy_passes_on_the_right_most_untrusted_hop() {
        let t: TrustedProxies = "127.0.0.1, 10.0.0.0/8".parse().unwrap();
        assert_eq!(
            t.client_ip(ip("127.0.0.1"), ["198.51.100.7"].into_iter()),
            ip("198.51.100.7")
        );
        assert_eq!(
            t.client_ip(
                ip("127.0.0.1"),
                ["6.6.6.6, 198.51.100.7, 10.1.2.3"].into_iter()
            ),
            ip("198.51.100.7"),
            "the forged left-most hop is ignored, trusted hops are skipped"
        );
        assert_eq!(
            t.client_ip(ip("10.0.0.2"), ["garbage", "198.51.100.7:443"].into_iter()),
            ip("198.51.100.7")
        );
        assert_eq!(
            t.client_ip(ip("10.0.0.2"), std::iter::empty()),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn bad_proxy_lists_are_refused_at_start() {
        assert!("10.0.0.0/8,nonsense".parse::<TrustedProxies>().is_err());
        assert!("::1, 192.168.0.0/16".parse::<TrustedProxies>().is_ok());
    }
}
