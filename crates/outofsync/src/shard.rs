//! [`Shard`]: one process's share of an input split by index, for `fetch --shard K/N`.
//!
//! Shard `K/N` takes the inputs whose index `i` is `K` modulo `N`. Indexes stay those of the
//! whole input, so the outputs of the `N` shards concatenate into one set with exactly one record
//! per input, and each shard can be resumed on its own. Interleaving by index (rather than cutting
//! the input into `N` ranges) needs no count of the input beforehand, works on stdin, and spreads
//! a slow stretch of the input over every shard.

use std::fmt;
use std::str::FromStr;

/// One of `count` shards: the inputs whose index is `index` modulo `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shard {
    /// Which shard, from 0.
    pub index: u64,
    /// How many shards (at least 1).
    pub count: u64,
}

impl Shard {
    /// Whether input `i` belongs to this shard.
    pub fn takes(&self, i: u64) -> bool {
        i % self.count == self.index
    }

    /// How many of the inputs `0..total` belong to this shard.
    pub fn share_of(&self, total: u64) -> u64 {
        if total <= self.index { 0 } else { (total - self.index).div_ceil(self.count) }
    }
}

impl FromStr for Shard {
    type Err = String;

    /// `K/N`, with `0 <= K < N`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            |why: &str| format!("shard {s:?}: {why} (write K/N, e.g. 0/3, 1/3 and 2/3 for three shards)");
        let (k, n) = s.split_once('/').ok_or_else(|| bad("no slash"))?;
        let index: u64 = k.trim().parse().map_err(|_| bad("K is not a whole number"))?;
        let count: u64 = n.trim().parse().map_err(|_| bad("N is not a whole number"))?;
        if count == 0 {
            return Err(bad("N must be at least 1"));
        }
        if index >= count {
            return Err(bad("K counts from 0 and must be below N"));
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_split_every_index_exactly_once() {
        let shards: Vec<Shard> = ["0/3", "1/3", "2/3"].iter().map(|s| s.parse().unwrap()).collect();
        for i in 0..100 {
            assert_eq!(shards.iter().filter(|s| s.takes(i)).count(), 1, "{i}");
        }
        for total in 0..10 {
            assert_eq!(shards.iter().map(|s| s.share_of(total)).sum::<u64>(), total);
            for s in &shards {
                assert_eq!(s.share_of(total), (0..total).filter(|&i| s.takes(i)).count() as u64);
            }
        }
        assert_eq!(shards[1].to_string(), "1/3");
        for bad in ["3/3", "1", "a/3", "0/0", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
