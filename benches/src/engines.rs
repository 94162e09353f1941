//! The workloads, run against one engine in this process.

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chatstore::{
    Durability, HistoryQuery, HistoryRequest, Message, MessageSearch, Options, Order, Record,
    Sender, Store,
};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

use crate::data::{Queries, TENANT};
use crate::measure::{self, Stat};

/// Results of one engine: workload name -> figure.
pub(crate) type Results = Vec<(String, String, Stat)>;

fn push(r: &mut Results, name: &str, unit: &str, s: Stat) {
    eprintln!("  {name}: {:.1} {unit} (p99 {:.1})", s.median, s.p99);
    r.push((name.to_string(), unit.to_string(), s));
}

fn once(v: f64) -> Stat {
    Stat { median: v, p99: v }
}

/// Iterations per query workload.
pub(crate) struct Plan {
    /// Query repetitions.
    pub queries: usize,
    /// Buffered appends.
    pub appends: usize,
    /// Durable appends per writer thread.
    pub durable: usize,
    /// Whether chatstore's store keeps the message-text index; without it
    /// neither engine runs the message-search workloads.
    pub text_index: bool,
}

fn count_lines(p: &Path) -> u64 {
    std::io::BufReader::new(std::fs::File::open(p).unwrap())
        .lines()
        .count() as u64
}

// ---------------------------------------------------------------- chatstore

/// No linger: every open in the bench is a real open (a store reopened in
/// the same process would otherwise still be held by the lingering owner).
pub(crate) fn chat_options(durable: bool) -> Options {
    let mut o = Options {
        linger_ms: 0,
        ..Options::default()
    };
    o.render.media_base = "http://localhost:82".into();
    if durable {
        o.durability = Durability::Sync;
    }
    o
}

pub(crate) fn new_message(sid: u64, i: u64) -> Message {
    Message {
        tenant: TENANT,
        session_id: sid,
        sender: Sender::Member,
        sender_id: 7,
        content: format!("新消息 tin nhắn mới {i}"),
        time: 1_800_000_000 + i as i64,
        ip: "42.114.43.124".into(),
        ..Default::default()
    }
}

/// Runs every workload on chatstore.
pub(crate) fn chatstore(dir: &Path, base: &Path, msgs: &Path, q: &Queries, plan: &Plan) -> Results {
    let mut r = Results::new();
    let db = dir.join("chatstore.db");
    let created = Options {
        text_index: plan.text_index,
        ..chat_options(false)
    };
    let store = Store::open(&db, created).unwrap();
    store.import_file(base).unwrap();
    let n = count_lines(msgs);
    let t = Instant::now();
    store.import_file(msgs).unwrap();
    store.flush().unwrap();
    push(
        &mut r,
        "import_messages",
        "us",
        once(t.elapsed().as_secs_f64() * 1e6 / n as f64),
    );
    measure::note_anon();
    drop(store);
    push(
        &mut r,
        "disk_bytes_per_message",
        "bytes",
        once(measure::disk_bytes(&db) as f64 / n as f64),
    );
    let t = Instant::now();
    let store = Store::open(&db, chat_options(false)).unwrap();
    push(&mut r, "open", "us", once(t.elapsed().as_secs_f64() * 1e6));
    // Opened again: what a server finds after `chatstore import`, which
    // reopens the store once itself (sled records where recovery ended).
    drop(store);
    let t = Instant::now();
    let store = Store::open(&db, chat_options(false)).unwrap();
    push(
        &mut r,
        "open_again",
        "us",
        once(t.elapsed().as_secs_f64() * 1e6),
    );

    let page = |employee: Option<u64>, user_name: Option<&str>, page: u64| {
        let mut query = HistoryQuery::new(TENANT);
        query.employee = employee;
        query.user_name = user_name.map(str::to_owned);
        query.page = page;
        HistoryRequest {
            query,
            page_url: "/h".into(),
        }
    };
    let cases = [
        ("history_list_page1", page(Some(q.agent), None, 1)),
        ("history_list_deep", page(None, None, 1000)),
        (
            "history_list_filter_cjk2",
            page(Some(q.agent), Some(&q.cjk2), 1),
        ),
        (
            "history_list_filter_latin",
            page(Some(q.agent), Some(&q.latin), 1),
        ),
        (
            "history_list_filter_mobile4",
            page(Some(q.agent), Some(&q.mobile4), 1),
        ),
        (
            "history_list_filter_vi2",
            page(Some(q.agent), Some(&q.vi2), 1),
        ),
        (
            "history_list_filter_char1",
            page(Some(q.agent), Some(&q.char1), 1),
        ),
        ("history_list_filter_vi2_all", page(None, Some(&q.vi2), 1)),
    ];
    for (name, req) in &cases {
        push(
            &mut r,
            name,
            "us",
            measure::time(plan.queries, || {
                std::hint::black_box(store.history_list_text(req).unwrap());
            }),
        );
    }
    push(
        &mut r,
        "hischat_page1",
        "us",
        measure::time(plan.queries, || {
            std::hint::black_box(
                store
                    .hischat_text(1000, "0123456789abcdef0123456789abcdef", 1)
                    .unwrap(),
            );
        }),
    );
    push(
        &mut r,
        "messages_page1",
        "us",
        measure::time(plan.queries, || {
            std::hint::black_box(
                serde_json::to_string(&store.messages(TENANT, q.hot_session, 1, 20).unwrap())
                    .unwrap(),
            );
        }),
    );
    push(
        &mut r,
        "live_list_page1",
        "us",
        measure::time(plan.queries, || {
            std::hint::black_box(
                serde_json::to_string(&store.live_sessions(TENANT, q.agent, 1, 20).unwrap())
                    .unwrap(),
            );
        }),
    );
    for (name, text) in message_queries(q).into_iter().filter(|_| plan.text_index) {
        let search = MessageSearch::new(TENANT, text);
        push(
            &mut r,
            name,
            "us",
            measure::time(plan.queries, || {
                std::hint::black_box(
                    serde_json::to_string(&store.search_messages(&search).unwrap()).unwrap(),
                );
            }),
        );
    }
    let mut i = 0u64;
    push(
        &mut r,
        "append_message",
        "us",
        measure::time(plan.appends, || {
            i += 1;
            store.append_message(&new_message(1 + i % 1000, i)).unwrap();
        }),
    );
    drop(store);
    let store = Arc::new(Store::open(&db, chat_options(true)).unwrap());
    let samples = two_writers(plan.durable, move |w, i| {
        store
            .append_message(&new_message(1 + (i * 2 + w) % 1000, 1_000_000 + i * 2 + w))
            .unwrap();
    });
    push(&mut r, "append_message_durable", "us", samples);
    let exe = std::env::current_exe().unwrap();
    let reopen = crate::processes::open_after_kill(&exe, dir, "chatstore", || {
        let s = Store::open(&db, chat_options(false)).unwrap();
        std::hint::black_box(s.tenant_stats(TENANT).unwrap());
    });
    push(&mut r, "open_after_kill", "us", once(reopen));
    push(
        &mut r,
        "peak_rss",
        "bytes",
        once(measure::peak_rss() as f64),
    );
    push(
        &mut r,
        "rss_anon",
        "bytes",
        once(measure::note_anon() as f64),
    );
    r
}

