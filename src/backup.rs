//! `shopbox backup` and `restore`, and the server's scheduled backups.
//!
//! A backup is one tar archive (gzip when the name ends in `.gz` or `.tgz`) of every
//! database tree (`db/<tree>`, its entries as read at one instant), every media file
//! (`media/<name>`), the generated JWT secret, and `manifest.json` last: the format,
//! shopbox's version, the schema version, when the snapshot was taken, the entries of
//! each tree, the media files, and a SHA-256 over every other member. Writes wait only
//! while the database's files are copied aside (then read from the copy); media files
//! are hard-linked aside before and during that pause, so an image deleted afterwards is
//! still in the archive.

use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::commands::{finish_bar, Progress};
use crate::config::Config;
use crate::core::time::{now_micros, rfc3339};
use crate::db::snapshot::Restorer;
use crate::db::Db;

const FORMAT: &str = "shopbox-backup-1";
const MANIFEST: &str = "manifest.json";
const SECRET: &str = "jwt_secret";
/// Where a backup copies the database and links the media files aside, inside the data
/// folder (hard links need the same disk).
const STAGE_PREFIX: &str = ".backup-";
/// Held while a stage exists: this process's backups and copies take turns.
static STAGING: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[derive(Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub shopbox_version: String,
    pub schema_version: u32,
    /// When the snapshot was taken (RFC 3339).
    pub taken_at: String,
    /// Entries of each tree.
    pub trees: BTreeMap<String, u64>,
    pub media_files: u64,
    /// SHA-256 over every other member: its path, a zero byte, its size (8 bytes,
    /// big-endian) and its content, in archive order.
    pub sha256: String,
}

/// What a backup did.
pub struct BackupReport {
    pub file: PathBuf,
    pub bytes: u64,
    pub entries: u64,
    pub media_files: u64,
    /// How long writes were held back.
    pub paused: Duration,
    /// Writes that waited for the pause, and the longest wait.
    pub writes_waited: u64,
    pub longest_wait: Duration,
    pub took: Duration,
}

impl std::fmt::Display for BackupReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "backed up {} database entries and {} media files to {} ({:.1} MB) in {:.2} s; writes were held back for {} ms ({} waited, the longest {} ms)",
            self.entries,
            self.media_files,
            self.file.display(),
            self.bytes as f64 / 1e6,
            self.took.as_secs_f64(),
            self.paused.as_millis(),
            self.writes_waited,
            self.longest_wait.as_millis()
        )
    }
}

/// Running checksum over the archive's members.
struct Summer(Sha256);

impl Summer {
    fn member(&mut self, path: &str, content: &[u8]) {
        self.0.update(path.as_bytes());
        self.0.update([0]);
        self.0.update((content.len() as u64).to_be_bytes());
        self.0.update(content);
    }
}

fn io<'a>(what: &'a str, path: &'a Path) -> impl Fn(std::io::Error) -> String + 'a {
    move |e| format!("cannot {what} {}: {e}", path.display())
}

fn media_names(media: &Path) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    match std::fs::read_dir(media) {
        Ok(entries) => {
            for entry in entries.flatten() {
                if entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
                    names.push(entry.file_name().to_string_lossy().to_string());
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("read", media)(e)),
    }
    Ok(names)
}

/// Hard-links the media files not linked yet into `stage`.
fn link_media(media: &Path, stage: &Path, linked: &mut HashSet<String>) -> Result<(), String> {
    for name in media_names(media)? {
        if linked.contains(&name) {
            continue;
        }
        match std::fs::hard_link(media.join(&name), stage.join(&name)) {
            Ok(()) => {
                linked.insert(name);
            }
            // Deleted since it was listed: no record points at it any more.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("link", &media.join(&name))(e)),
        }
    }
    Ok(())
}

