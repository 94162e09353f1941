//! The two endpoints: request parsing with the platforms' leniency, and the
//! renderers producing exactly their JSON values (CONTRACT §2, §3).
//!
//! Pure: it reads no store and writes none; the read side hands it typed
//! pages (and hischat's login outcome).

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::limits;
use crate::model::{Member, Sender};
use crate::options::RenderSettings;
use crate::read::{resolve_paging, Cursor, HistoryPage, HistoryQuery, Order, Refusal};

/// hischat's answer when the hash is missing or empty.
pub const HISCHAT_NO_HASH: &str = "Khong co ma bao mat";
/// hischat's answer for a wrong hash or an unknown account (the same for both,
/// so a caller cannot tell which accounts exist).
pub const HISCHAT_BAD_HASH: &str = "Ma bao mat khong dung";

/// Reads an integer the way PHP's `FILTER_VALIDATE_INT` does: a JSON integer,
/// or a string holding one (surrounding white space allowed). Anything else
/// is `None`.
pub fn lenient_int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let s = s.trim();
            let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
            let canonical = !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && (digits == "0" || !digits.starts_with('0'));
            if canonical {
                s.parse().ok()
            } else {
                None
            }
        }
        _ => None,
    }
}

fn required_u64(obj: &Map<String, Value>, key: &str) -> Result<u64> {
    match obj.get(key) {
        None | Some(Value::Null) => Err(Error::invalid(key, "is required")),
        v => lenient_int(v)
            .filter(|n| *n >= 0)
            .map(|n| n as u64)
            .ok_or_else(|| Error::invalid(key, "must be a non-negative integer")),
    }
}

/// Request parameters: a JSON object holding only the `known` keys (an
/// unknown one, a typo, is refused naming it).
fn params<'v>(v: &'v Value, known: &[&str]) -> Result<&'v Map<String, Value>> {
    let obj = v
        .as_object()
        .ok_or_else(|| Error::invalid("params", "must be a JSON object"))?;
    if let Some(k) = obj.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(Error::invalid("params", format!("unknown parameter {k:?}")));
    }
    Ok(obj)
}

fn optional_str(obj: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(Error::invalid(key, "must be a string")),
    }
}

/// A history-list request: the typed query plus the page URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct HistoryRequest {
    /// The query.
    pub query: HistoryQuery,
    /// Base of `next_page_url` / `prev_page_url`.
    pub page_url: String,
}

impl HistoryRequest {
    /// Reads request parameters: `tenant` (required), `employee`, `user_name`,
    /// `page`, `pagesize`, `order`, `page_url`, `cursor`. `page` and
    /// `pagesize` follow the paginator's leniency (anything unusable becomes
    /// the default); unknown keys are refused.
    pub fn from_json(v: &Value) -> Result<HistoryRequest> {
        let obj = params(
            v,
            &[
                "tenant",
                "employee",
                "user_name",
                "page",
                "pagesize",
                "order",
                "page_url",
                "cursor",
            ],
        )?;
        let employee = match obj.get("employee") {
            None | Some(Value::Null) => None,
            Some(_) => Some(required_u64(obj, "employee")?),
        };
        HistoryRequest::new(HistoryParams {
            tenant: required_u64(obj, "tenant")?,
            employee,
            user_name: optional_str(obj, "user_name")?,
            page: lenient_int(obj.get("page")),
            pagesize: lenient_int(obj.get("pagesize")),
            order: optional_str(obj, "order")?,
            page_url: optional_str(obj, "page_url")?,
            cursor: optional_str(obj, "cursor")?,
        })
    }

    /// Builds a request from its parameters as an interface received them:
    /// the one place their rules are applied, whatever the interface (the
    /// endpoints' JSON, the CLI's flags, Python's arguments). `page` and
    /// `pagesize` follow the paginator ([`resolve_paging`]: below 1 or
    /// absent is the default, a page size is at most 100), `order` is
    /// `"id"` (the default) or `"recent"`, `cursor` is one a page returned.
    pub fn new(p: HistoryParams) -> Result<HistoryRequest> {
        let (page, pagesize) = resolve_paging(p.page, p.pagesize);
        let order = match p.order.as_deref() {
            None => Order::Id,
            Some(s) => Order::parse(s)?,
        };
        let after = p.cursor.map(|c| c.parse::<Cursor>()).transpose()?;
        Ok(HistoryRequest {
            query: HistoryQuery {
                tenant: p.tenant,
                employee: p.employee,
                user_name: p.user_name,
                page,
                pagesize,
                order,
                after,
            },
            page_url: p.page_url.unwrap_or_default(),
        })
    }
}