/// Two writer threads, each timing its own appends.
fn two_writers(n: usize, f: impl Fn(u64, u64) + Send + Sync + 'static) -> Stat {
    let f = Arc::new(f);
    let handles: Vec<_> = (0..2u64)
        .map(|w| {
            let f = f.clone();
            std::thread::spawn(move || {
                (0..n as u64)
                    .map(|i| {
                        let s = Instant::now();
                        f(w, i);
                        s.elapsed().as_secs_f64() * 1e6
                    })
                    .collect::<Vec<f64>>()
            })
        })
        .collect();
    let mut all: Vec<f64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    measure::stat(&mut all)
}

// ------------------------------------------------------------------ SQLite

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE accounts (sso_id INTEGER PRIMARY KEY, uniacid INTEGER NOT NULL, hash TEXT NOT NULL);
CREATE TABLE members (uid INTEGER PRIMARY KEY, uniacid INTEGER NOT NULL, nickname TEXT NOT NULL, mobile TEXT NOT NULL,
  avatar TEXT NOT NULL, email TEXT NOT NULL, address TEXT NOT NULL, registered INTEGER NOT NULL, online INTEGER NOT NULL);
CREATE INDEX members_uniacid ON members (uniacid);
CREATE TABLE employees (id INTEGER PRIMARY KEY, uniacid INTEGER NOT NULL, uid INTEGER NOT NULL, nickname TEXT NOT NULL, avatar TEXT NOT NULL);
CREATE TABLE sessions (id INTEGER PRIMARY KEY, uniacid INTEGER NOT NULL, uid INTEGER NOT NULL, employee_id INTEGER NOT NULL,
  created_at INTEGER NOT NULL, last_updated_at INTEGER NOT NULL, product_id INTEGER NOT NULL, hash TEXT NOT NULL);
CREATE INDEX sessions_tenant ON sessions (uniacid, id);
CREATE INDEX sessions_employee ON sessions (uniacid, employee_id, id);
CREATE INDEX sessions_recent ON sessions (uniacid, last_updated_at, id);
CREATE INDEX sessions_member ON sessions (uniacid, uid);
CREATE TABLE messages (id INTEGER PRIMARY KEY, uniacid INTEGER NOT NULL, session_id INTEGER NOT NULL, sender TEXT NOT NULL,
  sender_id INTEGER NOT NULL, content TEXT NOT NULL, content_type INTEGER NOT NULL, link TEXT NOT NULL, time INTEGER NOT NULL, ip TEXT NOT NULL);
