//! Tally over TLS to Redis (`rediss://`), as managed Redis services require: a real
//! redis-server with a TLS port and a throwaway CA made here. Counting, reading and health work
//! over TLS; a certificate from another CA, a server that does not speak TLS, and a TLS server
//! asked in plain text are each refused with a 503 within the connect bound, never a hang.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use support::{get, post, require_components, start_with, stored_count, tally_manifest};
use tally_host::runtime::HostOptions;
use tally_host::shards::{RedisShards, ShardOptions, ShardTls};
use tally_host::spin_redis::RedisPolicy;

/// A CA and a certificate it signed for 127.0.0.1, written as PEM files into `dir`.
/// Returns the CA's PEM.
fn make_pki(dir: &Path, name: &str) -> (ShardTls, Vec<u8>) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("Tally test CA {name}"));
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let tls = ShardTls {
        cert_file: dir.join(format!("{name}-server.pem")),
        key_file: dir.join(format!("{name}-server.key")),
        ca_file: dir.join(format!("{name}-ca.pem")),
    };
    std::fs::write(&tls.cert_file, cert.pem()).unwrap();
    std::fs::write(&tls.key_file, key.serialize_pem()).unwrap();
    std::fs::write(&tls.ca_file, ca.pem()).unwrap();
    (tls, ca.pem().into_bytes())
}

fn options(ca: &[u8]) -> HostOptions {
    HostOptions {
        redis: RedisPolicy {
            tls_root_cert: Some(std::sync::Arc::new(ca.to_vec())),
            ..RedisPolicy::default()
        },
        ..HostOptions::default()
    }
}

#[test]
fn counts_reads_and_health_work_over_tls_and_bad_tls_fails_fast() {
    require_components();
    let dir = tempfile::tempdir().unwrap();
    let (tls, ca) = make_pki(dir.path(), "good");
    let (_, other_ca) = make_pki(dir.path(), "other");
    let shards = RedisShards::start_with(
        1,
        ShardOptions {
            password: Some("tls-test-password".into()),
            tls: Some(tls),
            ..ShardOptions::default()
        },
    )
    .unwrap();
    let shard = &shards.shards()[0];
    let tls_url = shard.tls_url().unwrap();
    assert!(tls_url.starts_with("rediss://"), "{tls_url}");

    // Counting, reading and health, over TLS.
    let host = start_with(
        &tally_manifest(),
        &[("shards", format!("a={tls_url}"))],
        options(&ca),
    );
    for expected in 1..=3 {
        let reply = post(&host.url("/visit/over-tls"), "application/json", "");
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.json()["count"], expected);
    }
    let read = get(&host.url("/visits/over-tls"));
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.json()["count"], 3);
    let health = get(&host.url("/health"));
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.json()["shards"][0]["reachable"], true);
    // The address shown never carries the password.
    assert!(
        !health.body.contains("tls-test-password"),
        "{}",
        health.body
    );
    // The visits are on the shard (read over its plain port, bypassing Tally).
    assert_eq!(stored_count(shard, "over-tls"), Some(3));
    drop(host);

    // Refused, quickly, each with a 503: a certificate from a CA not trusted; a server that
    // does not speak TLS (the shard's plain port); a TLS port asked in plain text.
    let plain_port = shard.url().replacen("redis://", "rediss://", 1);
    let tls_as_plain = tls_url.replacen("rediss://", "redis://", 1);
    for (case, url, ca) in [
        ("untrusted CA", &tls_url, &other_ca),
        ("plain-text server", &plain_port, &ca),
        ("TLS server asked in plain text", &tls_as_plain, &ca),
    ] {
        let host = start_with(
            &tally_manifest(),
            &[("shards", format!("a={url}"))],
            options(ca),
        );
        let started = Instant::now();
        let reply = post(&host.url("/visit/over-tls"), "application/json", "");
        let took = started.elapsed();
        assert_eq!(reply.status, 503, "{case}: {}", reply.body);
        assert!(reply.header("retry-after").is_some(), "{case}");
        // Not a hang: within the connect and command bounds (1 s and 2 s) and some slack.
        assert!(took < Duration::from_secs(5), "{case}: took {took:?}");
        let health = get(&host.url("/health"));
        assert_eq!(health.json()["shards"][0]["reachable"], false, "{case}");
    }
    assert_eq!(stored_count(shard, "over-tls"), Some(3));
}