/// A history-list request's parameters before their rules are applied
/// (see [`HistoryRequest::new`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryParams {
    /// The tenant (the platform's `i`, uniacid).
    pub tenant: u64,
    /// The agent (`employee_id`); `None`: every agent's sessions.
    pub employee: Option<u64>,
    /// The member filter, nickname or mobile (`"0"` and `""`: no filter,
    /// as on the platform).
    pub user_name: Option<String>,
    /// The page as given (`None` when absent or not a whole number).
    pub page: Option<i64>,
    /// The page size as given.
    pub pagesize: Option<i64>,
    /// `"id"` or `"recent"`.
    pub order: Option<String>,
    /// Base of `next_page_url` / `prev_page_url`.
    pub page_url: Option<String>,
    /// A cursor a page returned (`next_cursor`).
    pub cursor: Option<String>,
}

/// A request for a page of a session's messages, from parameters as the
/// bindings pass them (PHP's request values may be strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessagesRequest {
    /// The tenant.
    pub tenant: u64,
    /// The session.
    pub session_id: u64,
    /// 1-based page.
    pub page: u64,
    /// Rows per page (at most 100).
    pub pagesize: u64,
}

impl MessagesRequest {
    /// Reads `tenant` and `session_id` (required non-negative integers, or
    /// strings of one: `"abc"`, `"2abc"` and `2.9` are refused naming the
    /// key), `page` and `pagesize` (lenient as history-list's: anything
    /// unusable is the default, 1 and 20). Unknown keys are refused.
    pub fn from_json(v: &Value) -> Result<MessagesRequest> {
        let obj = params(v, &["tenant", "session_id", "page", "pagesize"])?;
        let positive = |key: &str| lenient_int(obj.get(key)).filter(|n| *n >= 1);
        Ok(MessagesRequest {
            tenant: required_u64(obj, "tenant")?,
            session_id: required_u64(obj, "session_id")?,
            page: positive("page").map_or(1, |n| n as u64),
            pagesize: positive("pagesize").map_or(crate::read::MESSAGES_PAGESIZE, |n| {
                (n as u64).min(limits::MAX_PAGESIZE)
            }),
        })
    }
}

/// Formats unix seconds as `Y-m-d H:i:s` in the offset; `""` for 0.
pub fn format_time(t: i64, settings: &RenderSettings) -> String {
    if t == 0 {
        return String::new();
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.to_offset(settings.utc_offset).format(&fmt).ok())
        .unwrap_or_default()
}

/// The platform's media rule for `avatar_image`.
pub fn avatar_image(avatar: &str, settings: &RenderSettings) -> String {
    let base = settings.media_base.trim_end_matches('/');
    if avatar.is_empty() {
        settings.default_avatar.clone()
    } else if avatar.starts_with("http://") || avatar.starts_with("https://") {
        avatar.to_string()
    } else if let Some(i) = avatar.find("/addons/") {
        format!("{base}{}", &avatar[i..])
    } else {
        format!("{base}/attachment/{}", avatar.trim_start_matches('/'))
    }
}

/// A page's link as Laravel 5.3's paginator writes it: its constructor
/// strips trailing slashes from the path (`rtrim($path, '/')`) unless the
/// path is `/`, and `url()` appends `?page=N` (`&page=N` after a query).
fn page_link(page_url: &str, page: u64) -> String {
    let path = if page_url == "/" {
        page_url
    } else {
        page_url.trim_end_matches('/')
    };
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}page={page}")
}

#[derive(Serialize)]
struct Employee<'a> {
    id: u64,
    uid: u64,
    uniacid: u64,
    nickname: &'a str,
    avatar: &'a str,
}

