//! Writing a plan artifact in place of an old one, all at once.

use std::io::Write as _;
use std::path::Path;

/// Writes `bytes` as the file at `path` all at once: into a temporary file
/// beside it, synced, then renamed over it. A gateway that loads the plan
/// meanwhile (a reload, a restart) reads the old plan or the new one, never
/// a part; a failed write (a full disk) leaves the old one whole. A symbolic
/// link is followed (the file it names is replaced), and a path that is not a
/// regular file (`/dev/stdout`, a pipe) is written as it is.
pub fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let path = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path)?,
        _ => path.to_path_buf(),
    };
    if std::fs::metadata(&path).is_ok_and(|m| !m.is_file()) {
        return std::fs::write(&path, bytes);
    }
    let name = path
        .file_name()
        .map_or_else(|| std::ffi::OsString::from("plan"), std::ffi::OsStr::to_os_string);
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(&name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, &path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}