CREATE INDEX messages_session ON messages (session_id, id);
";

pub(crate) fn sqlite_open(path: &Path) -> Connection {
    let c = Connection::open(path).unwrap();
    c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    c.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .unwrap();
    c
}

fn sqlite_import(c: &mut Connection, file: &Path) -> u64 {
    let reader = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(file).unwrap());
    let mut n = 0;
    let mut tx = c.transaction().unwrap();
    for line in reader.lines() {
        let line = line.unwrap();
        match Record::parse(&line).unwrap() {
            Record::Account(a) => {
                tx.prepare_cached("INSERT OR REPLACE INTO accounts VALUES (?1, ?2, ?3)")
                    .unwrap()
                    .execute(params![a.sso_id, a.tenant, a.hash])
                    .unwrap();
            }
            Record::Member(m) => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO members VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .unwrap()
                .execute(params![
                    m.uid,
                    m.tenant,
                    m.nickname,
                    m.mobile,
                    m.avatar,
                    m.email,
                    m.address,
                    m.registered,
                    m.online
                ])
                .unwrap();
            }
            Record::Agent(a) => {
                tx.prepare_cached("INSERT OR REPLACE INTO employees VALUES (?1, ?2, ?3, ?4, ?5)")
                    .unwrap()
                    .execute(params![a.id, a.tenant, a.uid, a.nickname, a.avatar])
                    .unwrap();
            }
            Record::Session(s) => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO sessions VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .unwrap()
                .execute(params![
                    s.id,
                    s.tenant,
                    s.uid,
                    s.agent_id,
                    s.created_at,
                    s.last_updated_at,
                    s.product_id,
                    s.hash
                ])
                .unwrap();
            }
            Record::Message(m) => {
                tx.prepare_cached("INSERT OR REPLACE INTO messages VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)").unwrap()
                    .execute(params![m.id, m.tenant, m.session_id, m.sender.as_str(), m.sender_id, m.content, m.content_type, m.link, m.time, m.ip]).unwrap();
            }
            // The generated dataset has no read marks.
            Record::Read(_) => {}
        }
        n += 1;
        if n % 2000 == 0 {
            tx.commit().unwrap();
            tx = c.transaction().unwrap();
        }
    }
    tx.commit().unwrap();
    n
}

fn avatar_image(a: &str) -> String {
    chatstore::avatar_image(a, &chat_options(false).render)
}