#[derive(Serialize)]
struct User<'a> {
    uid: u64,
    uniacid: u64,
    nickname: &'a str,
    avatar: &'a str,
    mobile: &'a str,
    avatar_image: String,
    username: &'a str,
}

#[derive(Serialize)]
struct HistoryRow<'a> {
    id: u64,
    uniacid: u64,
    uid: u64,
    employee_id: u64,
    last_updated_at: String,
    has_one_employee: Option<Employee<'a>>,
    has_one_user: Option<User<'a>>,
}

#[derive(Serialize)]
struct Paginator<'a> {
    total: u64,
    per_page: u64,
    current_page: u64,
    last_page: u64,
    next_page_url: Option<String>,
    prev_page_url: Option<String>,
    from: Option<u64>,
    to: Option<u64>,
    data: Vec<HistoryRow<'a>>,
}

/// The history-list response (the platform's envelope around a Laravel 5.3
/// paginator), borrowing from a page. Serializes with the seed's key order;
/// serialize it straight to text rather than through `Value` on hot paths.
#[derive(Serialize)]
pub(crate) struct HistoryResponse<'a> {
    result: u8,
    msg: &'static str,
    data: Paginator<'a>,
}

impl<'a> HistoryResponse<'a> {
    /// Renders a page with the settings and the page URL.
    pub(crate) fn new(page: &'a HistoryPage, settings: &RenderSettings, page_url: &str) -> Self {
        let per_page = page.per_page.max(1);
        let p = page.current_page;
        let last_page = page.total.div_ceil(per_page);
        let (from, to) = if page.rows.is_empty() {
            (None, None)
        } else {
            let from = (p - 1) * per_page + 1;
            (Some(from), Some(from + page.rows.len() as u64 - 1))
        };
        let data = page
            .rows
            .iter()
            .map(|v| {
                let s = &v.session;
                HistoryRow {
                    id: s.id,
                    uniacid: s.tenant,
                    uid: s.uid,
                    employee_id: s.agent_id,
                    last_updated_at: format_time(v.activity_at, settings),
                    has_one_employee: v.agent.as_ref().map(|a| Employee {
                        id: a.id,
                        uid: a.uid,
                        uniacid: a.tenant,
                        nickname: &a.nickname,
                        avatar: &a.avatar,
                    }),
                    has_one_user: v.member.as_ref().map(|m| User {
                        uid: m.uid,
                        uniacid: m.tenant,
                        nickname: &m.nickname,
                        avatar: &m.avatar,
                        mobile: &m.mobile,
                        avatar_image: avatar_image(&m.avatar, settings),
                        username: &m.nickname,
                    }),
                }
            })
            .collect();
        HistoryResponse {
            result: 1,
            msg: "成功",
            data: Paginator {
                total: page.total,
                per_page,
                current_page: p,
                last_page,
                next_page_url: (last_page > p).then(|| page_link(page_url, p + 1)),
                prev_page_url: (p > 1).then(|| page_link(page_url, p - 1)),
                from,
                to,
                data,
            },
        }
    }
}

/// The whole history-list response for a page as a JSON value.
pub fn history_list_value(page: &HistoryPage, settings: &RenderSettings, page_url: &str) -> Value {
    serde_json::to_value(HistoryResponse::new(page, settings, page_url)).unwrap_or(Value::Null)
}

/// The platform's error envelope of history-list.
pub fn history_list_error(msg: &str) -> Value {
    json!({"result": 0, "msg": msg, "data": []})
}

#[derive(Serialize)]
struct ChatMsg<'a> {
    cha_id: String,
    cha_min_id: String,
    cha_max_id: String,
    cha_message: &'a str,
    cha_link: &'a str,
    cha_time: String,
    cha_owner_id: u64,
    cha_support_id: String,
    cha_system_id: &'static str,
    cha_key: &'static str,
    cha_ip: String,
}

