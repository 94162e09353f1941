//! The deterministic dataset: realistic members, agents, sessions and
//! messages written as chatstore JSON Lines, the input of both engines.

use std::io::Write;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Size of a dataset.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct Scale {
    /// Name (tiny, small, medium, large).
    pub name: &'static str,
    /// Members.
    pub members: u64,
    /// Agents.
    pub agents: u64,
    /// Sessions.
    pub sessions: u64,
    /// Messages.
    pub messages: u64,
}

impl Scale {
    /// The named scales of the benchmark issue (and `tiny` for CI smoke runs).
    pub(crate) fn named(name: &str) -> Option<Scale> {
        let (name, m, a, s, msg) = match name {
            "tiny" => ("tiny", 1_000, 5, 2_000, 10_000),
            "small" => ("small", 10_000, 20, 20_000, 200_000),
            "medium" => ("medium", 100_000, 50, 200_000, 2_000_000),
            "large" => ("large", 1_000_000, 200, 2_000_000, 20_000_000),
            _ => return None,
        };
        Some(Scale {
            name,
            members: m,
            agents: a,
            sessions: s,
            messages: msg,
        })
    }
}

/// The queries the filter workloads run, chosen from the data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Queries {
    /// The agent the history-list workloads run for (the busiest).
    pub agent: u64,
    /// Two Chinese characters of a member of that agent.
    pub cjk2: String,
    /// Three Latin letters of a member of that agent.
    pub latin: String,
    /// Four digits of a mobile of a member of that agent.
    pub mobile4: String,
    /// A two-letter Vietnamese family name (`Lê`): a whole name, and what
    /// people type first.
    #[serde(default)]
    pub vi2: String,
    /// One character: the first of `cjk2` (a Chinese surname).
    #[serde(default)]
    pub char1: String,
    /// The hottest session (the skew makes session 1 the busiest).
    pub hot_session: u64,
    /// Message search: two and four Chinese characters of the message text,
    /// a Latin word and digits of order numbers.
    pub msg_cjk2: String,
    /// See `msg_cjk2`.
    pub msg_cjk4: String,
    /// See `msg_cjk2`.
    pub msg_latin: String,
    /// See `msg_cjk2`.
    pub msg_order: String,
}

/// The tenant of the dataset.
pub(crate) const TENANT: u64 = 1;

const SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤";
const GIVEN: &str = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍建华红梅鑫波斌宇浩凯小龙云飞婷雪琳晨阳佳怡子涵梓萱一诺欣然";
const VI_FAMILY: &[&str] = &[
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ",
    "Hồ", "Ngô", "Dương", "Lý",
];
const VI_MIDDLE: &[&str] = &[
    "Văn", "Thị", "Hữu", "Đức", "Minh", "Ngọc", "Thanh", "Quốc", "Gia", "Xuân",
];
const VI_GIVEN: &[&str] = &[
    "An",
    "Bình",
    "Cường",
    "Dũng",
    "Hùng",
    "Hương",
    "Lan",
    "Linh",
    "Long",
    "Mai",
    "Nam",
    "Phong",
    "Quân",
    "Sơn",
    "Thảo",
    "Trang",
    "Trường",
    "Tuấn",
    "Việt",
    "Yến",
];
const HANDLES: &[&str] = &[
    "shop", "happy", "lucky", "tiger", "sunny", "moon", "star", "cool", "baby", "king", "queen",
    "smile", "angel", "dragon", "panda", "coffee", "candy", "ocean",
];
const ZH_TEXT: &str = "你好请问这个商品有货吗什么时候发货可以便宜一点吗订单已经付款了麻烦尽快发货谢谢亲在吗尺码偏大还是偏小颜色和图片一样吗包邮吗退换货怎么处理";
const VI_WORDS: &[&str] = &[
    "chào", "shop", "ơi", "còn", "hàng", "không", "giá", "bao", "nhiêu", "giao", "hàng", "mấy",
    "ngày", "cảm", "ơn", "đơn", "của", "em", "size", "màu", "đỏ",
];

