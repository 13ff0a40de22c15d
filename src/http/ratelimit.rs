//! Per-client-IP rate limits (fixed windows kept in memory) and the client IP itself,
//! taken from forwarding headers only when the peer is a trusted proxy.

use rocket::request::{FromRequest, Outcome, Request};
use rocket_okapi::gen::OpenApiGenerator;
use rocket_okapi::okapi::openapi3::Responses;
use rocket_okapi::request::{OpenApiFromRequest, RequestHeaderInput};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use crate::config::{parse_cidr, Config, RateLimit};
use crate::http::error::{document_error, ApiError};
use crate::http::AppState;

fn in_cidr(ip: IpAddr, (net, bits): (IpAddr, u8)) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

fn trusted(ip: IpAddr, config: &Config) -> bool {
    config
        .trusted_proxies
        .iter()
        .filter_map(|c| parse_cidr(c))
        .any(|net| in_cidr(ip, net))
}

/// The client's address: the peer, unless the peer is a trusted proxy, in which case the
/// nearest untrusted address of `X-Forwarded-For` (or `X-Real-IP`).
pub fn client_ip(req: &Request<'_>, config: &Config) -> Option<IpAddr> {
    let peer = req.remote()?.ip();
    if !trusted(peer, config) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get("X-Forwarded-For")
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    if let Some(ip) = forwarded.iter().rev().find(|ip| !trusted(**ip, config)) {
        return Some(*ip);
    }
    req.headers()
        .get_one("X-Real-IP")
        .and_then(|v| v.trim().parse().ok())
        .or(Some(peer))
}

/// Hits counted in the current window, and when that window began (clock micros).
type Window = (u32, i64);

#[derive(Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<(&'static str, IpAddr), Window>>,
}

impl RateLimiter {
    /// Counts one hit at `now` (clock micros); past `limit` in the current window, the
    /// seconds until it resets.
    pub fn hit(
        &self,
        bucket: &'static str,
        ip: IpAddr,
        limit: u32,
        window: Duration,
        now: i64,
    ) -> Result<(), u64> {
        let window = window.as_micros() as i64;
        let mut windows = self.windows.lock().map_err(|_| 1u64)?;
        if windows.len() > 100_000 {
            windows.retain(|_, (_, start)| now - *start < HOUR.as_micros() as i64);
        }
        let entry = windows.entry((bucket, ip)).or_insert((0, now));
        if now - entry.1 >= window {
            *entry = (0, now);
        }
        if entry.0 >= limit {
            let left = window - (now - entry.1);
            return Err((left / 1_000_000).max(1) as u64);
        }
        entry.0 += 1;
        Ok(())
    }
}

/// A rate-limited action.
pub trait Bucket: Send + Sync + 'static {
    const NAME: &'static str;
    fn limit(config: &RateLimit) -> (u32, Duration);
}

pub struct Login;
pub struct Register;
pub struct ForgotPassword;
pub struct VerifyRequest;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

impl Bucket for Login {
    const NAME: &'static str = "login";
    fn limit(c: &RateLimit) -> (u32, Duration) {
        (c.login_per_minute, MINUTE)
    }
}
impl Bucket for Register {
    const NAME: &'static str = "register";
    fn limit(c: &RateLimit) -> (u32, Duration) {
        (c.register_per_hour, HOUR)
    }
}
impl Bucket for ForgotPassword {
    const NAME: &'static str = "forgot_password";
    fn limit(c: &RateLimit) -> (u32, Duration) {
        (c.forgot_password_per_hour, HOUR)
    }
}
impl Bucket for VerifyRequest {
    const NAME: &'static str = "verify_request";
    fn limit(c: &RateLimit) -> (u32, Duration) {
        (c.verify_request_per_hour, HOUR)
    }
}

/// A request guard that counts the request against bucket `B` for the client's IP.
pub struct Limited<B>(PhantomData<B>);

