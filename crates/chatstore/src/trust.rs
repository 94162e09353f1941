//! Whom a store trusts: its own user. As ssh does with its files, a store
//! directory owned by another user, or writable by others, is refused
//! before anything in it is read or served, and the process at the other
//! end of the owner's socket must run as this user or the store's owner
//! (`SO_PEERCRED`). A store made with `group_access` is shared with its
//! group: its directory may then be owned by another user of one of this
//! process's groups.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::error::{Error, Result};

/// The mode bits of a store shared with its group (`group_access`).
const GROUP_SHARED: u32 = 0o070;

/// This process's user id.
fn my_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// Whether this process belongs to group `gid`.
fn in_group(gid: u32) -> bool {
    rustix::process::getgid().as_raw() == gid
        || rustix::process::getgroups().is_ok_and(|gs| gs.iter().any(|g| g.as_raw() == gid))
}

/// A directory's owner, group and mode.
#[derive(Debug, Clone, Copy)]
struct Owned {
    uid: u32,
    gid: u32,
    mode: u32,
}

impl From<&Metadata> for Owned {
    fn from(m: &Metadata) -> Owned {
        Owned {
            uid: m.uid(),
            gid: m.gid(),
            mode: m.mode() & 0o7777,
        }
    }
}

/// Why a store directory so owned is not to be trusted by user `me`, if it
/// is not: owned by another user than `me` or root (unless shared with one
/// of `me`'s groups), or writable by others.
fn distrust(dir: Owned, me: u32, in_group: impl Fn(u32) -> bool) -> Option<String> {
    let mode = dir.mode;
    if mode & 0o002 != 0 {
        return Some(format!(
            "it is writable by every user (mode {mode:o}): make it 0700 (or 0770 to share it with \
             its group)"
        ));
    }
    let owner = dir.uid;
    let shared = mode & GROUP_SHARED == GROUP_SHARED && in_group(dir.gid);
    if owner != me && owner != 0 && !shared {
        return Some(format!(
            "it belongs to user {owner}, not to this process's user {me}: another user could \
             read or forge what it serves"
        ));
    }
    None
}

/// Refuses a store directory another user controls (see the module). An
/// absent directory is fine: it will be created private.
pub(crate) fn check_dir(path: &Path) -> Result<()> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    if !meta.is_dir() {
        return Ok(()); // the caller's "is a file" error says it better
    }
    match distrust(Owned::from(&meta), my_uid(), in_group) {
        None => Ok(()),
        Some(why) => Err(Error::invalid(
            "path",
            format!("refusing the store {}: {why}", path.display()),
        )),
    }
}

/// Refuses a socket peer that runs as neither this user nor the user
/// owning the store directory `dir`, naming both; in a store shared with
/// one of this process's groups (`group_access`) any peer is trusted, since
/// only the directory's owner and its group can have bound the socket there.
pub(crate) fn check_peer(stream: &UnixStream, dir: &Path) -> std::io::Result<()> {
    let cred = rustix::net::sockopt::socket_peercred(stream)?;
    let peer = cred.uid.as_raw();
    let meta = std::fs::metadata(dir).ok();
    let store_owner = meta.as_ref().map_or_else(my_uid, |m| m.uid());
    if peer == my_uid() || peer == store_owner || peer == 0 || meta.as_ref().is_some_and(shared) {
        return Ok(());
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        format!(
            "the process at the other end of the store's socket (pid {}) runs as user {peer}, \
             neither this process's user {} nor the store's owner {store_owner}",
            cred.pid.as_raw_nonzero(),
            my_uid()
        ),
    ))
}

/// Whether a store directory so made is shared with one of this process's
/// groups (`group_access`: 0770 and a group of this process).
fn shared(m: &Metadata) -> bool {
    m.mode() & GROUP_SHARED == GROUP_SHARED && in_group(m.gid())
}

/// Whether the store at `path` is shared with its group: its directory
/// exists, is 0770 and of one of this process's groups. Every process
/// opening such a store gives the files it makes the group's mode, whatever
/// its own options say, so the store stays usable by the whole group.
pub(crate) fn group_shared(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_dir() && shared(&m))
}

/// Whether the owner of the store at `dir` may serve the peer of `stream`:
/// one of this process's user or root, or anyone when the store is shared
/// with its group (its socket, 0660, already admits only the group).
pub(crate) fn peer_may_attach(stream: &UnixStream, dir: &Path) -> bool {
    let Ok(cred) = rustix::net::sockopt::socket_peercred(stream) else {
        return false;
    };
    let peer = cred.uid.as_raw();
    peer == my_uid() || peer == 0 || group_shared(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_users_and_world_writable_directories_are_refused() {
        let dir = |uid, mode| Owned { uid, gid: 50, mode };
        assert!(distrust(dir(1000, 0o700), 1000, |_| false).is_none());
        assert!(distrust(dir(0, 0o755), 1000, |_| false).is_none(), "root's");
        let why = distrust(dir(1000, 0o777), 1000, |_| true).unwrap();
        assert!(why.contains("every user"), "{why}");
        let why = distrust(dir(1001, 0o700), 1000, |_| false).unwrap();
        assert!(why.contains("belongs to user 1001"), "{why}");
        // Shared with a group of this process: trusted; of another: not.
        assert!(distrust(dir(1001, 0o770), 1000, |g| g == 50).is_none());
        assert!(distrust(dir(1001, 0o770), 1000, |_| false).is_some());
        assert!(distrust(dir(1001, 0o750), 1000, |_| true).is_some());
    }

    /// A world-writable directory, and one another user pre-created (the
    /// second when the tests run as root, as CI does: `chown` needs it).
    #[test]
    fn store_directories_others_control_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("store");
        std::fs::create_dir(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_dir(&p).unwrap_err();
        assert!(e.to_string().contains("writable by every user"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(check_dir(&p).is_ok());
        if my_uid() == 0 {
            std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
            let e = check_dir(&p).unwrap_err();
            assert!(e.to_string().contains("belongs to user 65534"), "{e}");
            // And no store is opened there.
            let e = crate::Store::open(&p, crate::Options::default()).unwrap_err();
            assert!(e.to_string().contains("belongs to user 65534"), "{e}");
        }
    }
}