/// Removes stages that an interrupted backup left in the data folder.
fn remove_stale_stages(data_dir: &Path) {
    for entry in std::fs::read_dir(data_dir).into_iter().flatten().flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(STAGE_PREFIX)
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn is_gzip_name(file: &Path) -> bool {
    let name = file.to_string_lossy();
    name.ends_with(".gz") || name.ends_with(".tgz")
}

/// Writes a backup of the open database `db` of `data_dir` to `file`, which must not
/// exist yet. Blocks (call it from a thread that may wait); the shop keeps serving.
pub fn backup(
    db: &Db,
    data_dir: &Path,
    file: &Path,
    progress: &dyn Progress,
) -> Result<BackupReport, String> {
    let start = Instant::now();
    if file.exists() {
        return Err(format!("{} exists already", file.display()));
    }
    // A server's scheduled backup and one the CLI asked it for take turns: each clears
    // the stages it finds, which only an interrupted process can have left then.
    let _one_at_a_time = STAGING.lock().unwrap_or_else(|e| e.into_inner());
    remove_stale_stages(data_dir);
    let stage = data_dir.join(format!("{STAGE_PREFIX}{}", now_micros()));
    std::fs::create_dir(&stage).map_err(io("create", &stage))?;
    let result = write_archive(db, data_dir, &stage, file, progress, start);
    let _ = std::fs::remove_dir_all(&stage);
    result
}

fn write_archive(
    db: &Db,
    data_dir: &Path,
    stage: &Path,
    file: &Path,
    progress: &dyn Progress,
    start: Instant,
) -> Result<BackupReport, String> {
    let media = data_dir.join("media");
    let linked_media = stage.join("media");
    std::fs::create_dir(&linked_media).map_err(io("create", &linked_media))?;
    let mut linked = HashSet::new();
    link_media(&media, &linked_media, &mut linked)?;
    let waits_before = db.gate_waits();
    let (snapshot, (linked_in_pause, taken_at)) = db
        .snapshot(&stage.join("db"), || {
            (
                link_media(&media, &stage.join("media"), &mut linked),
                now_micros(),
            )
        })
        .map_err(|e| format!("cannot read the database: {e}"))?;
    linked_in_pause?;
    let schema_version = crate::db::migrate::schema_version(db)
        .map_err(|e| e.to_string())?
        .unwrap_or(0);

    let partial = file.with_extension(format!(
        "{}.partial",
        file.extension()
            .map(|e| e.to_string_lossy())
            .unwrap_or_default()
    ));
    let out = create_private(&partial)?;
    let result = (|| {
        let writer: Box<dyn Write> = if is_gzip_name(file) {
            Box::new(GzEncoder::new(out, flate2::Compression::fast()))
        } else {
            Box::new(out)
        };
        let mut tar = tar::Builder::new(writer);
        let mut sum = Summer(Sha256::new());
        let mut names: Vec<String> = linked.into_iter().collect();
        names.sort();
        let trees = snapshot.tree_names();
        let bar = progress.bar((trees.len() + names.len()) as u64, "backup");
        let mut manifest = Manifest {
            format: FORMAT.into(),
            shopbox_version: env!("CARGO_PKG_VERSION").into(),
            schema_version,
            taken_at: rfc3339(taken_at),
            trees: BTreeMap::new(),
            media_files: names.len() as u64,
            sha256: String::new(),
        };
        for name in &trees {
            let tree = snapshot
                .dump(name)
                .map_err(|e| format!("cannot read the database copy: {e}"))?;
            let path = format!("db/{}", tree.name);
            sum.member(&path, &tree.bytes);
            append(&mut tar, &path, &tree.bytes)?;
            manifest.trees.insert(tree.name, tree.entries);
            bar.inc(1);
        }
        if let Ok(secret) = std::fs::read(data_dir.join(SECRET)) {
            sum.member(SECRET, &secret);
            append(&mut tar, SECRET, &secret)?;
        }
        for name in &names {
            let file = linked_media.join(name);
            let bytes = std::fs::read(&file).map_err(io("read", &file))?;
            let path = format!("media/{name}");
            sum.member(&path, &bytes);
            append(&mut tar, &path, &bytes)?;
            bar.inc(1);
        }
        manifest.sha256 = hex::encode(sum.0.finalize());
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?;
        append(&mut tar, MANIFEST, &json)?;
        finish_bar(&bar, None);
        let writer = tar.into_inner().map_err(io("write", &partial))?;
        drop(writer);
        Ok(manifest)
    })();
    let manifest = match result {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    let synced = std::fs::File::open(&partial).and_then(|f| f.sync_all());
    synced
        .and_then(|_| std::fs::rename(&partial, file))
        .map_err(io("write", file))?;
    let waits = db.gate_waits();
    Ok(BackupReport {
        file: file.to_path_buf(),
        bytes: std::fs::metadata(file).map(|m| m.len()).unwrap_or(0),
        entries: manifest.trees.values().sum(),
        media_files: manifest.media_files,
        paused: snapshot.paused,
        writes_waited: waits.writes - waits_before.writes,
        longest_wait: waits.longest,
        took: start.elapsed(),
    })
}

fn create_private(path: &Path) -> Result<std::fs::File, String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(io("create", path))
}

fn append<W: Write>(tar: &mut tar::Builder<W>, path: &str, bytes: &[u8]) -> Result<(), String> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o600);
    header.set_mtime((now_micros() / 1_000_000).max(0) as u64);
    header.set_cksum();
    tar.append_data(&mut header, path, bytes)
        .map_err(|e| format!("cannot write {path} into the archive: {e}"))
}

