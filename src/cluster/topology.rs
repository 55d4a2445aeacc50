//! The topology file: which shard serves which slots, and which nodes form each shard.
//! Operators write it, the same file on every node; fanout never changes it (no gossip,
//! no elections, no slot migration). One shard a line:
//!
//! ```text
//! # comments start with '#'
//! shard a slots 0-5460 primary 127.0.0.1:7001
//! shard b slots 5461-10922 primary 127.0.0.1:7002 replica 127.0.0.1:7005
//! shard c slots 10923-16383,42 primary 10.0.0.3:7003 id 0123456789abcdef0123456789abcdef01234567
//! ```
//!
//! `slots` takes ranges and single slots separated by commas, `replica` may repeat, and
//! `id <40 hex>` after an address names that node (otherwise its id is derived from the
//! address, so it is the same on every node and across restarts). Every slot must be
//! assigned exactly once: cluster clients refuse a map with holes.

use sha2::{Digest, Sha256};

use super::slots::SLOTS;

/// One node: the address clients are redirected to, and its place in its shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// 40 lower-case hex digits.
    pub id: String,
    pub host: String,
    pub port: u16,
    /// Index into [`Topology::shards`].
    pub shard: usize,
    pub primary: bool,
}

impl Node {
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    pub name: String,
    /// 40 hex digits derived from the name (CLUSTER MYSHARDID).
    pub id: String,
    /// Sorted, merged, inclusive ranges.
    pub ranges: Vec<(u16, u16)>,
    /// Indexes into [`Topology::nodes`]; the primary first.
    pub nodes: Vec<usize>,
    /// The primary's config epoch: the shard's position in the file, from 1.
    pub epoch: u64,
}

impl Shard {
    pub fn slot_count(&self) -> usize {
        self.ranges.iter().map(|&(a, b)| (b - a) as usize + 1).sum()
    }
}

/// A parsed, checked topology, and which of its nodes this process is.
#[derive(Clone, Debug)]
pub struct Topology {
    pub shards: Vec<Shard>,
    pub nodes: Vec<Node>,
    /// The shard serving each slot.
    owner: Vec<u16>,
    /// Index of this node in `nodes`.
    pub me: usize,
    /// SHA-256 of the shards as parsed (not of the text: comments and spacing may
    /// differ between nodes), hex. Peers compare it to find files that disagree.
    pub digest: String,
}

/// 40 hex digits derived from `seed`.
fn derived_id(seed: &str) -> String {
    let hash = Sha256::digest(seed.as_bytes());
    hash.iter().take(20).map(|b| format!("{b:02x}")).collect()
}

fn parse_addr(s: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest
            .split_once("]:")
            .ok_or_else(|| format!("bad address '{s}' (want HOST:PORT)"))?;
        (h, p)
    } else {
        s.rsplit_once(':')
            .ok_or_else(|| format!("bad address '{s}' (want HOST:PORT)"))?
    };
    let port: u16 = port
        .parse()
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| format!("bad port in '{s}'"))?;
    if host.is_empty() {
        return Err(format!("no host in '{s}'"));
    }
    Ok((host.to_string(), port))
}

fn parse_slots(s: &str) -> Result<Vec<(u16, u16)>, String> {
    let one = |w: &str| -> Result<u16, String> {
        w.parse::<u16>()
            .ok()
            .filter(|&n| (n as usize) < SLOTS)
            .ok_or_else(|| format!("bad slot '{w}' (0 to 16383)"))
    };
    s.split(',')
        .map(|part| match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (one(a)?, one(b)?);
                if a > b {
                    return Err(format!("bad slot range '{part}'"));
                }
                Ok((a, b))
            }
            None => one(part).map(|n| (n, n)),
        })
        .collect()
}

/// Two hosts name the same machine when they are equal as IP addresses or as text.
fn same_host(a: &str, b: &str) -> bool {
    match (a.parse::<std::net::IpAddr>(), b.parse::<std::net::IpAddr>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.eq_ignore_ascii_case(b),
    }
}

