//! The `tally-host` binary stops the way Kubernetes expects of a pod: on SIGTERM it stops
//! accepting, finishes and answers the request it is serving (the visit counted), and exits 0.
//!
//! The request is provably in flight when the signal is sent: it carries
//! `Expect: 100-continue`, and the server says `100 Continue` only once the component has
//! started reading its body; the body is sent after the host has said it stopped accepting.
//! Meanwhile clients keep sending visits on new connections: every visit answered 200 is on
//! the shard afterwards.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use support::{require_components, stored_count, tally_manifest};
use tally_host::shards::RedisShards;

/// Waits (at most 30 s) for a line of the host's stderr containing `needle`, and returns it.
fn wait_for_line(lines: &mpsc::Receiver<String>, needle: &str) -> String {
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("tally-host never said {needle:?}"));
        if line.contains(needle) {
            return line;
        }
    }
}

/// Reads one HTTP/1.1 response (status line, headers, a `Content-Length` or chunked body).
fn read_response(reader: &mut BufReader<TcpStream>, what: &str) -> (u16, String) {
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    let code = status
        .split(' ')
        .nth(1)
        .unwrap_or_else(|| panic!("no answer to {what}: {status:?}"))
        .parse()
        .unwrap();
    let (mut length, mut chunked) = (0, false);
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap();
            }
            if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.trim().eq_ignore_ascii_case("chunked");
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body).unwrap();
    }
    (code, String::from_utf8(body).unwrap())
}

/// The host process, killed if the test ends early (a failed assertion), so that no process
/// outlives the test.
struct Host(std::process::Child);

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sigterm_answers_the_request_in_flight_refuses_new_connections_and_exits_0() {
    require_components();
    let shards = RedisShards::start(1).unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut host = Host(
        Command::new(env!("CARGO_BIN_EXE_tally-host"))
            .args(["--manifest", tally_manifest().to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0", "--workers", "1", "--quiet"])
            .args(["--state-dir", state.path().to_str().unwrap()])
            .env("SPIN_VARIABLE_SHARDS", shards.shard_list())
            .env("SPIN_VARIABLE_RATE_LIMIT_WRITES", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = host.0.stderr.take().unwrap();
    let (tx, lines) = mpsc::channel();
    let log = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            all.push(line.clone());
            let _ = tx.send(line);
        }
        all
    });
    let serving = wait_for_line(&lines, "tally-host: serving http://");
    let addr: SocketAddr = serving.rsplit("http://").next().unwrap().parse().unwrap();

    // A first visit on a keep-alive connection.
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let body = r#"{"visits":[{"page":"drain","count":1}]}"#;
    let head = format!(
        "POST /visit HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    writer
        .write_all(format!("{head}\r\n{body}").as_bytes())
        .unwrap();
    let (code, reply) = read_response(&mut reader, "the first visit");
    assert_eq!(code, 200, "{reply}");

    // Load: clients sending single visits on fresh connections until they are refused.
    let acknowledged = Arc::new(AtomicU64::new(0));
    let (acks, acked) = mpsc::channel();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let acknowledged = acknowledged.clone();
            let acks = acks.clone();
            std::thread::spawn(move || loop {
                let Ok(stream) = TcpStream::connect(addr) else {
                    return;
                };
                stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                let mut writer = stream.try_clone().unwrap();
                let request = format!(
                    "POST /visit/load HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\
                     Connection: close\r\n\r\n"
                );
                if writer.write_all(request.as_bytes()).is_err() {
                    continue;
                }
                let mut reader = BufReader::new(stream);
                let mut status = String::new();
                if reader.read_line(&mut status).is_err() || status.is_empty() {
                    continue;
                }
                if status.split(' ').nth(1) == Some("200") {
                    acknowledged.fetch_add(1, Ordering::SeqCst);
                    let _ = acks.send(());
                }
            })
        })
        .collect();
    // Some visits through before the signal: wait until there are.
    for _ in 0..20 {
        acked
            .recv_timeout(Duration::from_secs(30))
            .expect("visits under load are answered");
    }

    // The second is in flight: the component is reading its body when SIGTERM arrives.
    writer
        .write_all(format!("{head}Expect: 100-continue\r\n\r\n").as_bytes())
        .unwrap();
    let (code, _) = read_response(&mut reader, "Expect: 100-continue");
    assert_eq!(code, 100);
    let pid = host.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    wait_for_line(&lines, "tally-host: no longer accepting");

    // A new connection is refused; the request in flight still gets its answer.
    assert!(
        TcpStream::connect(addr).is_err(),
        "a connection was accepted after SIGTERM"
    );
    writer.write_all(body.as_bytes()).unwrap();
    let (code, reply) = read_response(&mut reader, "the visit in flight");
    assert_eq!(code, 200, "{reply}");
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["recorded"][0]["count"], 2, "{reply}");

    for client in clients {
        client.join().unwrap();
    }
    let status = host.0.wait().unwrap();
    let said = log.join().unwrap().join("\n");
    assert!(status.success(), "tally-host exited with {status}:\n{said}");
    assert!(said.contains("tally-host: stopped after"), "{said}");
    assert!(!said.contains("still open after"), "{said}");
    assert_eq!(stored_count(&shards.shards()[0], "drain"), Some(2));
    // No acknowledged visit lost (none counted twice either).
    let acknowledged = acknowledged.load(Ordering::SeqCst);
    assert_eq!(
        stored_count(&shards.shards()[0], "load"),
        Some(acknowledged),
        "{acknowledged} visits were answered 200"
    );
}
