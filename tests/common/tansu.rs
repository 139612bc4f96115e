//! A tansu broker process owned by one test, for what the shared broker of
//! `./e2e.sh` cannot do: require SASL, or be killed and restarted mid-stream.
//!
//! The binary is `EKAFKA_TEST_TANSU` (set by `./e2e.sh`), else `ekafka-tansu`
//! (tansu 0.6.0 built with SASL PLAIN by `./e2e.sh`) on the PATH.
//! Storage is a sqlite file in a directory of the test's own, so a restart keeps
//! topics, messages, committed offsets and SCRAM users.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ekafka::testing::{unique_name, TestCluster};

/// Names the tansu binary to use.
pub const TANSU_VARIABLE: &str = "EKAFKA_TEST_TANSU";

/// How long a start, a user creation or a topic creation may take.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A SCRAM mechanism, as `tansu user create --mechanism` spells it.
#[derive(Clone, Copy, Debug)]
pub enum Scram {
    Sha256,
    Sha512,
}

impl Scram {
    fn flag(self) -> &'static str {
        match self {
            Scram::Sha256 => "scram256",
            Scram::Sha512 => "scram512",
        }
    }
}

/// One tansu process on a loopback port of its own, stopped when dropped.
pub struct Tansu {
    binary: PathBuf,
    dir: PathBuf,
    port: u16,
    authentication: bool,
    child: Option<Child>,
}

impl Tansu {
    /// Starts a broker with sqlite storage; with `authentication`, clients must
    /// authenticate with SASL.
    pub fn start(authentication: bool) -> Self {
        let dir = std::env::temp_dir().join(unique_name("ekafka-tansu"));
        std::fs::create_dir_all(&dir).expect("tansu directory created");
        let mut broker = Tansu {
            binary: binary(),
            dir,
            port: free_port(),
            authentication,
            child: None,
        };
        broker.launch();
        broker
    }

    /// A broker that requires SASL, with `users` (name, password, mechanism)
    /// and `topics` (3 partitions each) already made. Users and topics are made
    /// before authentication is switched on: tansu 0.6.0 has no other way.
    pub fn with_users(users: &[(&str, &str, Scram)], topics: &[&str]) -> Self {
        let mut broker = Tansu::start(false);
        for (name, password, mechanism) in users {
            broker.create_user(name, password, *mechanism);
        }
        let cluster = broker.cluster();
        for topic in topics {
            cluster.create_topic(topic).expect("topic created");
        }
        broker.kill();
        broker.authentication = true;
        broker.launch();
        broker
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// This broker as a test cluster (topics made through the admin API).
    pub fn cluster(&self) -> TestCluster {
        TestCluster::external(self.bootstrap_servers())
    }

    /// Kills the process at once (SIGKILL): nothing is flushed or closed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again on the same port and storage.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    fn create_user(&self, name: &str, password: &str, mechanism: Scram) {
        let status = Command::new(&self.binary)
            .args(["user", "create", "--broker"])
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .args(["--mechanism", mechanism.flag(), name, password])
            .stdout(Stdio::null())
            .status()
            .expect("tansu user create ran");
        assert!(status.success(), "tansu user create {name}: {status}");
    }

    fn launch(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("tansu.log"))
            .expect("tansu log opened");
        let mut command = Command::new(&self.binary);
        command
            .current_dir(&self.dir)
            .arg("broker")
            .args(["--storage-engine", "sqlite://tansu.db"])
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        if self.authentication {
            command.arg("--authentication");
        }
        self.child = Some(command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {} (set {TANSU_VARIABLE}, or run ./e2e.sh): {e}",
                self.binary.display()
            )
        }));
        let started = Instant::now();
        // Readiness is a listening port; tansu announces nothing else to wait on.
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("tansu exited at start with {status}; see {}", self.log());
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "tansu not listening on {} after {START_TIMEOUT:?}; see {}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        self.dir.join("tansu.log").display().to_string()
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.kill();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn binary() -> PathBuf {
    std::env::var_os(TANSU_VARIABLE)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("ekafka-tansu"))
}

/// A port nothing listens on now (the kernel's choice, released at once).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}
