//! Command-line arguments (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// chatstore: customer-service chat history in an embedded store.
#[derive(Debug, Parser)]
#[command(name = "chatstore", version, about)]
pub(crate) struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
    /// How long to wait for a store that is locked with nobody serving it
    /// before giving up (another process that owns a store serves it).
    #[arg(long, global = true, value_name = "MS", default_value_t = 10_000)]
    pub attach_timeout_ms: u64,
}

/// The rendering settings of the endpoints.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct Render {
    /// Prefix of media paths in `avatar_image`, e.g. http://localhost:82.
    #[arg(long, value_name = "URL")]
    pub media_base: Option<String>,
    /// `avatar_image` of members without an avatar.
    #[arg(long, value_name = "URL")]
    pub default_avatar: Option<String>,
    /// Offset `last_updated_at` is rendered in.
    #[arg(long, value_name = "+08:00", allow_hyphen_values = true)]
    pub utc_offset: Option<String>,
}

/// Session list order.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum OrderArg {
    /// Session id descending.
    Id,
    /// Last activity descending.
    Recent,
}

/// One message of a store.
#[derive(Debug, Args)]
pub(crate) struct MessageArgs {
    /// Store directory.
    #[arg(long, value_name = "DIR")]
    pub db: PathBuf,
    /// Tenant.
    #[arg(long)]
    pub tenant: u64,
    /// Session id.
    #[arg(long)]
    pub session: u64,
    /// Message id.
    #[arg(long)]
    pub message: u64,
}

/// A storage engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// LMDB: every process opens the store itself (the default).
    Lmdb,
    /// sled: one process owns the store and serves the others.
    Sled,
}

impl From<BackendArg> for chatstore::Backend {
    fn from(b: BackendArg) -> Self {
        match b {
            BackendArg::Lmdb => chatstore::Backend::Lmdb,
            BackendArg::Sled => chatstore::Backend::Sled,
        }
    }
}

