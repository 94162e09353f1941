//! Search semantics of CONTRACT §4: normalization, phone variants, n-grams,
//! and the exact substring test every candidate passes.
//!
//! Nicknames are indexed as CJK unigrams and bigrams (a bigram starts at every
//! CJK character) plus trigrams of every window; mobiles as trigrams of each
//! digit variant. A query's grams are all contained in any text that contains
//! the query, so postings give a superset of the matches and [`Query::matches`]
//! makes the result exact.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Normalizes text for search: NFKC, full case folding, removal of
/// diacritics (combining marks after canonical decomposition), `đ` -> `d`,
/// then NFC so that syllabic scripts (Hangul) compare whole.
pub fn normalize(s: &str) -> String {
    normalized(s).into_owned()
}

/// [`normalize`] without the full pipeline for everyday text: when every
/// character is one the pipeline maps on its own to one character (ASCII,
/// precomposed Latin letters such as Vietnamese ones, CJK unified
/// ideographs, full-width ASCII forms, the ideographic space and common CJK
/// punctuation), it is mapped character by character, and text already in
/// normal form is returned without a copy. Verifying a candidate
/// message is mostly this.
pub fn normalized(s: &str) -> std::borrow::Cow<'_, str> {
    let mut changed = false;
    for c in s.chars() {
        match simple(c) {
            Some(m) => changed |= m != c,
            None => return std::borrow::Cow::Owned(normalize_slow(s)),
        }
    }
    if changed {
        std::borrow::Cow::Owned(s.chars().filter_map(simple).collect())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// The normal form of a character that NFKC, case folding, diacritic
/// removal and NFC map to one character without looking at its neighbours,
/// or `None` for any other character. The unit test `simple_agrees` checks
/// every character this accepts against the full pipeline.
fn simple(c: char) -> Option<char> {
    match c as u32 {
        0x00..=0x7F => Some(c.to_ascii_lowercase()),
        0x3400..=0x4DBF | 0x4E00..=0x9FFF => Some(c),
        // Ideographic space; 、。〃 and the CJK brackets have no decomposition.
        0x3000 => Some(' '),
        0x3001..=0x3003 | 0x3008..=0x3011 | 0x3014..=0x301B => Some(c),
        // Full-width ASCII forms.
        0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).map(|a| a.to_ascii_lowercase()),
        // Precomposed Latin letters (Vietnamese among them): looked up in a
        // table the full pipeline computes once, for those it maps to one
        // character.
        0x80..=0x24F | 0x1E00..=0x1EFF => latin_table()[latin_slot(c)],
        _ => None,
    }
}

const LATIN_LOW: std::ops::RangeInclusive<u32> = 0x80..=0x24F;
const LATIN_EXTENDED_ADDITIONAL: std::ops::RangeInclusive<u32> = 0x1E00..=0x1EFF;

fn latin_slot(c: char) -> usize {
    let c = c as u32;
    if LATIN_LOW.contains(&c) {
        (c - LATIN_LOW.start()) as usize
    } else {
        LATIN_LOW.clone().count() + (c - LATIN_EXTENDED_ADDITIONAL.start()) as usize
    }
}

fn latin_table() -> &'static [Option<char>] {
    static TABLE: std::sync::OnceLock<Vec<Option<char>>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        LATIN_LOW
            .chain(LATIN_EXTENDED_ADDITIONAL)
            .map(|c| {
                let c = char::from_u32(c)?;
                // A combining mark alone would pass the pipeline whole.
                if is_combining_mark(c) {
                    return None;
                }
                let out = normalize_slow(&c.to_string());
                let mut chars = out.chars();
                match (chars.next(), chars.next()) {
                    (Some(one), None) => Some(one),
                    _ => None,
                }
            })
            .collect()
    })
}

fn normalize_slow(s: &str) -> String {
    let folded = caseless::default_case_fold_str(&s.nfkc().collect::<String>());
    folded
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
        .map(|c| match c {
            'đ' | 'Đ' | 'ð' | 'Ð' => 'd',
            c => c,
        })
        .nfc()
        .collect()
}