/// Runs `f` on a copy of the open database `db` of `data_dir` taken at one instant (writes
/// wait only while its files are copied), opened on its own: what a running shop's export
/// reads. The copy lives in the data folder until `f` returns.
pub fn with_copy<T>(
    db: &Db,
    data_dir: &Path,
    cache_capacity_mb: u64,
    f: impl FnOnce(&Db) -> Result<T, String>,
) -> Result<T, String> {
    let _one_at_a_time = STAGING.lock().unwrap_or_else(|e| e.into_inner());
    remove_stale_stages(data_dir);
    let stage = data_dir.join(format!("{STAGE_PREFIX}{}", now_micros()));
    let result = (|| {
        let (snapshot, ()) = db
            .snapshot(&stage.join("db"), || ())
            .map_err(|e| format!("cannot copy the database: {e}"))?;
        drop(snapshot);
        let config = Config {
            data_dir: stage.clone(),
            cache_capacity_mb,
            ..Config::default()
        };
        let copy = crate::open_data(&config).map_err(|e| e.0)?;
        f(&copy)
    })();
    let _ = std::fs::remove_dir_all(&stage);
    result
}

/// Fills the empty (or missing) folder `dir` from the backup `file`: checks every member
/// against the manifest's checksum and counts, then opens the database (migrating an
/// older schema) and checks every index. On any failure the folder is left empty.
pub fn restore(
    file: &Path,
    dir: &Path,
    cache_capacity_mb: u64,
    progress: &dyn Progress,
) -> Result<String, String> {
    let existed = dir.exists();
    if existed {
        let mut entries = std::fs::read_dir(dir).map_err(io("read", dir))?;
        if entries.next().is_some() {
            return Err(format!(
                "{} is not empty: restore fills an empty folder",
                dir.display()
            ));
        }
    }
    crate::config::create_data_dir(dir).map_err(|e| e.0)?;
    let result = restore_into(file, dir, cache_capacity_mb, progress);
    if result.is_err() {
        // The folder was empty: leave it so, or gone if it was not there.
        if existed {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let _ = std::fs::remove_dir_all(entry.path())
                    .or_else(|_| std::fs::remove_file(entry.path()));
            }
        } else {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    result
}

fn restore_into(
    file: &Path,
    dir: &Path,
    cache_capacity_mb: u64,
    progress: &dyn Progress,
) -> Result<String, String> {
    let mut raw = std::fs::File::open(file).map_err(io("open", file))?;
    let mut magic = [0u8; 2];
    let gzip = raw.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    let raw = std::fs::File::open(file).map_err(io("open", file))?;
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    let mut archive = tar::Archive::new(reader);
    let restorer = Restorer::create(dir).map_err(|e| e.0)?;
    let mut sum = Summer(Sha256::new());
    let mut trees = BTreeMap::new();
    let mut media_files = 0u64;
    let mut manifest: Option<Manifest> = None;
    let bar = progress.bar(0, "restore");
    let bad = |why: String| format!("{} is not a shopbox backup: {why}", file.display());
    for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let path = entry
            .path()
            .map_err(|e| bad(e.to_string()))?
            .to_string_lossy()
            .to_string();
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("{path}: {e}")))?;
        if manifest.is_some() {
            return Err(bad(format!("{path} follows the manifest")));
        }
        if path == MANIFEST {
            manifest =
                Some(serde_json::from_slice(&bytes).map_err(|e| bad(format!("manifest: {e}")))?);
            continue;
        }
        sum.member(&path, &bytes);
        if let Some(tree) = path.strip_prefix("db/") {
            let n = restorer.tree(tree, &bytes).map_err(|e| bad(e.0))?;
            trees.insert(tree.to_string(), n);
        } else if let Some(name) = path.strip_prefix("media/").filter(|n| plain_name(n)) {
            let target = dir.join("media").join(name);
            std::fs::write(&target, &bytes).map_err(io("write", &target))?;
            media_files += 1;
        } else if path == SECRET {
            let target = dir.join(SECRET);
            let mut out = create_private(&target)?;
            out.write_all(&bytes).map_err(io("write", &target))?;
        } else {
            return Err(bad(format!("unexpected member {path}")));
        }
        bar.inc(1);
    }
    finish_bar(&bar, None);
    let manifest = manifest.ok_or_else(|| bad("no manifest (the archive is cut short?)".into()))?;
    if manifest.format != FORMAT {
        return Err(bad(format!("unknown format {}", manifest.format)));
    }
    let sha256 = hex::encode(sum.0.finalize());
    if sha256 != manifest.sha256 {
        return Err(format!(
            "{}: the checksum does not match (the archive was changed or damaged)",
            file.display()
        ));
    }
    if trees != manifest.trees || media_files != manifest.media_files {
        return Err(format!(
            "{}: the contents do not match the manifest's counts",
            file.display()
        ));
    }
    restorer.finish().map_err(|e| e.0)?;
    let config = Config {
        data_dir: dir.to_path_buf(),
        cache_capacity_mb,
        ..Config::default()
    };
    let db = crate::open_data(&config).map_err(|e| e.0)?;
    let check = crate::commands::check_db(&db, crate::commands::Check::Report)?;
    Ok(format!(
        "restored {} database entries and {media_files} media files into {} (a backup taken {} by shopbox {}, checksum verified); check: {check}",
        trees.values().sum::<u64>(),
        dir.display(),
        manifest.taken_at,
        manifest.shopbox_version
    ))
}

