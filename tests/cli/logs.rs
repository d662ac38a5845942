//! Passwords never reach the logs (issue 5, docs/SECURITY.md): the real binary, secure,
//! logging everything, adds a user (`pathmq user add`), then `_ADMIN` and that user log in
//! over MQTT 3.1.1, MQTT 5, MQTT over WebSocket and the native WebSocket protocol with the
//! right password, a wrong one, and as an unknown user. Neither the admin password nor
//! any password tried may appear on stdout or stderr, as text or hex-encoded (a frame
//! dump).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use super::BIN;

/// Every wait here is bounded by this.
const WAIT: Duration = Duration::from_secs(20);

const ADMIN_PASSWORD: &str = "Sup3r-S3cret-pw-XYZ";
/// A wrong password for `_ADMIN`.
const WRONG_PASSWORD: &str = "Wr0ng-S3cret-pw-QRS";
/// The password of a login as a user that does not exist.
const UNKNOWN_USER_PASSWORD: &str = "Unkn0wn-S3cret-pw-JKL";
/// The password of `ann`, added with `pathmq user add`.
const USER_PASSWORD: &str = "Us3r-S3cret-pw-ABC";

/// A config file (cheap bcrypt) and a store file in a temporary folder.
struct Files {
    _dir: tempfile::TempDir,
    config: PathBuf,
    store: PathBuf,
}

impl Files {
    fn new() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("pathmq.toml");
        std::fs::write(&config, "[security]\nbcrypt_cost = 4\n").unwrap();
        let store = dir.path().join("data").join("pathmq.redb");
        Files {
            _dir: dir,
            config,
            store,
        }
    }

    /// `pathmq --config … --storage-path …` with `RUST_LOG=rust_log`.
    fn command(&self, rust_log: &str) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg("--config")
            .arg(&self.config)
            .arg("--storage-path")
            .arg(&self.store)
            .env("RUST_LOG", rust_log)
            .env("NO_COLOR", "1")
            .env_remove("PATHMQ_ADMIN_PASSWORD")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Adds the user `ann` (password from the environment); answers the command's output.
    fn add_user(&self, rust_log: &str) -> String {
        let out = self
            .command(rust_log)
            .args(["user", "add", "ann", "--password-env", "ANN_PW"])
            .env("ANN_PW", USER_PASSWORD)
            .output()
            .unwrap();
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "user add failed:\n{output}");
        output
    }
}