/// Who reads.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ReaderArg {
    /// The agent, reading the member's messages.
    Agent,
    /// The member, reading the agent's messages.
    Member,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Load the seeds' sample data and print both endpoints' responses.
    Demo {
        /// Store directory (a temporary one when absent).
        #[arg(long, value_name = "DIR")]
        db: Option<PathBuf>,
    },
    /// Import JSON Lines (a file, or - for standard input).
    Import {
        /// Store directory.
        #[arg(long, value_name = "DIR")]
        db: PathBuf,
        /// The file, or - for standard input.
        #[arg(value_name = "FILE|-")]
        file: String,
        /// Create the store without the message-text index: imports and
        /// appends cost less and the store is smaller, but search-messages
        /// then searches one session at a time. Only when the import
        /// creates the store; an existing store keeps its choice.
        #[arg(long)]
        no_text_index: bool,
        /// The engine of a store the import creates (an existing store keeps
        /// its own): lmdb unless `CHATSTORE_BACKEND` says sled.
        #[arg(long, value_enum)]
        backend: Option<BackendArg>,
        /// Make a new store shared with its group: directory 0770, files
        /// 0660 (and setgid directories pass their group on), so that a
        /// PHP-FPM pool running as another user of the group can open it.
        /// A store so made stays shared whoever opens it.
        #[arg(long)]
        group_access: bool,
    },
    /// Write a consistent, compact copy of a store into a new directory
    /// while others keep reading and writing.
    Backup {
        /// Store directory.
        #[arg(long, value_name = "DIR")]
        db: PathBuf,
        /// The new directory.
        #[arg(value_name = "OUT")]
        out: PathBuf,
    },
    /// Rewrite an LMDB store compactly in place (no other process may have
    /// it open meanwhile; `backup` works while it is in use).
    Compact {
        /// Store directory.
        #[arg(long, value_name = "DIR")]
        db: PathBuf,
    },
    /// Copy a store into a new one of the given backend (its export is
    /// byte-identical to the original's).
    Migrate {
        /// The store to copy.
        #[arg(long, value_name = "DIR")]
        db: PathBuf,
        /// The new store's directory.
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
        /// The new store's engine.
        #[arg(long, value_enum, default_value_t = BackendArg::Lmdb)]
        backend: BackendArg,
    },
    /// Export every record as JSON Lines.
    Export {
        /// Store directory.
        #[arg(long, value_name = "DIR")]
        db: PathBuf,
        /// Output file; standard output when absent or -.
        #[arg(value_name = "FILE|-")]
        file: Option<String>,
    },
    /// The first seed's endpoint: an agent's past sessions.
    HistoryList {
        /// Store directory.
        #[arg(long, value_name = "DIR")]
        db: PathBuf,
        /// Tenant (uniacid).
        #[arg(long)]
        tenant: u64,
        /// Only this employee's sessions.
        #[arg(long)]
        employee: Option<u64>,
        /// Member nickname or mobile filter.
        #[arg(long, allow_hyphen_values = true)]
        user_name: Option<String>,
        /// Page (anything but a positive integer is page 1).
        #[arg(long, allow_hyphen_values = true)]
        page: Option<String>,
        /// Rows per page (default 10, at most 100).
        #[arg(long, allow_hyphen_values = true)]
        pagesize: Option<String>,
        /// Order of the rows.
        #[arg(long, value_enum, default_value = "id")]
        order: OrderArg,
        /// Base of next_page_url / prev_page_url.
        #[arg(long, value_name = "URL")]
        page_url: Option<String>,
        /// Rendering settings.
        #[command(flatten)]
        render: Render,
    },
    /// The second seed's endpoint: an account's conversations, 30 a page.
    Hischat {
        /// Store directory.
        #[arg(long, value_name = "DIR")]
        db: PathBuf,
        /// The admin account.
        #[arg(long)]
        sso_id: u64,
        /// The account's login hash.
        #[arg(long, allow_hyphen_values = true)]
        hash: String,
        /// Page (below 1 is 1).
        #[arg(long, allow_hyphen_values = true)]
        page: Option<String>,
    },
    /// A session's messages, newest first.
    Messages {
        /// Store directory.
        #[arg(long, value_name = "DIR")]
        db: PathBuf,
        /// Tenant.
        #[arg(long)]
        tenant: u64,
        /// Session id.
        #[arg(long)]
        session: u64,
        /// Page.
        #[arg(long, default_value_t = 1)]
        page: u64,
        /// Rows per page (at most 100).
        #[arg(long, default_value_t = 20)]
        pagesize: u64,
    },
    /// An agent's live session list with unread counts, newest activity
    /// first (`read.unread_by_agent` is the platform's `un_read_num`).
    Unread {
        /// Store directory.
        #[arg(long, value_name = "DIR")]
        db: PathBuf,
        /// Tenant.
        #[arg(long)]
        tenant: u64,
        /// The agent (employee id).
        #[arg(long)]
        agent: u64,
        /// Page.
        #[arg(long, default_value_t = 1)]
        page: u64,
        /// Rows per page (at most 100).
        #[arg(long, default_value_t = 20)]
        pagesize: u64,
    },
    /// Mark a session's messages read by one side up to a message id.
    MarkRead {
        /// Store directory.
        #[arg(long, value_name = "DIR")]
        db: PathBuf,
        /// Tenant.
        #[arg(long)]
        tenant: u64,
        /// Session id.
        #[arg(long)]
        session: u64,
        /// Who read: the agent (the member's messages) or the member.
        #[arg(long, value_enum)]
        reader: ReaderArg,
        /// Read up to this message id.
        #[arg(long)]
        up_to: u64,
    },
    /// Recall a message: kept in history, flagged `recalled`.
    Recall(MessageArgs),
    /// Delete a message softly: out of every view, kept for export.
    DeleteMessage(MessageArgs),
    /// Messages whose text holds QUERY, newest first, with the exact total.
    SearchMessages {
        /// Store directory.
        #[arg(long, value_name = "DIR")]
        db: PathBuf,
        /// Tenant.
        #[arg(long)]
        tenant: u64,
        /// Only this session.
        #[arg(long)]
        session: Option<u64>,
        /// Only sessions of this agent.
        #[arg(long)]
        agent: Option<u64>,
        /// Page.
        #[arg(long, default_value_t = 1)]
        page: u64,
        /// Rows per page (at most 100).
        #[arg(long, default_value_t = 20)]
        pagesize: u64,
        /// The text to find.
        #[arg(allow_hyphen_values = true)]
        query: String,
    },
    /// Members whose nickname or mobile matches QUERY.
    Search {
        /// Store directory.
        #[arg(long, value_name = "DIR")]
        db: PathBuf,
        /// Tenant.
        #[arg(long)]
        tenant: u64,
        /// The query.
        #[arg(allow_hyphen_values = true)]
        query: String,
    },
    /// Verify every invariant; exit 0 only when all hold.
    Check {
        /// Store directory.
        #[arg(long, value_name = "DIR")]
        db: PathBuf,
    },
    /// Counts per tenant and the store's size on disk.
    Stats {
        /// Store directory.
        #[arg(long, value_name = "DIR")]
        db: PathBuf,
    },
}