/// A file name of one plain component (no folders, no `..`).
fn plain_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && name != "." && name != ".."
}

/// Name of a scheduled backup taken at `micros`.
fn scheduled_name(micros: i64) -> String {
    let stamp: String = rfc3339(micros)
        .chars()
        .take(19)
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    format!("shopbox-{stamp}Z.tar.gz")
}

/// Takes one scheduled backup into `backup.dir` and deletes the oldest beyond
/// `backup.keep`. Blocks.
pub fn scheduled(db: &Db, config: &Config) -> Result<BackupReport, String> {
    let dir = config.backup_dir();
    if !dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir).map_err(io("create", &dir))?;
    }
    let report = backup(
        db,
        &config.data_dir,
        &dir.join(scheduled_name(now_micros())),
        &crate::commands::Silent,
    )?;
    let mut taken: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(io("read", &dir))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy())
                .is_some_and(|n| n.starts_with("shopbox-") && n.ends_with("Z.tar.gz"))
        })
        .collect();
    taken.sort();
    let excess = taken.len().saturating_sub(config.backup.keep as usize);
    for old in &taken[..excess] {
        std::fs::remove_file(old).map_err(io("delete", old))?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    #[test]
    fn scheduled_names_sort_by_time() {
        assert_eq!(
            super::scheduled_name(1_500_000),
            "shopbox-19700101T000001Z.tar.gz"
        );
        assert!(super::scheduled_name(10_000_000) > super::scheduled_name(9_000_000));
    }
}
