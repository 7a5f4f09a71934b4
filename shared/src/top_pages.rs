//! Merging each shard's most visited pages into one list.

use serde::{Deserialize, Serialize};

/// One entry of `GET /visits?top=N`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopPage {
    /// The page id.
    pub page: String,
    /// Its count.
    pub count: u64,
}

/// Reply to `GET /visits?top=N`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopReply {
    /// Most visited first; ties by page id.
    pub pages: Vec<TopPage>,
    /// Shards that could not be asked (their pages are missing from the list).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unavailable_shards: Vec<String>,
}

/// Reads a `ZREVRANGE … WITHSCORES` reply: alternating member and score.
pub fn parse_ranked(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<TopPage> {
    pairs
        .iter()
        .filter_map(|(member, score)| {
            let page = String::from_utf8(member.clone()).ok()?;
            let count = crate::visit_store::count_of(score)?;
            Some(TopPage { page, count })
        })
        .collect()
}

/// The `n` highest of the shards' own top lists merged, ties by name: a page lives on one
/// shard, so the top `n` of the union is the answer; a name on several lists (a referrer host,
/// counted on every shard) adds up.
pub fn merge_top(per_shard: Vec<Vec<TopPage>>, n: usize) -> Vec<TopPage> {
    // A name on several lists (a referrer host counted on every shard) adds up.
    let mut totals = std::collections::BTreeMap::<String, u64>::new();
    for item in per_shard.into_iter().flatten() {
        *totals.entry(item.page).or_default() += item.count;
    }
    let mut all: Vec<TopPage> = totals
        .into_iter()
        .map(|(page, count)| TopPage { page, count })
        .collect();
    all.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.page.cmp(&b.page)));
    all.truncate(n);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(page: &str, count: u64) -> TopPage {
        TopPage {
            page: page.into(),
            count,
        }
    }

    #[test]
    fn merges_highest_first_with_ties_by_name() {
        let merged = merge_top(
            vec![vec![p("a", 5), p("b", 1)], vec![p("c", 9), p("d", 5)]],
            3,
        );
        assert_eq!(merged, vec![p("c", 9), p("a", 5), p("d", 5)]);
    }

    #[test]
    fn a_name_on_several_lists_adds_up() {
        let merged = merge_top(vec![vec![p("x", 2)], vec![p("x", 3), p("y", 4)]], 5);
        assert_eq!(merged, vec![p("x", 5), p("y", 4)]);
    }

    #[test]
    fn parses_member_score_pairs() {
        let pairs = vec![
            (b"home".to_vec(), b"12".to_vec()),
            (vec![0xff], b"1".to_vec()),
        ];
        assert_eq!(parse_ranked(&pairs), vec![p("home", 12)]);
    }
}
