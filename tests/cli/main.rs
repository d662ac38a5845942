//! The `pathmq` binary: `--help`, configuration errors, start-up on free ports and a
//! graceful shutdown on SIGINT; the administration subcommands in `admin`.

mod admin;
mod crash;

use std::io::{BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_pathmq");

mod logs;
mod tls;

#[test]
fn help_documents_every_option() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--config",
        "--name",
        "--http-listen",
        "--http-disabled",
        "--mqtt-listen",
        "--mqtt-disabled",
        "--mqtt-max-packet-size",
        "--mqtt-max-keepalive-s",
        "--mqtt-max-session-expiry-s",
        "--mqtt-max-queued-messages",
        "--mqtt-max-queued-bytes",
        "--mqtt-topic-alias-maximum",
        "--storage-engine",
        "--storage-path",
        "--max-connections",
        "--handshake-timeout-ms",
        "--session-queue",
        "--session-queue-bytes",
        "--overflow",
        "--max-payload",
        "--heartbeat-interval-ms",
        "--shutdown-timeout-ms",
        "--log-format",
        "--log-level",
        "--native-tcp-listen",
        "--secure",
        "--admin-password",
        "--mqtt-tls-listen",
        "--http-tls",
        "--http-keepalive-timeout-ms",
        "--native-tcp-tls",
        "--tls-cert-path",
        "--tls-key-path",
        "--tls-client-ca-path",
        "--tls-require-client-certificate",
        "--tls-use-identity-as-username",
    ] {
        assert!(help.contains(flag), "--help must document {flag}:\n{help}");
    }
    assert!(
        help.contains("PATHMQ_MQTT_LISTEN"),
        "--help names the environment variables"
    );
}

/// Starting secure without an admin password is an error that says how to set one
/// (issue 5); the password itself is never echoed.
#[test]
fn secure_without_an_admin_password_says_how_to_set_one() {
    let out = Command::new(BIN)
        .args(["--secure", "--storage-engine", "memory"])
        .env_remove("PATHMQ_ADMIN_PASSWORD")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PATHMQ_ADMIN_PASSWORD"), "{stderr}");
}

#[test]
fn a_bad_config_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pathmq.toml");
    std::fs::write(&file, "[limits]\nsession_queue = \"many\"\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("session_queue"), "{stderr}");

    let out = Command::new(BIN)
        .env("PATHMQ_MQTT_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mqtt-listen"), "{stderr}");
}

/// Reads log lines until one contains `needle`; returns the line.
fn wait_for_line(reader: &mut impl std::io::BufRead, needle: &str, log: &mut String) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            Instant::now() < deadline,
            "no log line with {needle:?}:\n{log}"
        );
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            panic!("the broker exited before logging {needle:?}:\n{log}");
        }
        log.push_str(&line);
        if line.contains(needle) {
            return line;
        }
    }
}

#[test]
fn starts_serves_and_stops_gracefully_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args([
            "--http-listen",
            "127.0.0.1:0",
            "--mqtt-listen",
            "127.0.0.1:0",
            "--log-format",
            "text",
        ])
        .arg("--storage-path")
        .arg(dir.path().join("d").join("pathmq.redb"))
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // A watchdog: should the broker hang without logging, the blocking reads below end
    // when it is killed.
    let pid = child.id().to_string();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(60));
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
    });
    let mut log = String::new();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let line = wait_for_line(&mut stderr, "MQTT listening", &mut log);
    let addr = line
        .split("127.0.0.1:")
        .nth(1)
        .expect("address in the log line");
    let port: u16 = addr
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap();

    // An MQTT 3.1.1 CONNECT is accepted.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(&[
            0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 30, 0, 2, b'c', b'1',
        ])
        .unwrap();
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack).unwrap();
    assert_eq!(connack, [0x20, 2, 0, 0]);

    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_for_line(&mut stderr, "stopped", &mut log);
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the broker did not exit after SIGINT:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "exit status {exit:?}:\n{log}");
    assert!(
        log.contains("session attached"),
        "a line when a session attaches:\n{log}"
    );
    // The open MQTT connection was closed by the shutdown.
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
}