#[rocket::async_trait]
impl<'r, B: Bucket> FromRequest<'r> for Limited<B> {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let Some(state) = req.rocket().state::<AppState>() else {
            return Outcome::Error((ApiError::Internal("no state".into()).stash(req), ()));
        };
        let config = &state.config;
        if !config.rate_limit.enabled {
            return Outcome::Success(Limited(PhantomData));
        }
        let ip = client_ip(req, config).unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let (limit, window) = B::limit(&config.rate_limit);
        match state
            .limiter
            .hit(B::NAME, ip, limit, window, state.clock.now())
        {
            Ok(()) => Outcome::Success(Limited(PhantomData)),
            Err(retry_after_secs) => {
                state.metrics.count("rate_limited", 1);
                Outcome::Error((
                    ApiError::TooManyRequests { retry_after_secs }.stash(req),
                    (),
                ))
            }
        }
    }
}

impl<'r, B: Bucket> OpenApiFromRequest<'r> for Limited<B> {
    fn from_request_input(
        _gen: &mut OpenApiGenerator,
        _name: String,
        _required: bool,
    ) -> rocket_okapi::Result<RequestHeaderInput> {
        Ok(RequestHeaderInput::None)
    }

    fn get_responses(gen: &mut OpenApiGenerator) -> rocket_okapi::Result<Responses> {
        let mut responses = Responses::default();
        document_error(
            gen,
            &mut responses,
            429,
            "Rate limited per client IP; see `Retry-After`",
        );
        Ok(responses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_limit_and_reset() {
        let limiter = RateLimiter::default();
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let other: IpAddr = "10.1.2.4".parse().unwrap();
        let window = MINUTE;
        let at = |secs: i64| 1_000_000_000 + secs * 1_000_000;
        assert_eq!(limiter.hit("x", ip, 2, window, at(0)), Ok(()));
        assert_eq!(limiter.hit("x", ip, 2, window, at(10)), Ok(()));
        assert_eq!(limiter.hit("x", ip, 2, window, at(20)), Err(40));
        assert_eq!(limiter.hit("y", ip, 2, window, at(20)), Ok(()));
        assert_eq!(limiter.hit("x", other, 2, window, at(20)), Ok(()));
        assert_eq!(limiter.hit("x", ip, 2, window, at(59)), Err(1));
        // A new window begins a full window after the first hit.
        assert_eq!(limiter.hit("x", ip, 2, window, at(60)), Ok(()));
        assert_eq!(limiter.hit("x", ip, 2, window, at(61)), Ok(()));
        assert_eq!(limiter.hit("x", ip, 2, window, at(62)), Err(58));
    }

    #[test]
    fn old_windows_are_dropped_past_100_000_clients() {
        let limiter = RateLimiter::default();
        let at = |secs: i64| 1_000_000_000 + secs * 1_000_000;
        let client = |n: u32| IpAddr::from(std::net::Ipv4Addr::from(n));
        let hit = |n: u32, secs: i64| limiter.hit("x", client(n), 5, MINUTE, at(secs));
        let kept = || limiter.windows.lock().unwrap().len();
        for n in 0..99_999 {
            hit(n, 0).unwrap();
        }
        hit(99_999, 1).unwrap();
        // 100,000 windows are kept as they are.
        hit(100_000, 3600).unwrap();
        assert_eq!(kept(), 100_001);
        // Past that, windows that began an hour ago or more go.
        hit(100_001, 3600).unwrap();
        assert_eq!(
            kept(),
            3,
            "the one of 1 s, the one of 3600 s and the new one"
        );
    }

    #[test]
    fn cidrs_match() {
        let cases = [
            ("10.0.0.0/8", "10.200.1.1", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("10.0.0.0/8", "9.255.255.255", false),
            ("192.168.1.0/24", "192.168.1.77", true),
            ("192.168.1.0/24", "192.168.2.77", false),
            ("10.0.0.1", "10.0.0.1", true),
            ("10.0.0.1", "10.0.0.2", false),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("10.0.0.0/8", "::ffff:10.0.0.1", false),
            ("::1", "::1", true),
            ("::1", "::2", false),
            ("2001:db8::/32", "2001:db8:1::5", true),
            ("2001:db8::/32", "2001:db9::1", false),
            ("::/0", "2001:db9::1", true),
            ("::/0", "10.0.0.1", false),
        ];
        for (net, ip, inside) in cases {
            let parsed = parse_cidr(net).unwrap();
            assert_eq!(
                in_cidr(ip.parse().unwrap(), parsed),
                inside,
                "{ip} in {net}"
            );
        }
    }
}
