//! Private PostgreSQL and NATS servers for the fault tests: a test that
//! stops, kills or rolls back a server must never touch the shared ones on
//! 5432 and 4222, so it starts its own on a free port, in a temporary
//! directory, killed when dropped (also on panic, and with the test process
//! through `PR_SET_PDEATHSIG`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use uuid::Uuid;

/// The nats-server binary the private servers run.
pub const NATS_SERVER: &str = "/usr/sbin/nats-server";
/// Where the PostgreSQL 15 binaries are.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A TCP port free on loopback right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Makes the child die with the test process even if it dies without
/// unwinding.
pub fn die_with_parent(command: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches no Rust state.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// Copies a directory tree (a server's store, to roll it back later).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create a directory");
    for entry in std::fs::read_dir(from).expect("read a directory") {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a file");
        }
    }
}

// ---------------------------------------------------------------------------
// A private nats-server, killed when dropped (also on panic).
// ---------------------------------------------------------------------------

pub struct PrivateNats {
    child: Option<Child>,
    pub port: u16,
    pub store: PathBuf,
    pub dir: tempfile::TempDir,
    starts: u32,
}

impl PrivateNats {
    /// Starts a nats-server with JetStream on a free port and a fresh store.
    pub async fn start() -> PrivateNats {
        let port = free_port();
        let dir = tempfile::Builder::new()
            .prefix("ledger-faults-nats-")
            .tempdir()
            .expect("a temporary directory");
        let store = dir.path().join("store");
        std::fs::create_dir_all(&store).expect("create the store");
        let mut nats = PrivateNats {
            child: None,
            port,
            store,
            dir,
            starts: 0,
        };
        nats.spawn().await;
        nats
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The store of one stream's messages (`.../streams/<name>/msgs`).
    pub fn stream_dir(&self, stream: &str) -> PathBuf {
        self.store
            .join("jetstream")
            .join("$G")
            .join("streams")
            .join(stream)
    }

    pub async fn spawn(&mut self) {
        assert!(self.child.is_none(), "the private nats-server is running");
        self.starts += 1;
        let log = self.dir.path().join(format!("nats-{}.log", self.starts));
        let mut command = Command::new(NATS_SERVER);
        command
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store)
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // If the test process dies without unwinding, the server dies too.
        die_with_parent(&mut command);
        self.child = Some(command.spawn().expect("start nats-server"));
        self.wait_ready().await;
    }