/// Whether a character is CJK (Han ideographs, kana, Hangul, CJK symbols).
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x2E80..=0x2FDF | 0x3040..=0x30FF | 0x3100..=0x312F | 0x3190..=0x31FF
        | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF
        | 0x20000..=0x3FFFF)
}

/// The ASCII digits of a text after NFKC (so full-width digits count).
pub fn digits(s: &str) -> String {
    s.nfkc().filter(|c| c.is_ascii_digit()).collect()
}

/// The digit forms a stored mobile is found by: its digits, and for a number
/// with a Vietnamese (`84` + 9-10 digits) or Chinese (`86` + 11 digits)
/// country code also the national form (`0` + rest, resp. the rest).
pub fn phone_variants(mobile: &str) -> Vec<String> {
    let d = digits(mobile);
    if d.is_empty() {
        return Vec::new();
    }
    let mut out = vec![d.clone()];
    if let Some(national) = national_form(&d) {
        out.push(national);
    }
    out
}

fn national_form(d: &str) -> Option<String> {
    if let Some(rest) = d.strip_prefix("84") {
        if (9..=10).contains(&rest.len()) {
            return Some(format!("0{rest}"));
        }
    }
    if let Some(rest) = d.strip_prefix("86") {
        if rest.len() == 11 {
            return Some(rest.to_string());
        }
    }
    None
}

/// Whether a query is made of digits and phone punctuation only.
fn is_phone_like(q: &str) -> bool {
    let mut any_digit = false;
    for c in q.nfkc() {
        if c.is_ascii_digit() {
            any_digit = true;
        } else if !matches!(c, ' ' | '+' | '-' | '.' | '(' | ')') {
            return false;
        }
    }
    any_digit
}

