//! Which URLs a webhook endpoint may have: `http`/`https` with a host that
//! is not internal. Loopback only when configured, private and link-local
//! ranges and cloud metadata addresses only when their host is listed.

use std::net::IpAddr;

use super::OutboundConfig;

/// Why a URL is refused, or `Ok` with it normalised.
pub fn check(url: &str, config: &OutboundConfig) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be http or https".to_owned());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry credentials".to_owned());
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| "must name a host".to_owned())?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    if config
        .allowed_hosts
        .iter()
        .any(|h| h.eq_ignore_ascii_case(&host))
    {
        return Ok(parsed);
    }
    let loopback = host == "localhost" || host.ends_with(".localhost");
    if loopback {
        return if config.allow_loopback {
            Ok(parsed)
        } else {
            Err("loopback addresses are not allowed".to_owned())
        };
    }
    if host == "metadata.google.internal" || host.ends_with(".internal") {
        return Err("internal host names are not allowed".to_owned());
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        if ip.is_loopback() {
            return if config.allow_loopback {
                Ok(parsed)
            } else {
                Err("loopback addresses are not allowed".to_owned())
            };
        }
        if internal(ip) {
            return Err("internal addresses are not allowed".to_owned());
        }
    }
    Ok(parsed)
}

/// Private, link-local (cloud metadata at 169.254.169.254), unspecified,
/// multicast and unique-local addresses.
fn internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1])
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| internal(IpAddr::V4(v4)) || v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_unless_configured() {
        let strict = OutboundConfig::default();
        for ok in [
            "https://hooks.example.com/in",
            "http://93.184.216.34:8080/x",
        ] {
            assert!(check(ok, &strict).is_ok(), "{ok}");
        }
        for refused in [
            "ftp://example.com/",
            "not a url",
            "http://user:pw@example.com/",
            "http://localhost:9000/",
            "http://127.0.0.1/",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data",
            "http://metadata.google.internal/",
            "http://10.0.0.5/",
            "http://192.168.1.1/",
            "http://172.16.0.1/",
            "http://[fd00:ec2::254]/",
            "http://[::ffff:169.254.169.254]/",
            "http://0.0.0.0/",
        ] {
            assert!(check(refused, &strict).is_err(), "{refused}");
        }
        let local = OutboundConfig {
            allow_loopback: true,
            allowed_hosts: vec!["10.0.0.5".to_owned()],
            ..OutboundConfig::default()
        };
        assert!(check("http://127.0.0.1:8080/hook", &local).is_ok());
        assert!(check("http://localhost/hook", &local).is_ok());
        assert!(check("http://10.0.0.5/hook", &local).is_ok());
        assert!(check("http://169.254.169.254/", &local).is_err());
    }
}