#[derive(Serialize)]
struct Conversation<'a> {
    online: u8,
    use_name: &'a str,
    address: &'a str,
    email: &'a str,
    phone: &'a str,
    uss_sso_id: u64,
    use_image: &'a str,
    time: i64,
    to_image: &'static str,
    pro: u64,
    hash: &'a str,
    last_msg: Vec<ChatMsg<'a>>,
    is_uservg: u8,
    support_id: u64,
}

#[derive(Serialize)]
#[serde(untagged)]
enum History<'a> {
    /// `""` on refusals, as the platform answers.
    Refused(&'static str),
    Rows(Vec<Conversation<'a>>),
}

/// The hischat response, borrowing from a page of conversations.
#[derive(Serialize)]
pub(crate) struct HischatResponse<'a> {
    error: &'static str,
    status: u8,
    history: History<'a>,
}

impl<'a> HischatResponse<'a> {
    fn refusal(msg: &'static str) -> Self {
        HischatResponse {
            error: msg,
            status: 0,
            history: History::Refused(""),
        }
    }

    fn rows(page: &'a HistoryPage, sso_id: u64) -> Self {
        static NO_MEMBER: Member = Member {
            tenant: 0,
            uid: 0,
            nickname: String::new(),
            mobile: String::new(),
            avatar: String::new(),
            email: String::new(),
            address: String::new(),
            registered: false,
            online: false,
        };
        let rows = page
            .rows
            .iter()
            .map(|v| {
                let s = &v.session;
                let m = v.member.as_ref().unwrap_or(&NO_MEMBER);
                Conversation {
                    online: u8::from(m.online),
                    use_name: &m.nickname,
                    address: &m.address,
                    email: &m.email,
                    phone: &m.mobile,
                    uss_sso_id: s.uid,
                    use_image: &m.avatar,
                    time: v.activity_at,
                    to_image: "",
                    pro: s.product_id,
                    hash: &s.hash,
                    last_msg: v
                        .last_message
                        .iter()
                        .map(|msg| ChatMsg {
                            cha_id: msg.id.to_string(),
                            cha_min_id: sso_id.min(s.uid).to_string(),
                            cha_max_id: sso_id.max(s.uid).to_string(),
                            cha_message: &msg.content,
                            cha_link: &msg.link,
                            cha_time: msg.time.to_string(),
                            cha_owner_id: msg.sender_id,
                            cha_support_id: if msg.sender == Sender::Agent {
                                msg.sender_id.to_string()
                            } else {
                                "0".into()
                            },
                            cha_system_id: if msg.sender == Sender::System {
                                "1"
                            } else {
                                "0"
                            },
                            cha_key: "0",
                            cha_ip: msg
                                .ip
                                .parse::<std::net::Ipv4Addr>()
                                .map(u32::from)
                                .unwrap_or(0)
                                .to_string(),
                        })
                        .collect(),
                    is_uservg: u8::from(m.registered),
                    support_id: s.agent_id,
                }
            })
            .collect();
        HischatResponse {
            error: "",
            status: 1,
            history: History::Rows(rows),
        }
    }
}

fn to_text(v: &impl Serialize) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::internal(format!("rendering JSON: {e}")))
}

/// The history-list response as JSON text, rendered straight from the
/// page (no intermediate `Value`).
pub(crate) fn history_list_text(
    page: &HistoryPage,
    render: &RenderSettings,
    page_url: &str,
) -> Result<String> {
    to_text(&HistoryResponse::new(page, render, page_url))
}

/// The hischat response as JSON text: the conversations, or the
/// platform's refusal.
pub(crate) fn hischat_text(
    login: &std::result::Result<HistoryPage, Refusal>,
    sso_id: u64,
) -> Result<String> {
    match login {
        Ok(p) => to_text(&HischatResponse::rows(p, sso_id)),
        Err(Refusal::NoHash) => to_text(&HischatResponse::refusal(HISCHAT_NO_HASH)),
        Err(Refusal::BadHash) => to_text(&HischatResponse::refusal(HISCHAT_BAD_HASH)),
    }
}

