//! What each command does; every rule lives in the core, this only converts.

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use chatstore::{demo, HistoryQuery, Options, Store};
use serde_json::{json, Value};

use crate::cli::{Cli, Command, OrderArg, ReaderArg, Render};
use crate::error::CliError;

type Result<T> = std::result::Result<T, CliError>;

/// Opens an existing store: a command that reads (or changes records of)
/// a store never creates one, so a mistyped path is an error naming it.
fn open(db: &Path, render: &Render, attach_timeout_ms: u64) -> Result<Store> {
    Ok(Store::open(db, options(render, attach_timeout_ms)?)?)
}

/// The options of a command on an existing store (`create_if_missing`
/// false; `import` and `demo` create theirs).
fn options(render: &Render, attach_timeout_ms: u64) -> Result<Options> {
    let mut o = Options {
        attach_timeout_ms,
        create_if_missing: false,
        // A command owns a sled store for its own life only: when it ends,
        // the store is handed over to the processes it served (a process
        // cannot linger after it exits).
        linger_ms: 0,
        ..Options::default()
    };
    if let Some(m) = &render.media_base {
        o.render.media_base = m.clone();
    }
    if let Some(d) = &render.default_avatar {
        o.render.default_avatar = d.clone();
    }
    if let Some(off) = &render.utc_offset {
        o.render.set_utc_offset(off)?;
    }
    Ok(o)
}

fn print(v: &impl serde::Serialize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, v).map_err(|e| CliError::Io("stdout".into(), e.into()))?;
    writeln!(out).map_err(|e| CliError::Io("stdout".into(), e))
}

fn print_line(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").map_err(|e| CliError::Io("stdout".into(), e))
}

fn lenient(s: &Option<String>) -> Option<i64> {
    s.as_ref()
        .and_then(|s| chatstore::lenient_int(Some(&Value::String(s.clone()))))
}