impl Topology {
    /// Parses and checks a topology file; `me` is this node's announced addresses (host
    /// names and IPs it may be listed under) and port. Errors name the line.
    pub fn parse(text: &str, me_hosts: &[&str], me_port: u16) -> Result<Topology, String> {
        let mut shards: Vec<Shard> = Vec::new();
        let mut nodes: Vec<Node> = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let at = |e: String| format!("line {}: {e}", n + 1);
            let words: Vec<&str> = line.split_ascii_whitespace().collect();
            if words.first() != Some(&"shard") || words.len() < 2 {
                return Err(at(
                    "expected 'shard NAME slots ... primary HOST:PORT [replica HOST:PORT ...]'".into(),
                ));
            }
            let name = words[1].to_string();
            if shards.iter().any(|s| s.name == name) {
                return Err(at(format!("shard '{name}' appears twice")));
            }
            let shard = shards.len();
            let mut ranges = Vec::new();
            let mut members: Vec<usize> = Vec::new();
            let mut i = 2;
            while i < words.len() {
                let value = words
                    .get(i + 1)
                    .ok_or_else(|| at(format!("'{}' needs a value", words[i])))?;
                match words[i] {
                    "slots" => ranges.extend(parse_slots(value).map_err(at)?),
                    "primary" | "replica" => {
                        let primary = words[i] == "primary";
                        if primary && members.iter().any(|&m| nodes[m].primary) {
                            return Err(at("a shard has one primary".into()));
                        }
                        let (host, port) = parse_addr(value).map_err(at)?;
                        if nodes.iter().any(|o| same_host(&o.host, &host) && o.port == port) {
                            return Err(at(format!("{value} appears twice")));
                        }
                        let id = derived_id(&format!("{host}:{port}"));
                        members.push(nodes.len());
                        nodes.push(Node {
                            id,
                            host,
                            port,
                            shard,
                            primary,
                        });
                    }
                    "id" => {
                        let last = *members.last().ok_or_else(|| at("'id' must follow an address".into()))?;
                        if value.len() != 40 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                            return Err(at(format!("bad node id '{value}' (40 hex digits)")));
                        }
                        nodes[last].id = value.to_ascii_lowercase();
                    }
                    other => return Err(at(format!("unknown word '{other}'"))),
                }
                i += 2;
            }
            let Some(p) = members.iter().position(|&m| nodes[m].primary) else {
                return Err(at(format!("shard '{name}' has no primary")));
            };
            members.swap(0, p);
            // The primary first, replicas in file order after it.
            members[1..].sort_unstable();
            if ranges.is_empty() {
                return Err(at(format!("shard '{name}' has no slots")));
            }
            shards.push(Shard {
                id: derived_id(&format!("shard {name}")),
                name,
                ranges,
                nodes: members,
                epoch: shard as u64 + 1,
            });
        }
        let mut owner = vec![u16::MAX; SLOTS];
        for (si, s) in shards.iter_mut().enumerate() {
            for &(a, b) in &s.ranges {
                for slot in a..=b {
                    let o = &mut owner[slot as usize];
                    if *o != u16::MAX && *o as usize != si {
                        return Err(format!("slot {slot} is assigned to more than one shard"));
                    }
                    *o = si as u16;
                }
            }
            s.ranges = merge(&s.ranges);
        }
        if shards.is_empty() {
            return Err("the topology names no shard".into());
        }
        let unassigned = owner.iter().filter(|&&o| o == u16::MAX).count();
        if unassigned > 0 {
            let first = owner.iter().position(|&o| o == u16::MAX).unwrap_or(0);
            return Err(format!(
                "{unassigned} of 16384 slots are not assigned (the first is {first}); cluster clients refuse a partial map"
            ));
        }
        let mut ids: Vec<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err("two nodes have the same id".into());
        }
        let me = nodes
            .iter()
            .position(|n| n.port == me_port && me_hosts.iter().any(|h| same_host(h, &n.host)))
            .ok_or_else(|| {
                format!(
                    "this node ({}:{me_port}) is not in the topology; set cluster-announce-ip/port to the address the file gives it",
                    me_hosts.first().copied().unwrap_or("?")
                )
            })?;
        let mut h = Sha256::new();
        for s in &shards {
            h.update(format!("{} {:?}", s.name, s.ranges));
            for &m in &s.nodes {
                let n = &nodes[m];
                h.update(format!(" {} {} {}", n.id, n.addr(), n.primary));
            }
            h.update("\n");
        }
        let digest = h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
        Ok(Topology {
            shards,
            nodes,
            owner,
            me,
            digest,
        })
    }

    pub fn me(&self) -> &Node {
        &self.nodes[self.me]
    }

    pub fn my_shard(&self) -> &Shard {
        &self.shards[self.me().shard]
    }

    /// The shard serving `slot`.
    pub fn shard_of(&self, slot: u16) -> &Shard {
        &self.shards[self.owner[slot as usize] as usize]
    }

    pub fn primary_of(&self, slot: u16) -> &Node {
        &self.nodes[self.shard_of(slot).nodes[0]]
    }

    /// This node is in the shard that serves `slot` (its primary or a replica).
    pub fn in_my_shard(&self, slot: u16) -> bool {
        self.owner[slot as usize] as usize == self.me().shard
    }

    pub fn node_by_id(&self, id: &[u8]) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id.as_bytes().eq_ignore_ascii_case(id))
    }

    /// The primary of `node` (itself for a primary).
    pub fn primary_for(&self, node: &Node) -> &Node {
        &self.nodes[self.shards[node.shard].nodes[0]]
    }
}

