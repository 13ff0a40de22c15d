//! `kill -9` while writing and while starting never leaves a folder that fails to open,
//! and never loses a write that was acknowledged.
//!
//! The writer is this test binary itself, started again as a child (`crash_writer_child`),
//! so that it can use the storage layer directly and be killed at any instruction. Each
//! entry's text carries a tag of the child's run, so an entry lost together with its id
//! counter (the id then handed out again) is not mistaken for the acknowledged one. Every
//! random choice comes from one seed, printed first (`SHOPBOX_TEST_SEED` replays it).

use crate::common;

use rand::Rng;
use serde::{Deserialize, Serialize};
use shopbox::db::{Db, KeyOrder, Record, Tx, TxResult, Unique};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const CHILD_DIR: &str = "SHOPBOX_CRASH_CHILD_DIR";
const CHILD_RUN: &str = "SHOPBOX_CRASH_CHILD_RUN";
const TREE: &str = "meta";
const OFFSET: u64 = 1 << 40;

#[derive(Serialize, Deserialize)]
struct Entry {
    id: u64,
    text: String,
}

impl Record for Entry {
    const TREE: &'static str = TREE;
}

fn write_entry(tx: &Tx<'_>, e: &Entry) -> TxResult<()> {
    tx.put(OFFSET + e.id, e)?;
    tx.claim_unique(
        TREE,
        format!("entry:{}", e.text).as_bytes(),
        e.id,
        Unique::Slug,
    )?;
    tx.link(TREE, OFFSET * 2, e.id)
}

/// The tag of entry `id` written by child run `run`; its text begins with it.
fn tag(run: &str, id: u64) -> String {
    format!("{run}-{id}")
}

/// The child: writes entries as fast as it can, printing `ack <id> <tag>` for each
/// acknowledged one.
#[test]
#[ignore = "run only as the child of kill_9_during_writes_and_start_up"]
fn crash_writer_child() {
    let (Ok(dir), Ok(run)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_RUN)) else {
        return;
    };
    let db = Db::open(Path::new(&dir), 4 * 1024 * 1024, &shopbox::schema()).expect("child open");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..16 {
            let (db, tx, run) = (db.clone(), tx.clone(), run.clone());
            tokio::spawn(async move {
                loop {
                    let id = db.next_id("entries").unwrap();
                    let entry = Entry {
                        id,
                        text: format!("{} {}", tag(&run, id), "x".repeat(200)),
                    };
                    db.write(|t| write_entry(t, &entry)).await.unwrap();
                    if tx.send(id).is_err() {
                        return;
                    }
                }
            });
        }
        use std::io::Write;
        let mut out = std::io::stdout();
        while let Some(id) = rx.recv().await {
            writeln!(out, "ack {id} {}", tag(&run, id)).unwrap();
            out.flush().unwrap();
        }
    });
}

/// An acknowledged entry: its id and its tag.
type Acked = (u64, String);

fn check_consistent(dir: &Path, acked: &[Acked]) {
    let db = Db::open(dir, 4 * 1024 * 1024, &shopbox::schema())
        .unwrap_or_else(|e| panic!("reopen failed: {e}"));
    for (id, tag) in acked {
        let entry: Entry = db
            .get(OFFSET + id)
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged entry {tag} lost"));
        assert_eq!(entry.id, *id);
        assert_eq!(
            entry.text.split(' ').next(),
            Some(tag.as_str()),
            "entry {id} is not the acknowledged one"
        );
    }
    // Every index entry points at a record and every record has its index entries.
    let linked = db.children(TREE, OFFSET * 2, KeyOrder::Ascending).unwrap();
    for id in &linked {
        let entry: Entry = db
            .get(OFFSET + id)
            .unwrap()
            .expect("index points at a record");
        let key = format!("entry:{}", entry.text);
        assert_eq!(db.unique_get(TREE, key.as_bytes()).unwrap(), Some(*id));
    }
    for (id, tag) in acked {
        assert!(linked.contains(id), "entry {tag} missing from its index");
    }
}

/// How long to wait for the writer's next acknowledgement before calling it stuck.
const STALLED: Duration = Duration::from_secs(120);

#[test]
fn kill_9_during_writes_and_start_up() {
    let (seed, mut rng) = common::seeded_rng("crash");
    let dir = tempfile::tempdir().unwrap();
    let mut acked: Vec<Acked> = Vec::new();
    let mut awaited = 0;

    for round in 0..15 {
        let run = format!("s{seed}r{round}");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash::crash_writer_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_RUN, &run)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, recv) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // libtest may print its own words before the child's first line.
                let Some((id, tag)) = line
                    .rsplit_once("ack ")
                    .and_then(|(_, rest)| rest.split_once(' '))
                else {
                    continue;
                };
                if send
                    .send((id.parse::<u64>().unwrap(), tag.to_string()))
                    .is_err()
                {
                    return;
                }
            }
        });
        // Kill after a random number of acknowledged writes, a moment later.
        let wanted = rng.gen_range(1..=40);
        for _ in 0..wanted {
            let ack = recv
                .recv_timeout(STALLED)
                .unwrap_or_else(|e| panic!("round {round}: the writer stopped acknowledging: {e}"));
            acked.push(ack);
        }
        awaited += wanted;
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..5)));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        acked.extend(recv.try_iter());
        check_consistent(dir.path(), &acked);
    }
    assert!(acked.len() >= awaited);

    // Now kill the real server while it starts (when sled writes its snapshot).
    for round in 0..20 {
        let mut server = common::Server::start(dir.path(), &[]);
        let delay = if round % 4 == 3 {
            400
        } else {
            rng.gen_range(0..120)
        };
        std::thread::sleep(Duration::from_millis(delay));
        server.kill();
    }
    check_consistent(dir.path(), &acked);
    let mut server = common::Server::start(dir.path(), &[]);
    server.wait_ready();
    eprintln!(
        "seed {seed}: {} acknowledged writes all present",
        acked.len()
    );
}