    /// Waits until the server answers JetStream requests.
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = async {
                let client = async_nats::ConnectOptions::new()
                    .connection_timeout(Duration::from_millis(500))
                    .connect(self.url())
                    .await
                    .map_err(|e| e.to_string())?;
                let js = async_nats::jetstream::new(client);
                // Listing the streams answers once JetStream has recovered.
                let mut names = js.stream_names();
                match futures::StreamExt::next(&mut names).await {
                    Some(Err(e)) => Err(e.to_string()),
                    _ => Ok(()),
                }
            };
            let outcome = tokio::time::timeout(Duration::from_secs(2), ready)
                .await
                .unwrap_or_else(|_| Err("timed out".to_owned()));
            let error = match outcome {
                Ok(_) => return,
                Err(error) => error,
            };
            assert!(
                Instant::now() < deadline,
                "the private nats-server on {} did not become ready: {error}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the server with SIGTERM (a clean shutdown) and waits for it.
    pub fn terminate(&mut self) {
        let mut child = self.child.take().expect("nats-server is running");
        // SAFETY: signalling our own child process by its pid.
        let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM to nats-server");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if child.try_wait().expect("poll nats-server").is_some() {
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("nats-server did not stop on SIGTERM within 15 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("nats-server is running");
        child.kill().expect("SIGKILL nats-server");
        child.wait().expect("reap nats-server");
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// A private three-node NATS cluster, every node killed when dropped (also on
// panic, and with the test process through PR_SET_PDEATHSIG).
// ---------------------------------------------------------------------------

pub struct Node {
    pub name: String,
    client_port: u16,
    child: Option<Child>,
}

pub struct NatsCluster {
    pub nodes: Vec<Node>,
    dir: tempfile::TempDir,
}

impl NatsCluster {
    pub async fn start() -> NatsCluster {
        let dir = tempfile::Builder::new()
            .prefix("ledger-nats-cluster-")
            .tempdir()
            .expect("a temporary directory");
        let cluster_name = format!("lt_{}", &Uuid::new_v4().simple().to_string()[..8]);
        let client_ports: Vec<u16> = (0..NODES).map(|_| free_port()).collect();
        let cluster_ports: Vec<u16> = (0..NODES).map(|_| free_port()).collect();
        let mut nodes = Vec::new();
        for i in 0..NODES {
            let name = format!("{cluster_name}_n{i}");
            let store: PathBuf = dir.path().join(format!("store-{i}"));
            std::fs::create_dir_all(&store).expect("create a store");
            let routes: Vec<String> = (0..NODES)
                .filter(|j| *j != i)
                .map(|j| format!("nats://127.0.0.1:{}", cluster_ports[j]))
                .collect();
            let mut command = Command::new(NATS_SERVER);
            command
                .args(["-a", "127.0.0.1", "-p", &client_ports[i].to_string(), "-js"])
                .arg("-sd")
                .arg(&store)
                .args([
                    "--cluster",
                    &format!("nats://127.0.0.1:{}", cluster_ports[i]),
                    "--routes",
                    &routes.join(","),
                    "--cluster_name",
                    &cluster_name,
                    "-n",
                    &name,
                ])
                .arg("-l")
                .arg(dir.path().join(format!("node-{i}.log")))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            die_with_parent(&mut command);
            nodes.push(Node {
                name,
                client_port: client_ports[i],
                child: Some(command.spawn().expect("start nats-server")),
            });
        }
        let cluster = NatsCluster { nodes, dir };
        cluster.wait_for_meta_leader().await;
        cluster
    }

    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].client_port)
    }

    pub fn alive(&self) -> Vec<usize> {
        (0..NODES)
            .filter(|i| self.nodes[*i].child.is_some())
            .collect()
    }

    /// Every node answers JetStream account requests, which needs a meta
    /// leader.
    pub async fn wait_for_meta_leader(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for i in 0..NODES {
            loop {
                let ready = async {
                    let client = async_nats::ConnectOptions::new()
                        .connection_timeout(Duration::from_millis(500))
                        .connect(self.url(i))
                        .await
                        .map_err(|e| e.to_string())?;
                    // Raw, as async-nats 0.51 does not parse v2.9's answer.
                    let answer = client
                        .request("$JS.API.INFO", "".into())
                        .await
                        .map_err(|e| e.to_string())?;
                    let info: serde_json::Value =
                        serde_json::from_slice(&answer.payload).map_err(|e| e.to_string())?;
                    match info.get("error") {
                        Some(error) => Err(error.to_string()),
                        None => Ok(()),
                    }
                };
                let outcome = tokio::time::timeout(Duration::from_secs(3), ready)
                    .await
                    .unwrap_or_else(|_| Err("timed out".to_owned()));
                match outcome {
                    Ok(_) => break,
                    Err(error) => assert!(
                        Instant::now() < deadline,
                        "node {i} has no JetStream meta leader: {error} (logs in {:?})",
                        self.dir.path()
                    ),
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    pub fn kill9(&mut self, i: usize) {
        let mut child = self.nodes[i].child.take().expect("the node runs");
        child.kill().expect("SIGKILL nats-server");
        child.wait().expect("reap nats-server");
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Nodes of a [`NatsCluster`].
pub const NODES: usize = 3;

// ---------------------------------------------------------------------------
// A private PostgreSQL.
// ---------------------------------------------------------------------------

/// A PostgreSQL of this test's own, on a free port, so that stopping it
/// touches nothing else.
pub struct PrivatePostgres {
    _dir: tempfile::TempDir,
    data: PathBuf,
    pub port: u16,
}

fn as_postgres(program: &str, args: &[&str]) -> std::process::Output {
    Command::new("runuser")
        .args(["-u", "postgres", "--", &format!("{PG_BIN}/{program}")])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"))
}

impl PrivatePostgres {
    pub fn init() -> PrivatePostgres {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let chown = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status()
            .expect("chown");
        assert!(chown.success());
        let data = dir.path().join("data");
        let out = as_postgres(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
            ],
        );
        assert!(out.status.success(), "initdb: {out:?}");
        let port = free_port();
        let pg = PrivatePostgres {
            _dir: dir,
            data,
            port,
        };
        pg.start();
        pg
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.data.display()
        );
        let log = self.data.join("server.log");
        let out = as_postgres(
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
        assert!(out.status.success(), "pg_ctl start: {out:?}");
    }

    pub fn stop(&self) {
        let out = as_postgres(
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
        assert!(out.status.success(), "pg_ctl stop: {out:?}");
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if Path::new(&self.data).join("postmaster.pid").exists() {
            let _ = as_postgres(
                "pg_ctl",
                &[
                    "-D",
                    self.data.to_str().unwrap_or_default(),
                    "-m",
                    "immediate",
                    "stop",
                ],
            );
        }
    }
}