fn merge(ranges: &[(u16, u16)]) -> Vec<(u16, u16)> {
    let mut v = ranges.to_vec();
    v.sort_unstable();
    let mut out: Vec<(u16, u16)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a as u32 <= last.1 as u32 + 1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE: &str = "\
# three shards
shard a slots 0-5460 primary 127.0.0.1:7001
shard b slots 5461-10922 primary 127.0.0.1:7002 replica 127.0.0.1:7005   # one replica
shard c slots 10923-16383 primary 127.0.0.1:7003
";

    #[test]
    fn parses_the_issue_example() {
        let t = Topology::parse(THREE, &["127.0.0.1"], 7005).unwrap();
        assert_eq!(t.shards.len(), 3);
        assert_eq!(t.nodes.len(), 4);
        assert_eq!(t.me().port, 7005);
        assert!(!t.me().primary);
        assert_eq!(t.my_shard().name, "b");
        assert_eq!(t.primary_of(3018).port, 7001);
        assert_eq!(t.primary_of(10059).port, 7002);
        assert_eq!(t.primary_of(10923).port, 7003);
        assert!(t.in_my_shard(7312));
        assert_eq!(t.shards[1].slot_count(), 5462);
        // Ids are derived from the address: the same on every node and run.
        let again = Topology::parse(THREE, &["127.0.0.1"], 7001).unwrap();
        assert_eq!(t.nodes, again.nodes);
        assert_eq!(t.digest, again.digest);
        assert_eq!(t.nodes[0].id.len(), 40);
    }

    #[test]
    fn slot_lists_ids_and_ipv6() {
        let text = "shard x slots 0-100,200,101-199 primary [::1]:7001 id 0123456789ABCDEF0123456789abcdef01234567\n\
                    shard y slots 201-16383 primary localhost:7002\n";
        let t = Topology::parse(text, &["::1"], 7001).unwrap();
        assert_eq!(t.shards[0].ranges, vec![(0, 200)]);
        assert_eq!(t.me().id, "0123456789abcdef0123456789abcdef01234567");
        assert_eq!(t.me().addr(), "[::1]:7001");
        assert!(Topology::parse(text, &["LOCALHOST"], 7002).is_ok());
    }

    #[test]
    fn refuses_what_clients_would_refuse() {
        let me = (&["127.0.0.1"][..], 7001);
        let err = |t: &str| Topology::parse(t, me.0, me.1).unwrap_err();
        assert!(err("shard a slots 0-16000 primary 127.0.0.1:7001").contains("383 of 16384 slots are not assigned"));
        assert!(
            err("shard a slots 0-16383 primary 127.0.0.1:7001\nshard b slots 5 primary 127.0.0.1:7002")
                .contains("slot 5 is assigned to more than one shard")
        );
        assert!(err("shard a slots 0-16383 primary 127.0.0.1:7002").contains("not in the topology"));
        assert!(err("shard a slots 0-16383 replica 127.0.0.1:7001").contains("no primary"));
        assert!(err("shard a slots 0-16384 primary 127.0.0.1:7001").contains("line 1: bad slot"));
        assert!(err("shard a slots 0-16383 primary 127.0.0.1:7001 id xyz").contains("bad node id"));
        assert!(err("shard a slots 0-16383 primary 127.0.0.1:7001 primary 127.0.0.1:7002").contains("one primary"));
        assert!(err("shard a slots 0-16383 primary 127.0.0.1:7001 replica 127.0.0.1:7001").contains("twice"));
        assert!(err("shard a slots 0-16383 primary 127.0.0.1").contains("bad address"));
        assert!(err("node a").contains("line 1"));
        assert!(err("# nothing\n").contains("no shard"));
    }
}