/// Runs a parsed command.
pub(crate) fn run(cli: Cli) -> Result<ExitCode> {
    let attach = cli.attach_timeout_ms;
    match cli.command {
        Command::Demo { db } => demo_cmd(db.as_deref(), attach),
        Command::Import {
            db,
            file,
            no_text_index,
            backend,
            group_access,
        } => import(
            &db,
            &file,
            attach,
            !no_text_index,
            backend.map(Into::into),
            group_access,
        ),
        Command::Backup { db, out } => {
            let store = open(&db, &Render::default(), attach)?;
            let started = Instant::now();
            store.backup(&out)?;
            eprintln!(
                "backed up {} to {} in {:.2}s",
                db.display(),
                out.display(),
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Compact { db } => {
            let before = dir_size(&db);
            let o = options(&Render::default(), attach)?;
            let started = Instant::now();
            Store::open(&db, o)?.compact()?;
            eprintln!(
                "compacted {} from {before} to {} bytes in {:.2}s",
                db.display(),
                dir_size(&db),
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate { db, to, backend } => {
            let store = open(&db, &Render::default(), attach)?;
            let started = Instant::now();
            let o = Options {
                backend: backend.into(),
                create_if_missing: true,
                ..options(&Render::default(), attach)?
            };
            let bar = std::io::stderr().is_terminal().then(|| {
                let bar = indicatif::ProgressBar::new_spinner();
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{spinner} [{elapsed}] copied {bytes} {bytes_per_sec}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                );
                bar
            });
            let copied = store.copy_into(&to, o, |bytes| {
                if let Some(b) = &bar {
                    b.set_position(bytes);
                }
            });
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
            let s = copied?;
            eprintln!(
                "copied {} lines into {} ({}) in {:.2}s",
                s.lines,
                to.display(),
                chatstore::Backend::from(backend),
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Export { db, file } => export(&db, file.as_deref(), attach),
        Command::HistoryList {
            db,
            tenant,
            employee,
            user_name,
            page,
            pagesize,
            order,
            page_url,
            render,
        } => {
            let store = open(&db, &render, attach)?;
            let req = chatstore::HistoryRequest::new(chatstore::HistoryParams {
                tenant,
                employee,
                user_name,
                page: lenient(&page),
                pagesize: lenient(&pagesize),
                order: Some(
                    match order {
                        OrderArg::Id => "id",
                        OrderArg::Recent => "recent",
                    }
                    .into(),
                ),
                page_url,
                cursor: None,
            })?;
            print_line(&store.history_list_text(&req)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Hischat {
            db,
            sso_id,
            hash,
            page,
        } => {
            let store = open(&db, &Render::default(), attach)?;
            print_line(&store.hischat_text(sso_id, &hash, lenient(&page).unwrap_or(1))?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Messages {
            db,
            tenant,
            session,
            page,
            pagesize,
        } => {
            let store = open(&db, &Render::default(), attach)?;
            print(&store.messages(tenant, session, page, pagesize)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Unread {
            db,
            tenant,
            agent,
            page,
            pagesize,
        } => {
            let store = open(&db, &Render::default(), attach)?;
            print(&store.live_sessions(tenant, agent, page, pagesize)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::MarkRead {
            db,
            tenant,
            session,
            reader,
            up_to,
        } => {
            let store = open(&db, &Render::default(), attach)?;
            let reader = match reader {
                ReaderArg::Agent => chatstore::Reader::Agent,
                ReaderArg::Member => chatstore::Reader::Member,
            };
            let unread = store.mark_read(tenant, session, reader, up_to)?;
            print(&json!({"tenant": tenant, "session": session, "unread": unread}))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Recall(m) => {
            open(&m.db, &Render::default(), attach)?
                .recall_message(m.tenant, m.session, m.message)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::DeleteMessage(m) => {
            open(&m.db, &Render::default(), attach)?
                .delete_message(m.tenant, m.session, m.message)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::SearchMessages {
            db,
            tenant,
            session,
            agent,
            page,
            pagesize,
            query,
        } => {
            let store = open(&db, &Render::default(), attach)?;
            let search = chatstore::MessageSearch {
                tenant,
                q: query,
                session_id: session,
                agent_id: agent,
                page,
                pagesize,
            };
            print(&store.search_messages(&search)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Search { db, tenant, query } => {
            let store = open(&db, &Render::default(), attach)?;
            print(&store.search_members(tenant, &query)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { db } => {
            let store = open(&db, &Render::default(), attach)?;
            let report = store.check()?;
            print(&report)?;
            if report.ok {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "chatstore: check found {} violations",
                    report.violations.len()
                );
                Ok(ExitCode::from(1))
            }
        }
        Command::Stats { db } => {
            let store = open(&db, &Render::default(), attach)?;
            let tenants = store
                .tenants()?
                .into_iter()
                .map(|t| store.tenant_stats(t))
                .collect::<chatstore::Result<Vec<_>>>()?;
            let info = store.info()?;
            let disk = dir_size(&db);
            print(&json!({
                "path": db.display().to_string(),
                "format": info.format,
                "text_index": info.text_index,
                "backend": info.backend,
                "disk_bytes": disk,
                "tenants": tenants
            }))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn dir_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn import(
    db: &Path,
    file: &str,
    attach: u64,
    text_index: bool,
    backend: Option<chatstore::Backend>,
    group_access: bool,
) -> Result<ExitCode> {
    let defaults = options(&Render::default(), attach)?;
    let o = Options {
        text_index,
        group_access,
        backend: backend.unwrap_or(defaults.backend),
        create_if_missing: true,
        ..defaults
    };
    let store = Store::open(db, o.clone())?;
    let started = Instant::now();
    let (reader, size): (Box<dyn BufRead>, Option<u64>) = if file == "-" {
        (Box::new(BufReader::new(std::io::stdin().lock())), None)
    } else {
        let f = std::fs::File::open(file).map_err(|e| CliError::Io(file.to_string(), e))?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(BufReader::with_capacity(1 << 20, f)), size)
    };
    let bar = if std::io::stderr().is_terminal() {
        let bar = match size {
            Some(n) => indicatif::ProgressBar::new(n),
            None => indicatif::ProgressBar::new_spinner(),
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(bar)
    } else {
        None
    };
    let result = store.import_jsonl(reader, |bytes| {
        if let Some(b) = &bar {
            b.set_position(bytes);
        }
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let s = result?;
    store.flush()?;
    eprintln!(
        "imported {} lines in {:.2}s: {} accounts, {} members, {} agents, {} sessions, {} messages",
        s.lines,
        started.elapsed().as_secs_f64(),
        s.accounts,
        s.members,
        s.agents,
        s.sessions,
        s.messages
    );
    Ok(ExitCode::SUCCESS)
}

fn export(db: &Path, file: Option<&str>, attach: u64) -> Result<ExitCode> {
    let store = open(db, &Render::default(), attach)?;
    let n = match file {
        None | Some("-") => {
            store.export_jsonl(std::io::BufWriter::new(std::io::stdout().lock()))?
        }
        Some(path) => {
            let f = std::fs::File::create(path).map_err(|e| CliError::Io(path.to_string(), e))?;
            store.export_jsonl(std::io::BufWriter::new(f))?
        }
    };
    if file.is_some_and(|f| f != "-") {
        eprintln!("exported {n} records");
    }
    Ok(ExitCode::SUCCESS)
}

fn demo_cmd(db: Option<&Path>, attach: u64) -> Result<ExitCode> {
    let tmp;
    let path = match db {
        Some(p) => p.to_path_buf(),
        None => {
            tmp = tempfile::tempdir().map_err(|e| CliError::Io("temporary directory".into(), e))?;
            tmp.path().join("demo.chatstore")
        }
    };
    let render = Render {
        media_base: Some(demo::SEED_MEDIA_BASE.into()),
        ..Default::default()
    };
    let o = Options {
        create_if_missing: true,
        ..options(&render, attach)?
    };
    let store = Store::open(&path, o)?;
    let summary = store.import_jsonl(demo::SEED_JSONL.as_bytes(), |_| {})?;
    store.flush()?;
    let mut out = std::io::stdout().lock();
    let mut show = |title: &str, v: &Value| -> Result<()> {
        let text =
            serde_json::to_string_pretty(v).map_err(|e| CliError::Io("stdout".into(), e.into()))?;
        writeln!(out, "== {title}\n{text}\n").map_err(|e| CliError::Io("stdout".into(), e))
    };
    show(
        &format!(
            "store {} ({} records of the seeds' sample data)",
            path.display(),
            summary.lines
        ),
        &json!(store
            .tenants()?
            .iter()
            .map(|t| store.tenant_stats(*t))
            .collect::<chatstore::Result<Vec<_>>>()?),
    )?;
    let mut q = HistoryQuery::new(2);
    q.employee = Some(2);
    let req = chatstore::HistoryRequest {
        query: q.clone(),
        page_url: String::new(),
    };
    show(
        "GET plugin.yun-chat.frontend.chat.history-list (tenant 2, employee 2): the first seed's example",
        &store.history_list_response(&req)?,
    )?;
    let mut q2 = q;
    q2.user_name = Some("185-1669".into());
    let req = chatstore::HistoryRequest {
        query: q2,
        page_url: String::new(),
    };
    show(
        "... with user_name=185-1669 (mobile digits match whatever the punctuation)",
        &store.history_list_response(&req)?,
    )?;
    show(
        "POST /hischat.php (sso_id 218 with its hash): the second seed's conversations",
        &store.hischat(demo::SEED_SSO_ID, demo::SEED_ACCOUNT_HASH, 1)?,
    )?;
    show(
        "POST /hischat.php with a wrong hash",
        &store.hischat(demo::SEED_SSO_ID, "wrong", 1)?,
    )?;
    Ok(ExitCode::SUCCESS)
}