/// The broker process; killed if the test ends early.
struct Broker {
    child: Child,
    /// Everything written to stdout and stderr so far.
    output: Arc<Mutex<String>>,
    /// stderr's lines, as they come.
    lines: mpsc::UnboundedReceiver<String>,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Broker {
    /// Starts the binary on `files`, secure, with `RUST_LOG=rust_log`, on free ports.
    fn start(files: &Files, rust_log: &str) -> Broker {
        let mut child = files
            .command(rust_log)
            .args([
                "--secure",
                "--admin-password",
                ADMIN_PASSWORD,
                "--http-listen",
                "127.0.0.1:0",
                "--mqtt-listen",
                "127.0.0.1:0",
                "--log-format",
                "text",
            ])
            .spawn()
            .unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = mpsc::unbounded_channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for (stream, tx) in [
            (Box::new(stdout) as Box<dyn std::io::Read + Send>, None),
            (Box::new(stderr), Some(tx)),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                use std::io::BufRead as _;
                let mut reader = std::io::BufReader::new(stream);
                let mut line = Vec::new();
                // Lines as bytes: a non-UTF-8 dump must not end the capture.
                while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                    let text = String::from_utf8_lossy(&line).into_owned();
                    output.lock().unwrap().push_str(&text);
                    if let Some(tx) = &tx {
                        let _ = tx.send(text);
                    }
                    line.clear();
                }
            });
        }
        Broker {
            child,
            output,
            lines,
        }
    }

    /// Waits for a stderr line containing `needle`; answers the address in its `addr=`.
    async fn addr_from(&mut self, needle: &str) -> std::net::SocketAddr {
        let line = tokio::time::timeout(WAIT, async {
            loop {
                match self.lines.recv().await {
                    Some(line) if line.contains(needle) => return line,
                    Some(_) => {}
                    None => panic!("the broker exited before logging {needle:?}"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no log line with {needle:?}:\n{}", self.log()));
        let addr = line.split("addr=").nth(1).expect("an addr= field");
        let addr: String = addr.chars().take_while(|c| !c.is_whitespace()).collect();
        addr.parse().expect("a socket address")
    }

    fn log(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Stops the broker with SIGINT, waits for it and answers everything it wrote.
    async fn stop(mut self) -> String {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exited = tokio::time::timeout(WAIT, async {
            loop {
                if let Some(status) = self.child.try_wait().unwrap() {
                    return status;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the broker did not exit:\n{}", self.log()));
        assert!(exited.success(), "{exited:?}:\n{}", self.log());
        // The readers end at EOF, once the process has closed its pipes.
        tokio::time::timeout(WAIT, async { while self.lines.recv().await.is_some() {} })
            .await
            .expect("stderr closed");
        self.log()
    }
}

/// An MQTT CONNECT (protocol level 4 or 5) with a user name and password.
fn connect_packet(level: u8, client_id: &str, username: &str, password: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', level, 0xC2, 0, 30];
    if level == 5 {
        body.push(0); // no properties
    }
    for field in [client_id, username, password] {
        body.extend_from_slice(&u16::try_from(field.len()).unwrap().to_be_bytes());
        body.extend_from_slice(field.as_bytes());
    }
    let mut packet = vec![0x10, u8::try_from(body.len()).expect("a short CONNECT")];
    packet.extend(body);
    packet
}

/// The CONNACK code for a CONNECT over TCP.
async fn mqtt_login(addr: std::net::SocketAddr, level: u8, user: &str, password: &str) -> u8 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let connect = connect_packet(level, "log-test", user, password);
    stream.write_all(&connect).await.unwrap();
    let mut connack = [0u8; 4];
    tokio::time::timeout(WAIT, stream.read_exact(&mut connack))
        .await
        .expect("a CONNACK in time")
        .expect("a CONNACK");
    assert_eq!(connack[0], 0x20, "{connack:?}");
    if connack[3] == 0 {
        stream.write_all(&[0xE0, 0]).await.unwrap(); // DISCONNECT
    }
    connack[3]
}

/// The CONNACK code for a 3.1.1 CONNECT over WebSocket (`/mqtt`, subprotocol `mqtt`).
async fn mqtt_ws_login(http: std::net::SocketAddr, user: &str, password: &str) -> u8 {
    let mut request = format!("ws://{http}/mqtt").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "mqtt".parse().unwrap());
    let (mut ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("a WebSocket in time")
        .expect("a WebSocket");
    let connect = connect_packet(4, "log-test-ws", user, password);
    ws.send(Message::binary(connect)).await.unwrap();
    let answer = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(bytes))) => return bytes,
                Some(Ok(_)) => {}
                other => panic!("no CONNACK: {other:?}"),
            }
        }
    })
    .await
    .expect("a CONNACK in time");
    assert_eq!(answer.first(), Some(&0x20), "{answer:?}");
    let _ = ws.close(None).await;
    answer[3]
}

/// The status of a native `login` over WebSocket: `Ok` or the error code.
async fn native_login(http: std::net::SocketAddr, user: &str, password: &str) -> Result<(), i64> {
    let (mut ws, _) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::connect_async(format!("ws://{http}/")),
    )
    .await
    .expect("a WebSocket in time")
    .expect("a WebSocket");
    let frames = [
        json!({"action": "configure-session", "eventId": 1, "data": {"protocol": "happn_4"}}),
        json!({"action": "login", "eventId": 2,
               "data": {"username": user, "password": password, "protocol": "happn_4"}}),
    ];
    for frame in frames {
        ws.send(Message::text(frame.to_string())).await.unwrap();
    }
    let meta = tokio::time::timeout(WAIT, async {
        loop {
            let Some(Ok(Message::Text(text))) = ws.next().await else {
                panic!("the connection ended before the login was answered");
            };
            let Ok(frame) = serde_json::from_str::<Value>(&text) else {
                continue; // a heartbeat
            };
            if frame["_meta"]["eventId"] == 2 {
                return frame["_meta"].clone();
            }
        }
    })
    .await
    .expect("a login answer in time");
    let _ = ws.close(None).await;
    match meta["status"].as_str() {
        Some("ok") => Ok(()),
        _ => Err(meta["error"]["code"].as_i64().unwrap_or_default()),
    }
}

/// Adds a user, logs in every way, right and wrong, then stops the broker; answers all
/// the output.
async fn logins_then_output(rust_log: &str) -> String {
    let files = Files::new();
    let added = files.add_user(rust_log);
    let mut broker = Broker::start(&files, rust_log);
    let mqtt = broker.addr_from("MQTT listening").await;
    let http = broker.addr_from("HTTP listening").await;
    for level in [4, 5] {
        let refused = if level == 5 { 0x86 } else { 4 };
        assert_eq!(mqtt_login(mqtt, level, "_ADMIN", ADMIN_PASSWORD).await, 0);
        assert_eq!(mqtt_login(mqtt, level, "ann", USER_PASSWORD).await, 0);
        assert_eq!(
            mqtt_login(mqtt, level, "ann", WRONG_PASSWORD).await,
            refused
        );
        assert_eq!(
            mqtt_login(mqtt, level, "_ADMIN", WRONG_PASSWORD).await,
            refused
        );
        assert_eq!(
            mqtt_login(mqtt, level, "nobody", UNKNOWN_USER_PASSWORD).await,
            refused
        );
    }
    assert_eq!(mqtt_ws_login(http, "_ADMIN", ADMIN_PASSWORD).await, 0);
    assert_eq!(mqtt_ws_login(http, "_ADMIN", WRONG_PASSWORD).await, 4);
    assert_eq!(mqtt_ws_login(http, "ann", USER_PASSWORD).await, 0);
    assert_eq!(native_login(http, "_ADMIN", ADMIN_PASSWORD).await, Ok(()));
    assert_eq!(native_login(http, "ann", USER_PASSWORD).await, Ok(()));
    assert_eq!(native_login(http, "_ADMIN", WRONG_PASSWORD).await, Err(401));
    assert_eq!(
        native_login(http, "nobody", UNKNOWN_USER_PASSWORD).await,
        Err(401)
    );
    added + &broker.stop().await
}

/// Asserts that no password tried appears in `log`, as text or as hex.
fn assert_no_password(log: &str) {
    assert!(
        log.contains("MQTT client logged in") && log.contains("session logged in"),
        "the logins were logged:\n{log}"
    );
    let log_lower = log.to_lowercase();
    for password in [
        ADMIN_PASSWORD,
        USER_PASSWORD,
        WRONG_PASSWORD,
        UNKNOWN_USER_PASSWORD,
    ] {
        let hex: String = password.bytes().map(|b| format!("{b:02x}")).collect();
        for (form, found) in [
            ("as text", log.contains(password)),
            ("hex-encoded", log_lower.contains(&hex)),
        ] {
            let lines: Vec<&str> = log
                .lines()
                .filter(|l| l.contains(password) || l.to_lowercase().contains(&hex))
                .take(5)
                .collect();
            assert!(
                !found,
                "{password:?} is in the logs {form}:\n{}",
                lines.join("\n")
            );
        }
    }
}

/// pathmq's own crates at `trace`, everything else at `info`.
#[tokio::test]
async fn passwords_never_appear_in_pathmq_logs() {
    let log = logins_then_output(
        "info,pathmq=trace,pathmq_core=trace,pathmq_storage=trace,pathmq_mqtt=trace,pathmq_native=trace",
    )
    .await;
    assert_no_password(&log);
}

/// `RUST_LOG=trace`: every crate's logs, the WebSocket library's frame dumps included.
#[tokio::test]
async fn passwords_never_appear_in_logs_at_trace() {
    let log = logins_then_output("trace").await;
    assert_no_password(&log);
}
