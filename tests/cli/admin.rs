//! `pathmq user|group|permission …`: administration on the broker's store file, then a
//! login over MQTT to the broker started on that file.

use std::io::{BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{BIN, wait_for_line};

const ANN_PASSWORD: &str = "ann-Secret-4711";
const BOB_PASSWORD: &str = "bob-Secret-0815";
const ADMIN_PASSWORD: &str = "admin-Secret-42";

/// The admin commands of one store file, with a config file that makes bcrypt cheap.
struct Admin {
    config: PathBuf,
    store: PathBuf,
}

impl Admin {
    fn new(dir: &Path, config: &str) -> Self {
        let file = dir.join("pathmq.toml");
        std::fs::write(&file, config).unwrap();
        Self {
            config: file,
            store: dir.join("data").join("x.redb"),
        }
    }

    /// Runs `pathmq --config … --storage-path … <args>` with `stdin` and extra `env`.
    fn run(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .arg("--storage-path")
            .arg(&self.store)
            .args(args)
            .envs(env.iter().copied())
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    }

    /// [`Admin::run`], which must succeed and never show a password; returns stdout.
    fn ok(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> String {
        let out = self.run(args, stdin, env);
        let (stdout, stderr) = texts(&out);
        assert!(out.status.success(), "{args:?} failed:\n{stdout}\n{stderr}");
        for password in [ANN_PASSWORD, BOB_PASSWORD, ADMIN_PASSWORD] {
            assert!(
                !stdout.contains(password) && !stderr.contains(password),
                "{args:?} printed a password:\n{stdout}\n{stderr}"
            );
        }
        stdout
    }

    /// [`Admin::run`], which must fail; returns stderr.
    fn fails(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run(args, "", env);
        let (stdout, stderr) = texts(&out);
        assert!(!out.status.success(), "{args:?} succeeded:\n{stdout}");
        stderr
    }
}

fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn users_added_from_the_command_line_log_in_over_mqtt() {
    let dir = tempfile::tempdir().unwrap();
    let admin = Admin::new(dir.path(), "[security]\nbcrypt_cost = 4\n");

    // Reading a store that does not exist does not create it.
    let stderr = admin.fails(&["user", "list"], &[]);
    assert!(stderr.contains("no store"), "{stderr}");
    assert!(!admin.store.exists());

    let out = admin.ok(
        &[
            "group",
            "add",
            "devices",
            "--custom-data",
            r#"{"floor": 3}"#,
        ],
        "",
        &[],
    );
    assert!(out.contains("group `devices` created"), "{out}");
    let add_ann = [
        "user",
        "add",
        "ann",
        "--password-stdin",
        "--group",
        "devices",
        "--custom-data",
        r#"{"room": "7"}"#,
    ];
    let out = admin.ok(&add_ann, &format!("{ANN_PASSWORD}\n"), &[]);
    assert!(out.contains("user `ann` created"), "{out}");
    let bob = ["user", "add", "bob", "--password-env", "BOB_PW"];
    admin.ok(&bob, "", &[("BOB_PW", BOB_PASSWORD)]);
    for args in [
        ["allow", "--group", "devices", "/sensors/*", "on"],
        ["prohibit", "--user", "ann", "/sensors/private/*", "*"],
    ] {
        let out = admin.ok(&[&["permission"][..], &args].concat(), "", &[]);
        assert!(
            out.contains("allowed") || out.contains("prohibited"),
            "{out}"
        );
    }

    let list = admin.ok(&["user", "list"], "", &[]);
    assert!(list.contains("ann  groups: devices"), "{list}");
    assert!(list.contains(r#"custom_data: {"room":"7"}"#), "{list}");
    let users: serde_json::Value =
        serde_json::from_str(&admin.ok(&["user", "list", "--json"], "", &[])).unwrap();
    assert_eq!(users.as_array().map(Vec::len), Some(2), "{users}");
    let shown = admin.ok(&["user", "show", "ann"], "", &[]);
    let ann: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(ann["groups"], serde_json::json!(["devices"]));
    assert_eq!(ann["custom_data"]["room"], "7");
    assert_eq!(ann["has_password"], true);
    assert!(
        !shown.contains("password_hash") && !shown.contains("$2"),
        "never the hash: {shown}"
    );
    let group = admin.ok(&["group", "show", "devices"], "", &[]);
    let group: serde_json::Value = serde_json::from_str(&group).unwrap();
    assert_eq!(
        group["permissions"]["/sensors/*"]["actions"],
        serde_json::json!(["on"])
    );
    assert_eq!(group["members"], serde_json::json!(["ann"]));

    // A broker on the same file: the file is in use, and ann logs in.
    let broker = Broker::start(&admin);
    let stderr = admin.fails(&["user", "list"], &[]);
    assert!(
        stderr.contains("is in use") && stderr.contains("stop the broker"),
        "{stderr}"
    );
    let mut mqtt = mqtt_connect(broker.port, "ann", ANN_PASSWORD);
    assert_eq!(subscribe(&mut mqtt, 1, "sensors/x"), 0x00, "group allow");
    assert_eq!(
        subscribe(&mut mqtt, 2, "sensors/private/x"),
        0x80,
        "prohibit"
    );
    let mut refused = TcpStream::connect(("127.0.0.1", broker.port)).unwrap();
    refused
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    refused
        .write_all(&connect_packet("c2", "ann", "wrong password"))
        .unwrap();
    let mut connack = [0u8; 4];
    refused.read_exact(&mut connack).unwrap();
    assert_eq!(connack, [0x20, 2, 0, 4], "a wrong password is refused");
    broker.stop();

    // Stopped: the file can be administered again.
    let new_password = [("ANN_NEW", BOB_PASSWORD)];
    let passwd = ["user", "passwd", "ann", "--password-env", "ANN_NEW"];
    admin.ok(&passwd, "", &new_password);
    admin.ok(&["user", "remove", "bob"], "", &[]);
    let stderr = admin.fails(&["user", "show", "bob"], &[]);
    assert!(stderr.contains("there is no user `bob`"), "{stderr}");
}

/// What the commands refuse, and why.
#[test]
fn admin_commands_refuse_what_would_be_lost_or_leak() {
    let dir = tempfile::tempdir().unwrap();
    let volatile = Admin::new(dir.path(), "[security]\npersist_permissions = false\n");
    let stderr = volatile.fails(&["permission", "allow", "--group", "g", "/a/*", "get"], &[]);
    assert!(stderr.contains("persist_permissions"), "{stderr}");

    let memory = ["--storage-engine", "memory", "user", "list"];
    let stderr = volatile.fails(&memory, &[]);
    assert!(stderr.contains("memory"), "{stderr}");

    // A password is never an argument.
    let stderr = volatile.fails(&["user", "add", "x", "--password", "hunter2"], &[]);
    assert!(stderr.contains("--password"), "{stderr}");
    let stderr = volatile.fails(&["user", "passwd", "x"], &[]);
    assert!(stderr.contains("--password-stdin"), "{stderr}");
}

/// A broker child process on the admin's store, with MQTT on a free port.
struct Broker {
    child: std::process::Child,
    stderr: BufReader<std::process::ChildStderr>,
    log: String,
    port: u16,
    exited: Arc<AtomicBool>,
}

impl Broker {
    fn start(admin: &Admin) -> Self {
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(&admin.config)
            .arg("--storage-path")
            .arg(&admin.store)
            .args([
                "--secure",
                "--http-disabled",
                "--mqtt-listen",
                "127.0.0.1:0",
            ])
            .env("PATHMQ_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        // A watchdog: should the broker hang, the blocking reads below end when it is
        // killed. It does nothing once the broker has exited.
        let exited = Arc::new(AtomicBool::new(false));
        let (pid, done) = (child.id().to_string(), exited.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(60));
            if !done.load(Ordering::SeqCst) {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
            }
        });
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut log = String::new();
        let line = wait_for_line(&mut stderr, "MQTT listening", &mut log);
        let port = (line.split("127.0.0.1:").nth(1))
            .map(|rest| {
                rest.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            })
            .and_then(|digits| digits.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Self {
            child,
            stderr,
            log,
            port,
            exited,
        }
    }

    /// SIGINT, then waits (bounded) for a clean exit.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap()
                .success()
        );
        wait_for_line(&mut self.stderr, "stopped", &mut self.log);
        let deadline = Instant::now() + Duration::from_secs(10);
        let exit = loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                break exit;
            }
            assert!(
                Instant::now() < deadline,
                "no exit after SIGINT:\n{}",
                self.log
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        self.exited.store(true, Ordering::SeqCst);
        assert!(exit.success(), "exit status {exit:?}:\n{}", self.log);
    }
}

/// An MQTT 3.1.1 CONNECT with a user name and password (clean session, keepalive 30 s).
fn connect_packet(client_id: &str, username: &str, password: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0xC2, 0, 30];
    for field in [client_id, username, password] {
        body.extend((field.len() as u16).to_be_bytes());
        body.extend(field.as_bytes());
    }
    assert!(body.len() < 128, "one-byte remaining length");
    [vec![0x10, body.len() as u8], body].concat()
}

/// Connects and logs in; panics unless the CONNACK accepts.
fn mqtt_connect(port: u16, username: &str, password: &str) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(&connect_packet("c1", username, password))
        .unwrap();
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack).unwrap();
    assert_eq!(connack, [0x20, 2, 0, 0], "{username} logs in");
    stream
}

/// SUBSCRIBE to `filter` at QoS 0; returns the SUBACK's return code.
fn subscribe(stream: &mut TcpStream, id: u8, filter: &str) -> u8 {
    let mut body = vec![0, id];
    body.extend((filter.len() as u16).to_be_bytes());
    body.extend(filter.as_bytes());
    body.push(0);
    stream
        .write_all(&[vec![0x82, body.len() as u8], body].concat())
        .unwrap();
    let mut suback = [0u8; 5];
    stream.read_exact(&mut suback).unwrap();
    assert_eq!(suback[..4], [0x90, 3, 0, id], "a SUBACK for {filter}");
    suback[4]
}