/// The grams a normalized nickname is indexed under. `short` (store
/// formats 3 and 4): every substring of one, two and three characters, so
/// that a query of any length is looked up (`Lê`, `Ng`, one Chinese
/// character); a unigram or bigram that begins or ends with white space is
/// left out (a query is trimmed, so none is ever asked for). Otherwise
/// (formats 1 and 2) trigrams, and the unigram and bigram at each CJK
/// character.
pub fn nick_grams(norm: &str, short: bool) -> Vec<String> {
    let chars: Vec<char> = norm.chars().collect();
    let mut out = Vec::new();
    for i in 0..chars.len() {
        if short {
            for n in 1..=2 {
                if i + n <= chars.len()
                    && !chars[i].is_whitespace()
                    && !chars[i + n - 1].is_whitespace()
                {
                    out.push(chars[i..i + n].iter().collect());
                }
            }
        } else if is_cjk(chars[i]) {
            out.push(chars[i].to_string());
            if i + 1 < chars.len() {
                out.push(chars[i..i + 2].iter().collect());
            }
        }
        if i + 3 <= chars.len() {
            out.push(chars[i..i + 3].iter().collect());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The grams a message's normalized text is indexed under (leaner than a
/// nickname's: messages are long and every gram is a key): a bigram at every
/// CJK character and a trigram at every other character, each only when the
/// text goes on far enough. The same function gives a query's grams, and
/// every gram of a query lies inside any text holding the query, at the same
/// offset; an empty set means the query is too short to look up (one CJK
/// character, or fewer than three others).
pub fn message_grams(norm: &str) -> Vec<String> {
    message_gram_positions(norm)
        .into_iter()
        .map(|(g, _)| g)
        .collect()
}

/// [`message_grams`] with the character offsets at which each gram starts,
/// ascending: what a message-text posting stores, so that a query of several
/// grams is verified from the postings alone ([`holds_query`]).
pub fn message_gram_positions(norm: &str) -> Vec<(String, Vec<u32>)> {
    // Each character's byte offset (and the end): a gram is a slice, and
    // only distinct grams become strings.
    let starts: Vec<(usize, char)> = norm.char_indices().collect();
    let byte_at = |i: usize| starts.get(i).map_or(norm.len(), |&(b, _)| b);
    let mut grams: std::collections::BTreeMap<&str, Vec<u32>> = Default::default();
    for (i, &(start, c)) in starts.iter().enumerate() {
        let n = if is_cjk(c) { 2 } else { 3 };
        if i + n > starts.len() {
            continue;
        }
        let g = &norm[start..byte_at(i + n)];
        if !g.trim().is_empty() {
            grams.entry(g).or_default().push(i as u32);
        }
    }
    grams
        .into_iter()
        .map(|(g, offsets)| (g.to_string(), offsets))
        .collect()
}

/// Whether a query's grams (from [`message_gram_positions`]) cover each of
/// its characters. Then a text holds the query exactly when, for some
/// offset `p`, it holds every query gram at `p` plus the gram's offset in
/// the query; otherwise (a query ending `订ab`, runs of spaces) the text
/// itself must be read.
pub fn grams_cover(norm: &str, grams: &[(String, Vec<u32>)]) -> bool {
    let mut covered = vec![false; norm.chars().count()];
    for (g, offsets) in grams {
        let len = g.chars().count();
        for &o in offsets {
            for c in covered.iter_mut().skip(o as usize).take(len) {
                *c = true;
            }
        }
    }
    !covered.is_empty() && covered.iter().all(|&c| c)
}

/// Whether a text holds a query whose grams cover it ([`grams_cover`]),
/// given for each query gram (same order) the offsets at which the text
/// holds that gram, ascending.
pub fn holds_query(query: &[(String, Vec<u32>)], text: &[&[u32]]) -> bool {
    let (Some((_, anchor_offsets)), Some(anchor_text)) = (query.first(), text.first()) else {
        return false;
    };
    let anchor = anchor_offsets[0];
    anchor_text.iter().filter(|&&x| x >= anchor).any(|&x| {
        let p = x - anchor;
        query.iter().zip(text).all(|((_, offsets), at)| {
            offsets.iter().all(|&o| {
                p.checked_add(o)
                    .is_some_and(|want| at.binary_search(&want).is_ok())
            })
        })
    })
}

/// The grams a mobile's digit variants are indexed under: digit trigrams,
/// and with `short` (formats 3 and 4) every digit and digit pair too.
pub fn phone_grams(variants: &[String], short: bool) -> Vec<String> {
    let lengths: &[usize] = if short { &[1, 2, 3] } else { &[3] };
    let mut out: Vec<String> = variants
        .iter()
        .flat_map(|v| {
            lengths.iter().flat_map(move |&n| {
                (0..(v.len() + 1).saturating_sub(n)).map(move |i| v[i..i + n].to_string())
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The grams whose postings contain every text holding `norm`, or `None` when
/// the query is too short for the index (without `short`: 1-2 non-CJK
/// characters). With `short`, a query of one or two characters is its own
/// gram.
pub fn nick_query_grams(norm: &str, short: bool) -> Option<Vec<String>> {
    let chars: Vec<char> = norm.chars().collect();
    match chars.len() {
        0 => None,
        1 | 2 if short => Some(vec![norm.to_string()]),
        1 | 2 => {
            // A CJK character starts an indexed unigram and bigram.
            if is_cjk(chars[0]) {
                Some(vec![chars.iter().collect()])
            } else if chars.len() == 2 && is_cjk(chars[1]) {
                Some(vec![chars[1].to_string()])
            } else {
                None
            }
        }
        n => Some(
            (0..n - 2)
                .map(|i| chars[i..i + 3].iter().collect())
                .collect(),
        ),
    }
}

/// A parsed `user_name` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The normalized query (substring of the normalized nickname).
    pub norm: String,
    /// The digit forms to look for in mobiles; empty when the query is not a
    /// phone query.
    pub phones: Vec<String>,
}

impl Query {
    /// Parses a non-empty query. Surrounding white space is ignored. Returns
    /// `None` when the query normalizes to nothing: it matches nothing.
    pub fn parse(q: &str) -> Option<Query> {
        let norm = normalize(q.trim());
        let mut phones = Vec::new();
        if is_phone_like(q) {
            let d = digits(q);
            if let Some(national) = national_form(&d) {
                phones.push(national);
            }
            phones.push(d);
        }
        if norm.is_empty() && phones.is_empty() {
            return None;
        }
        Some(Query { norm, phones })
    }

    /// The exact test: the nickname holds the query, or (for a phone query)
    /// a mobile variant holds a query variant.
    pub fn matches(&self, norm_nick: &str, phones: &[String]) -> bool {
        (!self.norm.is_empty() && norm_nick.contains(&self.norm))
            || self
                .phones
                .iter()
                .any(|q| phones.iter().any(|p| p.contains(q.as_str())))
    }

    /// Grams for the nickname side (`None`: not answerable from the index);
    /// `short`: the store has grams of every length ([`nick_grams`]).
    pub fn nick_grams(&self, short: bool) -> Option<Vec<String>> {
        if self.norm.is_empty() {
            return Some(Vec::new());
        }
        nick_query_grams(&self.norm, short)
    }

    /// Gram sets for the mobile side, one per query variant (`None`: a
    /// variant is shorter than the store's grams).
    pub fn phone_grams(&self, short: bool) -> Option<Vec<Vec<String>>> {
        self.phones
            .iter()
            .map(|p| match p.len() {
                0 => None,
                1 | 2 if short => Some(vec![p.clone()]),
                1 | 2 => None,
                _ => Some(
                    phone_grams(std::slice::from_ref(p), false)
                        .into_iter()
                        .collect(),
                ),
            })
            .collect()
    }
}

#[cfg(test)]
mod message_tests {
    use super::*;

    #[test]
    fn message_grams_of_a_query_are_inside_every_text_holding_it() {
        for (text, q) in [
            ("您好，订单 20261202 已发货", "订单 2026"),
            ("còn hàng không ạ?", "con hang"),
            ("退款退款", "款退"),
            ("order #A-1029 shipped", "a-10"),
        ] {
            let (t, q) = (normalize(text), normalize(q));
            assert!(t.contains(&q), "{t:?} {q:?}");
            let have = message_grams(&t);
            let want = message_grams(&q);
            assert!(!want.is_empty(), "{q:?}");
            assert!(
                want.iter().all(|g| have.contains(g)),
                "{q:?}: {want:?} vs {have:?}"
            );
        }
        assert!(message_grams(&normalize("好")).is_empty());
        assert!(message_grams(&normalize("ok")).is_empty());
        assert_eq!(message_grams("订单"), vec!["订单".to_string()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The shortcut for text already in normal form agrees with the
        /// full normalization, on text mixing shortcut characters with ones
        /// that change (capitals, full-width forms, accents, compatibility
        /// ideographs, ideographic space, kana).
        #[test]
        fn normalized_shortcut_agrees(s in "[a-zA-Z0-9 .#\\-\u{4e00}-\u{4e40}\u{3400}-\u{3410}\u{9fe0}-\u{9fff}\u{ff10}-\u{ff5a}\u{f900}-\u{f910}\u{3000}-\u{3010}\u{3040}-\u{30ff}àéĐđ\u{0301}]{0,40}") {
            let (fast, slow) = (normalized(&s).into_owned(), normalize_slow(&s));
            proptest::prop_assert_eq!(fast, slow);
        }

        /// Text made only of characters the shortcut maps is mapped as the
        /// full normalization maps it.
        #[test]
        fn simple_text_agrees(s in "[\t -~\u{80}-\u{24f}\u{1e00}-\u{1eff}\u{3000}-\u{301b}\u{3400}-\u{3410}\u{4e00}-\u{9fff}\u{ff01}-\u{ff5e}]{0,60}") {
            let (fast, slow) = (normalized(&s).into_owned(), normalize_slow(&s));
            proptest::prop_assert_eq!(fast, slow);
        }
    }

    /// Every character the shortcut accepts, one by one, against the full
    /// pipeline.
    #[test]
    fn simple_agrees() {
        let mut accepted = 0;
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            if let Some(m) = simple(c) {
                assert_eq!(
                    m.to_string(),
                    normalize_slow(&c.to_string()),
                    "{c:?} U+{:04X}",
                    c as u32
                );
                accepted += 1;
            }
        }
        assert!(accepted > 27_000, "{accepted}");
    }

    proptest::proptest! {
        /// Verifying a query from gram positions agrees with the substring
        /// test whenever the query's grams cover it.
        #[test]
        fn positions_agree_with_substring(
            text in "[ab 订单号12]{0,24}",
            query in "[ab 订单号12]{1,6}",
        ) {
            let q = message_gram_positions(&query);
            if grams_cover(&query, &q) {
                let t = message_gram_positions(&text);
                let at: Vec<&[u32]> = q
                    .iter()
                    .map(|(g, _)| t.iter().find(|(h, _)| h == g).map_or(&[][..], |(_, p)| &p[..]))
                    .collect();
                proptest::prop_assert_eq!(holds_query(&q, &at), text.contains(&query), "{:?} in {:?}", query, text);
            }
        }
    }

    #[test]
    fn coverage() {
        for (q, covered) in [
            ("shop", true),
            ("订单", true),
            ("订单号", true),
            ("订ab", false),
            ("ab", false),
            ("a  b", true),
            ("abc", true),
        ] {
            assert_eq!(grams_cover(q, &message_gram_positions(q)), covered, "{q}");
        }
        assert_eq!(
            message_gram_positions("订单订单"),
            vec![
                ("单订".to_string(), vec![1]),
                ("订单".to_string(), vec![0, 2])
            ]
        );
    }

    #[test]
    fn contract_examples_normalize() {
        assert!(normalize("Đức").contains(&normalize("duc")));
        assert!(normalize("Trường").contains(&normalize("truong")));
        assert!(normalize("Văn").contains(&normalize("ＶＡＮ")));
        assert!(normalize("李小龙").contains(&normalize("小")));
        assert_eq!(normalize("Straße"), "strasse");
    }

    #[test]
    fn phone_rules() {
        assert_eq!(digits("185-1669-0005"), "18516690005");
        assert_eq!(digits("１８５"), "185");
        let stored = phone_variants("+84 916 123 456");
        let q = Query::parse("0916123").unwrap();
        assert!(q.matches("", &stored));
        let q = Query::parse("+84 912 345 678").unwrap();
        assert!(q.matches("", &phone_variants("0912345678")));
        assert!(Query::parse("185")
            .unwrap()
            .matches("", &phone_variants("+86 18516690005")));
        let q = Query::parse("abc185").unwrap();
        assert!(q.phones.is_empty());
        assert!(!q.matches("x", &phone_variants("abc185")));
    }

    #[test]
    fn empty_normal_form_matches_nothing() {
        assert_eq!(Query::parse("   "), None);
        assert_eq!(Query::parse("\u{301}"), None);
    }

    #[test]
    fn query_grams_are_indexed_grams() {
        for (text, q, short) in [
            ("李小龙", "小", false),
            ("李小龙", "小龙", false),
            ("a李", "a李", false),
            ("nguyen", "guy", false),
            ("Lê Văn Đức", "Lê", true),
            ("Lê Văn Đức", "v", true),
            ("Nguyễn Thị", "ng", true),
            ("李小龙", "小", true),
            ("Lê Văn Đức", "e v", true),
        ] {
            let idx = nick_grams(&normalize(text), short);
            for g in nick_query_grams(&normalize(q), short).unwrap() {
                assert!(idx.contains(&g), "{g} of {q} not indexed for {text}");
            }
        }
        assert_eq!(nick_query_grams("ab", false), None);
        assert_eq!(nick_query_grams("ab", true), Some(vec!["ab".to_string()]));
        // Grams that begin or end with white space are never asked for.
        assert!(!nick_grams("le van", true).contains(&"e ".to_string()));
        let phones = phone_grams(&["0912345678".to_string()], true);
        assert!(phones.contains(&"9".to_string()) && phones.contains(&"78".to_string()));
    }
}