/// The history-list page as Laravel runs it: COUNT + LIMIT/OFFSET, eager loads.
fn sqlite_history(
    c: &Connection,
    employee: Option<u64>,
    user_name: Option<&str>,
    fts: bool,
    page: u64,
) -> String {
    use rusqlite::types::Value as Sql;
    let mut where_ = String::from("s.uniacid = ?1");
    let mut args: Vec<Sql> = vec![Sql::Integer(TENANT as i64)];
    if let Some(e) = employee {
        args.push(Sql::Integer(e as i64));
        where_.push_str(&format!(" AND s.employee_id = ?{}", args.len()));
    }
    if let Some(q) = user_name {
        args.push(Sql::Text(format!("%{q}%")));
        let n = args.len();
        where_.push_str(&if fts {
            format!(" AND s.uid IN (SELECT rowid FROM members_fts WHERE nickname LIKE ?{n} UNION SELECT rowid FROM members_fts WHERE mobile LIKE ?{n})")
        } else {
            format!(" AND s.uid IN (SELECT uid FROM members WHERE uniacid = ?1 AND (nickname LIKE ?{n} OR mobile LIKE ?{n}))")
        });
    }
    let args = rusqlite::params_from_iter(args.iter());
    let total: u64 = c
        .prepare_cached(&format!("SELECT COUNT(*) FROM sessions s WHERE {where_}"))
        .unwrap()
        .query_row(args.clone(), |r| r.get(0))
        .unwrap();
    let per = 10u64;
    let sql = format!("SELECT id, uniacid, uid, employee_id, last_updated_at FROM sessions s WHERE {where_} ORDER BY id DESC LIMIT {per} OFFSET {}", (page - 1) * per);
    let mut st = c.prepare_cached(&sql).unwrap();
    let rows: Vec<(u64, u64, u64, u64, i64)> = st
        .query_map(args, |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let in_list = |ids: Vec<u64>| ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    let mut employees = std::collections::HashMap::new();
    let mut members = std::collections::HashMap::new();
    if !rows.is_empty() {
        let mut st = c
            .prepare(&format!(
                "SELECT id, uid, uniacid, nickname, avatar FROM employees WHERE id IN ({})",
                in_list(rows.iter().map(|r| r.3).collect())
            ))
            .unwrap();
        for e in st.query_map([], |r| Ok((r.get::<_, u64>(0)?, json!({"id": r.get::<_, u64>(0)?, "uid": r.get::<_, u64>(1)?, "uniacid": r.get::<_, u64>(2)?, "nickname": r.get::<_, String>(3)?, "avatar": r.get::<_, String>(4)?})))).unwrap() {
            let (id, v) = e.unwrap();
            employees.insert(id, v);
        }
        let mut st = c
            .prepare(&format!(
                "SELECT uid, uniacid, nickname, avatar, mobile FROM members WHERE uid IN ({})",
                in_list(rows.iter().map(|r| r.2).collect())
            ))
            .unwrap();
        for m in st.query_map([], |r| {
            let (nick, avatar): (String, String) = (r.get(2)?, r.get(3)?);
            Ok((r.get::<_, u64>(0)?, json!({"uid": r.get::<_, u64>(0)?, "uniacid": r.get::<_, u64>(1)?, "nickname": nick, "avatar": avatar,
                "mobile": r.get::<_, String>(4)?, "avatar_image": avatar_image(&avatar), "username": nick})))
        }).unwrap() {
            let (id, v) = m.unwrap();
            members.insert(id, v);
        }
    }
    let settings = chat_options(false).render;
    let data: Vec<Value> = rows.iter().map(|&(id, t, uid, emp, lu)| json!({
        "id": id, "uniacid": t, "uid": uid, "employee_id": emp, "last_updated_at": chatstore::format_time(lu, &settings),
        "has_one_employee": employees.get(&emp).cloned().unwrap_or(Value::Null), "has_one_user": members.get(&uid).cloned().unwrap_or(Value::Null)})).collect();
    let last = total.div_ceil(per);
    let from = if data.is_empty() {
        Value::Null
    } else {
        json!((page - 1) * per + 1)
    };
    let to = if data.is_empty() {
        Value::Null
    } else {
        json!((page - 1) * per + data.len() as u64)
    };
    json!({"result": 1, "msg": "成功", "data": {"total": total, "per_page": per, "current_page": page, "last_page": last,
        "next_page_url": if last > page { json!(format!("/h?page={}", page + 1)) } else { Value::Null },
        "prev_page_url": if page > 1 { json!(format!("/h?page={}", page - 1)) } else { Value::Null },
        "from": from, "to": to, "data": data}}).to_string()
}

/// hischat as a competent developer writes it: auth, one page of sessions by
/// activity, members in one query, last messages in one grouped query.
fn sqlite_hischat(c: &Connection, sso_id: u64, hash: &str) -> String {
    let acc: Option<(u64, String)> = c
        .prepare_cached("SELECT uniacid, hash FROM accounts WHERE sso_id = ?1")
        .unwrap()
        .query_row([sso_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .unwrap();
    let Some((tenant, _)) = acc.filter(|(_, h)| h == hash) else {
        return json!({"error": "Ma bao mat khong dung", "status": 0, "history": ""}).to_string();
    };
    let mut st = c.prepare_cached("SELECT id, uid, employee_id, last_updated_at, product_id, hash FROM sessions WHERE uniacid = ?1 ORDER BY last_updated_at DESC, id DESC LIMIT 30").unwrap();
    let rows: Vec<(u64, u64, u64, i64, u64, String)> = st
        .query_map([tenant], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let ids = rows
        .iter()
        .map(|r| r.0.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let uids = rows
        .iter()
        .map(|r| r.1.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut members = std::collections::HashMap::new();
    let mut st = c.prepare(&format!("SELECT uid, nickname, mobile, avatar, email, address, registered, online FROM members WHERE uid IN ({uids})")).unwrap();
    for m in st
        .query_map([], |r| {
            Ok((
                r.get::<_, u64>(0)?,
                (
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, bool>(6)?,
                    r.get::<_, bool>(7)?,
                ),
            ))
        })
        .unwrap()
    {
        let (k, v) = m.unwrap();
        members.insert(k, v);
    }
    let mut last = std::collections::HashMap::new();
    let mut st = c.prepare(&format!("SELECT id, session_id, sender, sender_id, content, link, time, ip FROM messages WHERE id IN (SELECT MAX(id) FROM messages WHERE session_id IN ({ids}) GROUP BY session_id)")).unwrap();
    for m in st
        .query_map([], |r| {
            Ok((
                r.get::<_, u64>(1)?,
                (
                    r.get::<_, u64>(0)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, u64>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, String>(7)?,
                ),
            ))
        })
        .unwrap()
    {
        let (k, v) = m.unwrap();
        last.insert(k, v);
    }
    let history: Vec<Value> = rows.iter().map(|(id, uid, agent, lu, pro, hash)| {
        let m = members.get(uid).cloned().unwrap_or_default();
        let msg: Vec<Value> = last.get(id).map(|(mid, sender, sid, content, link, time, ip)| json!({
            "cha_id": mid.to_string(), "cha_min_id": sso_id.min(*uid).to_string(), "cha_max_id": sso_id.max(*uid).to_string(),
            "cha_message": content, "cha_link": link, "cha_time": time.to_string(), "cha_owner_id": sid,
            "cha_support_id": if sender == "agent" { sid.to_string() } else { "0".into() }, "cha_system_id": if sender == "system" { "1" } else { "0" },
            "cha_key": "0", "cha_ip": ip.parse::<std::net::Ipv4Addr>().map(u32::from).unwrap_or(0).to_string()})).into_iter().collect();
        json!({"online": u8::from(m.6), "use_name": m.0, "address": m.4, "email": m.3, "phone": m.1, "uss_sso_id": uid, "use_image": m.2,
            "time": lu, "to_image": "", "pro": pro, "hash": hash, "last_msg": msg, "is_uservg": u8::from(m.5), "support_id": agent})
    }).collect();
    json!({"error": "", "status": 1, "history": history}).to_string()
}

fn sqlite_messages(c: &Connection, sid: u64) -> String {
    let total: u64 = c
        .prepare_cached("SELECT COUNT(*) FROM messages WHERE session_id = ?1")
        .unwrap()
        .query_row([sid], |r| r.get(0))
        .unwrap();
    let mut st = c.prepare_cached("SELECT id, sender, sender_id, content, content_type, link, time, ip FROM messages WHERE session_id = ?1 ORDER BY id DESC LIMIT 20").unwrap();
    let data: Vec<Value> = st.query_map([sid], |r| Ok(json!({"tenant": TENANT, "session_id": sid, "id": r.get::<_, u64>(0)?, "sender": r.get::<_, String>(1)?,
        "sender_id": r.get::<_, u64>(2)?, "content": r.get::<_, String>(3)?, "content_type": r.get::<_, u8>(4)?, "link": r.get::<_, String>(5)?,
        "time": r.get::<_, i64>(6)?, "ip": r.get::<_, String>(7)?}))).unwrap().map(Result::unwrap).collect();
    json!({"total": total, "page": 1, "pagesize": 20, "data": data}).to_string()
}

/// The live list as a platform computes it: the agent's sessions by
/// activity, each with its last message and an unread count counted from the
/// messages table per row (member messages above the agent's read mark).
/// Needs `live_list_schema` first. Returns (total, [(session id, unread)]) and
/// the JSON page.
fn sqlite_live(c: &Connection, agent: u64) -> ((u64, Vec<(u64, u64)>), String) {
    let total: u64 = c
        .prepare_cached("SELECT COUNT(*) FROM sessions WHERE uniacid = ?1 AND employee_id = ?2")
        .unwrap()
        .query_row([TENANT, agent], |r| r.get(0))
        .unwrap();
    let mut st = c.prepare_cached(
        "SELECT s.id, s.uid, s.last_updated_at, s.agent_read_upto,
                (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id AND m.sender = 'member' AND m.id > s.agent_read_upto),
                lm.id, lm.sender, lm.content, lm.time, u.nickname, u.avatar
         FROM sessions s
         LEFT JOIN members u ON u.uid = s.uid
         LEFT JOIN messages lm ON lm.id = (SELECT MAX(id) FROM messages WHERE session_id = s.id)
         WHERE s.uniacid = ?1 AND s.employee_id = ?2
         ORDER BY s.last_updated_at DESC, s.id DESC LIMIT 20").unwrap();
    let rows: Vec<Value> = st
        .query_map([TENANT, agent], |r| {
            Ok(json!({"id": r.get::<_, u64>(0)?, "uid": r.get::<_, u64>(1)?, "activity_at": r.get::<_, i64>(2)?,
                "agent_read_upto": r.get::<_, u64>(3)?, "un_read_num": r.get::<_, u64>(4)?,
                "last_message": {"id": r.get::<_, Option<u64>>(5)?, "sender": r.get::<_, Option<String>>(6)?,
                    "content": r.get::<_, Option<String>>(7)?, "time": r.get::<_, Option<i64>>(8)?},
                "nickname": r.get::<_, Option<String>>(9)?, "avatar": r.get::<_, Option<String>>(10)?}))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let ids = rows
        .iter()
        .map(|r| {
            (
                r["id"].as_u64().unwrap(),
                r["un_read_num"].as_u64().unwrap(),
            )
        })
        .collect();
    let text = json!({"total": total, "page": 1, "pagesize": 20, "data": rows}).to_string();
    ((total, ids), text)
}

/// The message search workloads: name and query.
fn message_queries(q: &Queries) -> [(&'static str, &str); 4] {
    [
        ("search_messages_cjk2", q.msg_cjk2.as_str()),
        ("search_messages_cjk4", q.msg_cjk4.as_str()),
        ("search_messages_latin", q.msg_latin.as_str()),
        ("search_messages_order", q.msg_order.as_str()),
    ]
}

/// Message search as SQL does it: the total and the newest 20 with
/// `content LIKE '%q%'`, over the table or its FTS5 trigram index.
fn sqlite_search_messages(c: &Connection, text: &str, fts: bool) -> (u64, String) {
    let pattern = format!("%{text}%");
    let (count, page) = if fts {
        ("SELECT COUNT(*) FROM messages_fts WHERE content LIKE ?1",
         "SELECT m.id, m.session_id, m.sender, m.content, m.time FROM messages_fts f JOIN messages m ON m.id = f.rowid WHERE f.content LIKE ?1 ORDER BY m.id DESC LIMIT 20")
    } else {
        ("SELECT COUNT(*) FROM messages WHERE uniacid = 1 AND content LIKE ?1",
         "SELECT id, session_id, sender, content, time FROM messages WHERE uniacid = 1 AND content LIKE ?1 ORDER BY id DESC LIMIT 20")
    };
    let total: u64 = c
        .prepare_cached(count)
        .unwrap()
        .query_row([&pattern], |r| r.get(0))
        .unwrap();
    let mut st = c.prepare_cached(page).unwrap();
    let data: Vec<Value> = st
        .query_map([&pattern], |r| {
            Ok(json!({"id": r.get::<_, u64>(0)?, "session_id": r.get::<_, u64>(1)?, "sender": r.get::<_, String>(2)?,
                "content": r.get::<_, String>(3)?, "time": r.get::<_, i64>(4)?}))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    (total, json!({"total": total, "data": data}).to_string())
}

/// The read mark column and the index a platform's live list needs.
fn live_list_schema(c: &Connection) {
    c.execute_batch(
        "ALTER TABLE sessions ADD COLUMN agent_read_upto INTEGER NOT NULL DEFAULT 0;
         CREATE INDEX IF NOT EXISTS sessions_employee_recent ON sessions (uniacid, employee_id, last_updated_at, id);",
    )
    .unwrap();
}

pub(crate) fn sqlite_append(c: &Connection, m: &Message) {
    let tx = c.unchecked_transaction().unwrap();
    tx.prepare_cached("INSERT INTO messages (uniacid, session_id, sender, sender_id, content, content_type, link, time, ip) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)").unwrap()
        .execute(params![m.tenant, m.session_id, m.sender.as_str(), m.sender_id, m.content, m.content_type, m.link, m.time, m.ip]).unwrap();
    tx.prepare_cached(
        "UPDATE sessions SET last_updated_at = ?1 WHERE id = ?2 AND last_updated_at < ?1",
    )
    .unwrap()
    .execute(params![m.time, m.session_id])
    .unwrap();
    tx.commit().unwrap();
}

/// The write side of SQLite with an FTS5 trigram index over message text
/// kept by a trigger, for the runs where chatstore keeps its text index:
/// import, disk and append like for like (`NAME@fts5`).
fn sqlite_fts_writes(dir: &Path, base: &Path, msgs: &Path, plan: &Plan, r: &mut Results) {
    let db = dir.join("sqlite-fts.db");
    let mut c = sqlite_open(&db);
    c.execute_batch(SCHEMA).unwrap();
    c.execute_batch(
        "CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', content_rowid='id', tokenize='trigram');
         CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN
           INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
         END;",
    )
    .unwrap();
    let (per_message, n) = sqlite_timed_import(&mut c, base, msgs);
    push(r, "import_messages@fts5", "us", once(per_message));
    drop(c);
    push(
        r,
        "disk_bytes_per_message@fts5",
        "bytes",
        once(measure::disk_bytes(&db) as f64 / n as f64),
    );
    let c = sqlite_open(&db);
    push(r, "append_message@fts5", "us", sqlite_appends(&c, plan));
    drop(c);
    let _ = std::fs::remove_file(&db);
}

/// Imports the base records, then the messages, timed: microseconds per
/// message (the sessions' activity time set and the WAL checkpointed
/// included) and the number of messages.
fn sqlite_timed_import(c: &mut Connection, base: &Path, msgs: &Path) -> (f64, u64) {
    sqlite_import(c, base);
    let t = Instant::now();
    let n = sqlite_import(c, msgs);
    // The activity time the platform keeps in sessions.last_updated_at.
    c.execute_batch("UPDATE sessions SET last_updated_at = MAX(last_updated_at, COALESCE((SELECT time FROM messages m WHERE m.session_id = sessions.id ORDER BY m.id DESC LIMIT 1), 0)); PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    (t.elapsed().as_secs_f64() * 1e6 / n as f64, n)
}

/// `plan.appends` buffered appends, each timed.
fn sqlite_appends(c: &Connection, plan: &Plan) -> Stat {
    let mut i = 0u64;
    measure::time(plan.appends, || {
        i += 1;
        sqlite_append(c, &new_message(1 + i % 1000, i));
    })
}

/// Runs every workload on SQLite (and the FTS5 variant of the filters).
pub(crate) fn sqlite(dir: &Path, base: &Path, msgs: &Path, q: &Queries, plan: &Plan) -> Results {
    let mut r = Results::new();
    let db = dir.join("sqlite.db");
    let mut c = sqlite_open(&db);
    c.execute_batch(SCHEMA).unwrap();
    let (per_message, n) = sqlite_timed_import(&mut c, base, msgs);
    push(&mut r, "import_messages", "us", once(per_message));
    measure::note_anon();
    drop(c);
    push(
        &mut r,
        "disk_bytes_per_message",
        "bytes",
        once(measure::disk_bytes(&db) as f64 / n as f64),
    );
    let t = Instant::now();
    let c = sqlite_open(&db);
    push(&mut r, "open", "us", once(t.elapsed().as_secs_f64() * 1e6));
    drop(c);
    let t = Instant::now();
    let c = sqlite_open(&db);
    push(
        &mut r,
        "open_again",
        "us",
        once(t.elapsed().as_secs_f64() * 1e6),
    );
    let cases: [(&str, Option<u64>, Option<&str>, u64); 8] = [
        ("history_list_page1", Some(q.agent), None, 1),
        ("history_list_deep", None, None, 1000),
        ("history_list_filter_cjk2", Some(q.agent), Some(&q.cjk2), 1),
        (
            "history_list_filter_latin",
            Some(q.agent),
            Some(&q.latin),
            1,
        ),
        (
            "history_list_filter_mobile4",
            Some(q.agent),
            Some(&q.mobile4),
            1,
        ),
        ("history_list_filter_vi2", Some(q.agent), Some(&q.vi2), 1),
        (
            "history_list_filter_char1",
            Some(q.agent),
            Some(&q.char1),
            1,
        ),
        ("history_list_filter_vi2_all", None, Some(&q.vi2), 1),
    ];
    for (name, emp, un, page) in cases {
        push(
            &mut r,
            name,
            "us",
            measure::time(plan.queries, || {
                std::hint::black_box(sqlite_history(&c, emp, un, false, page));
            }),
        );
    }
    push(
        &mut r,
        "hischat_page1",
        "us",
        measure::time(plan.queries, || {
            std::hint::black_box(sqlite_hischat(&c, 1000, "0123456789abcdef0123456789abcdef"));
        }),
    );
    push(
        &mut r,
        "messages_page1",
        "us",
        measure::time(plan.queries, || {
            std::hint::black_box(sqlite_messages(&c, q.hot_session));
        }),
    );
    live_list_schema(&c);
    push(
        &mut r,
        "live_list_page1",
        "us",
        measure::time(plan.queries, || {
            std::hint::black_box(sqlite_live(&c, q.agent));
        }),
    );
    for (name, text) in message_queries(q).into_iter().filter(|_| plan.text_index) {
        push(
            &mut r,
            name,
            "us",
            measure::time(plan.queries, || {
                std::hint::black_box(sqlite_search_messages(&c, text, false));
            }),
        );
    }
    // FTS5 trigram over message text (queried with LIKE, which the trigram
    // tokenizer answers from its index for 3 characters and more).
    if plan.text_index {
        c.execute_batch("CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', content_rowid='id', tokenize='trigram');
                     INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');").unwrap();
    }
    for (name, text) in message_queries(q).into_iter().filter(|_| plan.text_index) {
        push(
            &mut r,
            &format!("{name}@fts5"),
            "us",
            measure::time(plan.queries, || {
                std::hint::black_box(sqlite_search_messages(&c, text, true));
            }),
        );
    }
    // FTS5 trigram index over the member fields for the filters.
    c.execute_batch("CREATE VIRTUAL TABLE members_fts USING fts5(nickname, mobile, content='members', content_rowid='uid', tokenize='trigram');
                     INSERT INTO members_fts(members_fts) VALUES ('rebuild');").unwrap();
    for (name, emp, un, page) in cases.iter().filter(|c| c.2.is_some()) {
        push(
            &mut r,
            &format!("{name}@fts5"),
            "us",
            measure::time(plan.queries, || {
                std::hint::black_box(sqlite_history(&c, *emp, *un, true, *page));
            }),
        );
    }
    push(&mut r, "append_message", "us", sqlite_appends(&c, plan));
    drop(c);
    if plan.text_index {
        sqlite_fts_writes(dir, base, msgs, plan, &mut r);
    }
    let path = db.clone();
    let samples = two_writers(plan.durable, move |w, i| {
        thread_local! { static CONN: std::cell::RefCell<Option<Connection>> = const { std::cell::RefCell::new(None) }; }
        CONN.with(|cell| {
            let mut cell = cell.borrow_mut();
            let c = cell.get_or_insert_with(|| {
                let c = sqlite_open(&path);
                c.execute_batch("PRAGMA synchronous = FULL;").unwrap();
                c
            });
            sqlite_append(
                c,
                &new_message(1 + (i * 2 + w) % 1000, 1_000_000 + i * 2 + w),
            );
        });
    });
    push(&mut r, "append_message_durable", "us", samples);
    let exe = std::env::current_exe().unwrap();
    let reopen = crate::processes::open_after_kill(&exe, dir, "sqlite", || {
        let c = sqlite_open(&db);
        let n: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM sessions WHERE uniacid = ?1",
                [TENANT],
                |row| row.get(0),
            )
            .unwrap();
        std::hint::black_box(n);
    });
    push(&mut r, "open_after_kill", "us", once(reopen));
    push(
        &mut r,
        "peak_rss",
        "bytes",
        once(measure::peak_rss() as f64),
    );
    push(
        &mut r,
        "rss_anon",
        "bytes",
        once(measure::note_anon() as f64),
    );
    r
}

/// Both engines must give the same answers before their times mean anything.
pub(crate) fn agree(dir: &Path, q: &Queries) -> Result<(), String> {
    let store =
        Store::open(dir.join("chatstore.db"), chat_options(false)).map_err(|e| e.to_string())?;
    let c = sqlite_open(&dir.join("sqlite.db"));
    let ids = |v: &Value| -> (u64, Vec<u64>) {
        (
            v["data"]["total"].as_u64().unwrap_or(0),
            v["data"]["data"]
                .as_array()
                .map(|a| a.iter().filter_map(|r| r["id"].as_u64()).collect())
                .unwrap_or_default(),
        )
    };
    for (emp, un, page, order) in [
        (Some(q.agent), None, 1, Order::Id),
        (None, None, 1000, Order::Id),
        (Some(q.agent), Some(q.cjk2.as_str()), 1, Order::Id),
        (Some(q.agent), Some(q.latin.as_str()), 1, Order::Id),
    ] {
        let mut query = HistoryQuery::new(TENANT);
        query.employee = emp;
        query.user_name = un.map(str::to_owned);
        query.page = page;
        query.order = order;
        let a: Value = serde_json::from_str(
            &store
                .history_list_text(&HistoryRequest {
                    query,
                    page_url: "/h".into(),
                })
                .unwrap(),
        )
        .unwrap();
        let b: Value = serde_json::from_str(&sqlite_history(&c, emp, un, false, page)).unwrap();
        // LIKE is case-insensitive for ASCII only and knows no diacritics, so
        // chatstore may find more for Latin queries, never fewer.
        let (ta, _) = ids(&a);
        let (tb, _) = ids(&b);
        if (un.is_none() || un == Some(q.cjk2.as_str())) && ids(&a) != ids(&b) || ta < tb {
            return Err(format!(
                "history-list {emp:?} {un:?} page {page}: chatstore {:?} vs sqlite {:?}",
                ids(&a),
                ids(&b)
            ));
        }
    }
    let a: Value = serde_json::from_str(
        &store
            .hischat_text(1000, "0123456789abcdef0123456789abcdef", 1)
            .unwrap(),
    )
    .unwrap();
    let b: Value = serde_json::from_str(&sqlite_hischat(
        &c,
        1000,
        "0123456789abcdef0123456789abcdef",
    ))
    .unwrap();
    let hashes = |v: &Value| {
        v["history"]
            .as_array()
            .map(|a| a.iter().map(|r| r["hash"].clone()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    if hashes(&a) != hashes(&b) {
        return Err(format!(
            "hischat pages differ: chatstore {:?} vs sqlite {:?}",
            &hashes(&a)[..3.min(hashes(&a).len())],
            &hashes(&b)[..3.min(hashes(&b).len())]
        ));
    }
    let live = store
        .live_sessions(TENANT, q.agent, 1, 20)
        .map_err(|e| e.to_string())?;
    let mine = (
        live.total,
        live.data
            .iter()
            .map(|v| (v.session.id, v.read.unread_by_agent))
            .collect::<Vec<_>>(),
    );
    let (theirs, _) = sqlite_live(&c, q.agent);
    if mine != theirs {
        return Err(format!(
            "live lists differ: chatstore {mine:?} vs sqlite {theirs:?}"
        ));
    }
    Ok(())
}