/// The hischat parameters `sso_id`, `hash`, `page` from a JSON object. A
/// missing hash is the platform's refusal, not an error, so it reads as "".
pub(crate) fn hischat_params(params: &Value) -> Result<(u64, String, i64)> {
    let obj = params
        .as_object()
        .ok_or_else(|| Error::invalid("params", "must be a JSON object"))?;
    let sso_id = required_u64(obj, "sso_id")?;
    let hash = optional_str(obj, "hash")?.unwrap_or_default();
    let page = lenient_int(obj.get("page")).unwrap_or(1);
    Ok((sso_id, hash, page))
}

#[cfg(test)]
mod tests {
    #[test]
    fn messages_requests_are_checked_like_history_list() {
        use super::MessagesRequest;
        let r = MessagesRequest::from_json(
            &json!({"tenant": "2", "session_id": 4, "page": "x", "pagesize": 0}),
        )
        .unwrap();
        assert_eq!((r.tenant, r.session_id, r.page, r.pagesize), (2, 4, 1, 20));
        for bad in [
            json!("abc"),
            json!("2abc"),
            json!(2.9),
            json!(-1),
            json!(null),
        ] {
            let e =
                MessagesRequest::from_json(&json!({"tenant": bad, "session_id": 4})).unwrap_err();
            assert!(e.to_string().contains("tenant"), "{e}");
        }
        let e = MessagesRequest::from_json(&json!({"tenant": 2})).unwrap_err();
        assert!(e.to_string().contains("session_id"), "{e}");
        let e = MessagesRequest::from_json(&json!({"tenant": 2, "session_id": 1, "size": 3}))
            .unwrap_err();
        assert!(e.to_string().contains("size"), "{e}");
    }

    #[test]
    fn page_links_follow_laravel() {
        assert_eq!(super::page_link("/h", 3), "/h?page=3");
        assert_eq!(super::page_link("/h/", 3), "/h?page=3");
        assert_eq!(super::page_link("/h//", 3), "/h?page=3");
        assert_eq!(super::page_link("/", 2), "/?page=2");
        assert_eq!(super::page_link("", 2), "?page=2");
        assert_eq!(super::page_link("/h?x=1", 2), "/h?x=1&page=2");
    }

    use super::*;

    fn settings() -> RenderSettings {
        RenderSettings {
            media_base: "http://localhost:82".into(),
            default_avatar: "http://localhost:82/default.png".into(),
            ..Default::default()
        }
    }

    #[test]
    fn media_rule() {
        let s = settings();
        assert_eq!(
            avatar_image("/addons/yun_shop/static/images/photo-mr.jpg", &s),
            "http://localhost:82/addons/yun_shop/static/images/photo-mr.jpg"
        );
        assert_eq!(
            avatar_image("images/2/a.jpg", &s),
            "http://localhost:82/attachment/images/2/a.jpg"
        );
        assert_eq!(avatar_image("https://x/y.jpg", &s), "https://x/y.jpg");
        assert_eq!(avatar_image("", &s), "http://localhost:82/default.png");
    }

    #[test]
    fn times_render_in_the_offset() {
        let s = settings();
        assert_eq!(format_time(1613271367, &s), "2021-02-14 10:56:07");
        assert_eq!(format_time(0, &s), "");
    }

    #[test]
    fn lenient_ints_follow_filter_validate_int() {
        let v = |x: Value| lenient_int(Some(&x));
        assert_eq!(v(json!(3)), Some(3));
        assert_eq!(v(json!(" 3 ")), Some(3));
        assert_eq!(v(json!("3abc")), None);
        assert_eq!(v(json!("03")), None);
        assert_eq!(v(json!(1.5)), None);
        assert_eq!(v(json!(null)), None);
    }

    #[test]
    fn request_parsing_defaults_and_refusals() {
        let r =
            HistoryRequest::from_json(&json!({"tenant": 2, "page": "x", "pagesize": 500})).unwrap();
        assert_eq!((r.query.page, r.query.pagesize), (1, 100));
        assert!(HistoryRequest::from_json(&json!({"page": 1})).is_err());
        assert!(HistoryRequest::from_json(&json!({"tenant": 2, "pgae": 1}))
            .unwrap_err()
            .to_string()
            .contains("pgae"));
        assert!(HistoryRequest::from_json(&json!({"tenant": 2, "order": "name"})).is_err());
    }
}