fn pick<'a>(rng: &mut StdRng, xs: &'a [&'a str]) -> &'a str {
    xs[rng.gen_range(0..xs.len())]
}

fn chars(s: &str) -> Vec<char> {
    s.chars().collect()
}

/// A skewed pick in 1..=n: low numbers are hot.
fn skewed(rng: &mut StdRng, n: u64, power: i32) -> u64 {
    let u: f64 = rng.gen();
    1 + ((u.powi(power)) * n as f64) as u64 % n
}

fn nickname(rng: &mut StdRng, surnames: &[char], given: &[char]) -> String {
    match rng.gen_range(0..10) {
        0..=3 => {
            let mut s = String::new();
            s.push(surnames[rng.gen_range(0..surnames.len())]);
            for _ in 0..rng.gen_range(1..=2) {
                s.push(given[rng.gen_range(0..given.len())]);
            }
            s
        }
        4..=6 => format!(
            "{} {} {}",
            pick(rng, VI_FAMILY),
            pick(rng, VI_MIDDLE),
            pick(rng, VI_GIVEN)
        ),
        _ => format!(
            "{}_{}{}",
            pick(rng, HANDLES),
            pick(rng, HANDLES),
            rng.gen_range(1..999)
        ),
    }
}

fn mobile(rng: &mut StdRng) -> String {
    let cn = format!(
        "1{}{:09}",
        rng.gen_range(3..=9),
        rng.gen_range(0..1_000_000_000u64)
    );
    let vn = format!("9{:08}", rng.gen_range(0..100_000_000u64));
    match rng.gen_range(0..8) {
        0 => cn,
        1 => format!("+86 {cn}"),
        2 => format!("{}-{}-{}", &cn[..3], &cn[3..7], &cn[7..]),
        3 => format!("0{vn}"),
        4 => format!("+84 {} {} {}", &vn[..3], &vn[3..6], &vn[6..]),
        5 => format!("0{} {} {}", &vn[..3], &vn[3..6], &vn[6..]),
        _ => String::new(),
    }
}

fn content(rng: &mut StdRng, zh: &[char]) -> String {
    let len = match rng.gen_range(0..10) {
        0..=5 => rng.gen_range(2..20),
        6..=8 => rng.gen_range(20..80),
        _ => rng.gen_range(80..300),
    };
    if rng.gen_bool(0.5) {
        let start = rng.gen_range(0..zh.len());
        (0..len).map(|i| zh[(start + i) % zh.len()]).collect()
    } else {
        let mut s = String::new();
        while s.chars().count() < len {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(pick(rng, VI_WORDS));
        }
        if rng.gen_bool(0.1) {
            s.push_str(&format!(
                " đơn hàng #{}",
                rng.gen_range(100_000_000..999_999_999u64)
            ));
        }
        s
    }
}

/// Writes the dataset as JSON Lines: the account, members, agents and
/// sessions to `out`, the messages (in time order, skewed to hot sessions) to
/// `msgs`. Returns the queries for the filter workloads.
pub(crate) fn generate(
    scale: Scale,
    seed: u64,
    out: &mut impl Write,
    msgs: &mut impl Write,
) -> std::io::Result<Queries> {
    let mut rng = StdRng::seed_from_u64(seed);
    let (surnames, given, zh) = (chars(SURNAMES), chars(GIVEN), chars(ZH_TEXT));
    let t = TENANT;
    let mut nicks = Vec::with_capacity(scale.members as usize);
    let mut mobiles = Vec::with_capacity(scale.members as usize);
    writeln!(
        out,
        "{}",
        json!({"kind": "account", "sso_id": 1000, "tenant": t, "hash": "0123456789abcdef0123456789abcdef"})
    )?;
    for uid in 1..=scale.members {
        let nick = nickname(&mut rng, &surnames, &given);
        let mob = mobile(&mut rng);
        writeln!(
            out,
            "{}",
            json!({"kind": "member", "tenant": t, "uid": uid, "nickname": nick, "mobile": mob,
            "avatar": "/addons/yun_shop/static/images/photo-mr.jpg", "registered": rng.gen_bool(0.7)})
        )?;
        nicks.push(nick);
        mobiles.push(mob);
    }
    for id in 1..=scale.agents {
        writeln!(
            out,
            "{}",
            json!({"kind": "agent", "tenant": t, "id": id, "uid": 10_000_000 + id,
            "nickname": format!("客服{id:04}"), "avatar": "https://localhost:82/attachment/images/agent.jpg"})
        )?;
    }
    let base_time: i64 = 1_600_000_000;
    let mut session_uid = Vec::with_capacity(scale.sessions as usize);
    let mut agent_members: Vec<u64> = Vec::new();
    for id in 1..=scale.sessions {
        let uid = rng.gen_range(1..=scale.members);
        let agent = skewed(&mut rng, scale.agents, 2);
        if agent == 1 {
            agent_members.push(uid);
        }
        session_uid.push(uid);
        writeln!(
            out,
            "{}",
            json!({"kind": "session", "tenant": t, "id": id, "uid": uid, "agent_id": agent,
            "created_at": base_time + id as i64, "last_updated_at": 0, "product_id": rng.gen_range(0..1000),
            "hash": format!("{:032x}", rng.gen::<u128>())})
        )?;
    }
    for id in 1..=scale.messages {
        let sid = skewed(&mut rng, scale.sessions, 3);
        let from_member = rng.gen_bool(0.55);
        let uid = session_uid[(sid - 1) as usize];
        writeln!(
            msgs,
            "{}",
            json!({"kind": "message", "tenant": t, "session_id": sid, "id": id,
            "sender": if from_member { "member" } else { "agent" }, "sender_id": if from_member { uid } else { 1 },
            "content": content(&mut rng, &zh), "content_type": 0, "link": "",
            "time": base_time + 1_000_000 + id as i64, "ip": if from_member { "42.114.43.124" } else { "" }})
        )?;
    }
    // Queries: substrings of members the busiest agent (1) serves.
    let mut q = Queries {
        agent: 1,
        cjk2: String::new(),
        latin: String::new(),
        mobile4: String::new(),
        vi2: "Lê".into(),
        char1: String::new(),
        hot_session: 1,
        msg_cjk2: zh[10..12].iter().collect(),
        msg_cjk4: zh[20..24].iter().collect(),
        msg_latin: "shop".into(),
        msg_order: "12345".into(),
    };
    for uid in agent_members {
        let n = &nicks[(uid - 1) as usize];
        let c: Vec<char> = n.chars().collect();
        if q.cjk2.is_empty() && c.len() >= 2 && chatstore::search::is_cjk(c[0]) {
            q.cjk2 = c[..2].iter().collect();
        }
        if q.latin.is_empty() && c.len() >= 4 && c[..3].iter().all(|x| x.is_ascii_alphabetic()) {
            q.latin = c[..3].iter().collect();
        }
        let digits = chatstore::search::digits(&mobiles[(uid - 1) as usize]);
        if q.mobile4.is_empty() && digits.len() >= 8 {
            q.mobile4 = digits[4..8].to_string();
        }
    }
    q.char1 = q.cjk2.chars().take(1).collect();
    Ok(q)
}
